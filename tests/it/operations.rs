//! Operating the appliance: a backup taken under token-issuing load restores to a database
//! that opens without repair and holds every token issued before the backup began; restore,
//! migrate and the integrity check refuse to touch a file a server holds.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Server, http_client, oxidot};

const CC_FIXTURE: &str = "\
- model: oauth2_provider.application
  pk: 10
  fields:
    client_id: ops-cc
    client_secret: ops-cc-secret
    client_type: confidential
    authorization_grant_type: client-credentials
    hash_client_secret: false
    name: ops load
";

fn run(dir: &Path, args: &[&str]) -> Output {
    oxidot(dir).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_backup_under_load_restores_everything_acknowledged_before_it_began() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cc.yaml"), CC_FIXTURE).unwrap();
    let loaded = run(dir.path(), &["--profile", "demo", "loaddata", "cc.yaml"]);
    assert!(loaded.status.success(), "{}", text(&loaded));
    let server = Server::start(dir.path(), &["demo"]);

    // Two clients issue tokens without pause; each token is recorded once acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(std::sync::Mutex::new(Vec::<(Instant, String)>::new()));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, issued, base) = (stop.clone(), issued.clone(), server.base.clone());
            std::thread::spawn(move || {
                let client = http_client();
                while !stop.load(Ordering::Relaxed) {
                    let response = client
                        .post(format!("{base}/o/token/"))
                        .basic_auth("ops-cc", Some("ops-cc-secret"))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    let body: serde_json::Value =
                        serde_json::from_str(&response.text().unwrap()).unwrap();
                    let token = body["access_token"].as_str().unwrap().to_owned();
                    issued.lock().unwrap().push((Instant::now(), token));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let began = Instant::now();
    let backup = run(
        dir.path(),
        &["--profile", "demo", "backup", "under-load.redb"],
    );
    assert!(backup.status.success(), "{}", text(&backup));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let before: Vec<String> = issued
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, token)| token.clone())
        .collect();
    assert!(
        before.len() > 20,
        "the load issued {} tokens first",
        before.len()
    );

    // A running server's file is never replaced, checked or migrated from outside.
    let refused = run(
        dir.path(),
        &["--profile", "demo", "restore", "under-load.redb"],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("stop the server"),
        "{}",
        text(&refused)
    );
    let refused = run(dir.path(), &["--profile", "demo", "check", "--db"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("stop the server"));
    let migrated = run(dir.path(), &["--profile", "demo", "migrate"]);
    assert!(migrated.status.success());
    assert!(text(&migrated).contains("held by the running server"));
    assert!(server.terminate());

    // Restored: the replaced file is kept, the restored one passes the integrity check.
    let restored = run(
        dir.path(),
        &["--profile", "demo", "restore", "under-load.redb"],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(text(&restored).contains("is kept as"));
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .contains("before-restore")
        });
    assert!(kept);
    let checked = run(dir.path(), &["--profile", "demo", "check", "--db"]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(
        text(&checked).contains("integrity: OK"),
        "{}",
        text(&checked)
    );
    assert!(text(&checked).contains("closed cleanly"));
    let migrated = run(dir.path(), &["--profile", "demo", "migrate"]);
    assert!(
        text(&migrated).contains("up to date"),
        "{}",
        text(&migrated)
    );

    let (store, report) =
        oxidot::store::Store::open(&dir.path().join("oxidot-demo.redb"), 1 << 20).unwrap();
    assert!(!report.repaired);
    let missing = store
        .read(|tx| {
            let mut missing = 0;
            for token in &before {
                if tx
                    .access_token(&oxidot::store::SecretKey::of_token(token))?
                    .is_none()
                {
                    missing += 1;
                }
            }
            Ok(missing)
        })
        .unwrap();
    assert_eq!(
        missing,
        0,
        "of {} tokens acknowledged before the backup",
        before.len()
    );
    store.close().unwrap();
}

#[test]
fn restore_refuses_what_is_not_a_good_backup_and_migrate_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let created = run(dir.path(), &["migrate"]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(text(&created).contains("created with the current schema"));
    let again = run(dir.path(), &["migrate"]);
    assert!(text(&again).contains("up to date"));
    // A release step loads no data (the tutorial's reloaded fixtures and reset passwords).
    let (store, _) = oxidot::store::Store::open(&dir.path().join("oxidot.redb"), 1 << 20).unwrap();
    assert_eq!(store.read(|tx| tx.user_count()).unwrap(), 0);
    store.close().unwrap();
    for (name, content) in [
        ("garbage.redb", &b"not a database"[..]),
        ("empty.redb", &b""[..]),
    ] {
        std::fs::write(dir.path().join(name), content).unwrap();
        let refused = run(dir.path(), &["restore", name]);
        assert!(!refused.status.success(), "{name}");
    }
    let refused = run(dir.path(), &["restore", "missing.redb"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("is not a file"));
    // The database is untouched by the refusals.
    let checked = run(dir.path(), &["check", "--db"]);
    assert!(
        text(&checked).contains("integrity: OK"),
        "{}",
        text(&checked)
    );
}

fn get(base: &str, path: &str) -> (u16, String, Option<String>) {
    let response = http_client().get(format!("{base}{path}")).send().unwrap();
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (status, response.text().unwrap(), id)
}

fn cc_token(base: &str) -> String {
    let response = http_client()
        .post(format!("{base}/o/token/"))
        .basic_auth("ops-cc", Some("ops-cc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The value of one sample line of the metrics text.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn metrics_count_known_traffic_and_can_move_or_go() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cc.yaml"), CC_FIXTURE).unwrap();
    assert!(
        run(dir.path(), &["--profile", "demo", "loaddata", "cc.yaml"])
            .status
            .success()
    );
    let server = Server::start(dir.path(), &["demo"]);
    let base = &server.base;
    cc_token(base);
    cc_token(base);
    assert_eq!(get(base, "/nowhere").0, 404);
    let (status, text, id) = get(base, "/metrics");
    assert_eq!(status, 200);
    assert!(
        id.is_some_and(|id| id.len() == 8),
        "every response has an X-Request-Id"
    );
    assert_eq!(
        sample(
            &text,
            r#"oxidot_http_requests_total{method="POST",route="/o/token",status="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"oxidot_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"oxidot_tokens_issued_total{grant_type="client_credentials"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"oxidot_active_tokens{kind="access_token"}"#),
        Some(2.0)
    );
    assert!(sample(&text, "oxidot_database_size_bytes").unwrap() > 0.0);
    // Two tokens issued (two writes) at least.
    assert!(sample(&text, "oxidot_database_write_transactions").unwrap() >= 2.0);
    assert_eq!(sample(&text, "oxidot_argon2_queue_depth"), Some(0.0));
    assert!(text.contains(r#"oxidot_http_request_duration_seconds_count{route="/o/token"} 2"#));
    assert!(text.contains("# TYPE oxidot_cleanup_runs counter"));
    assert!(text.trim_end().ends_with("# EOF"));
    // The demo cleans every 10 s: its runs and task results show up.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let (_, text, _) = get(base, "/metrics");
    assert!(
        sample(&text, "oxidot_cleanup_runs_total").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"oxidot_scheduler_task_runs_total{task="clear_tokens",result="ok"}"#
        )
        .unwrap()
            >= 1.0
    );
    let (status, ready, _) = get(base, "/readyz");
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains(r#""status":"ready""#));
    assert!(server.terminate());

    // Moved to an address of its own: gone from the main one.
    let port = crate::support::free_port();
    let moved = Server::start_with(
        dir.path(),
        &["demo"],
        &[("OXIDOT_METRICS__ADDRESS", &format!("127.0.0.1:{port}"))],
    );
    assert_eq!(get(&moved.base, "/metrics").0, 404);
    let (status, text, _) = get(&format!("http://127.0.0.1:{port}"), "/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("oxidot_http_requests_total"));
    assert_eq!(get(&format!("http://127.0.0.1:{port}"), "/other").0, 404);
    assert!(moved.terminate());
    // Off.
    let off = Server::start_with(
        dir.path(),
        &["demo"],
        &[("OXIDOT_METRICS__ENABLED", "false")],
    );
    assert_eq!(get(&off.base, "/metrics").0, 404);
    assert!(off.terminate());
}

#[test]
fn readyz_turns_unready_when_the_store_cannot_take_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cc.yaml"), CC_FIXTURE).unwrap();
    assert!(run(dir.path(), &["loaddata", "cc.yaml"]).status.success());
    // A first start writes its signing keys and tasks; the limited one writes only tokens.
    let first = Server::start_with(
        dir.path(),
        &["serve"],
        &[("OXIDOT_TASKS__CLEAR_TOKENS__ENABLED", "false")],
    );
    assert!(first.terminate());
    let size = std::fs::metadata(dir.path().join("oxidot.redb"))
        .unwrap()
        .len();
    // The file may not grow past its size (SIGXFSZ ignored, so writes fail with EFBIG).
    let port = crate::support::free_port();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={size}:{size} -- {} serve",
            crate::support::binary()
        ))
        .current_dir(dir.path())
        .env("OXIDOT_PORT", port.to_string())
        .env("OXIDOT_TASKS__CLEAR_TOKENS__ENABLED", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_until_up(&base);
    let (status, body, _) = get(&base, "/readyz");
    assert_eq!(status, 200, "{body}");
    // Fill what free pages the file has until writes fail.
    let client = http_client();
    let mut failed = false;
    for _ in 0..20_000 {
        let response = client
            .post(format!("{base}/o/token/"))
            .basic_auth("ops-cc", Some("ops-cc-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap();
        if response.status().as_u16() != 200 {
            assert_eq!(
                response.status().as_u16(),
                500,
                "a failed write is a server error"
            );
            failed = true;
            break;
        }
    }
    assert!(failed, "the file never filled up");
    let (status, body, _) = get(&base, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""store":"not writable""#), "{body}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn https_is_served_directly_when_a_certificate_is_configured() {
    // The test's own tools (`.ci/run` installs them; a developer machine may lack them).
    let present = |tool: &str| {
        std::process::Command::new(tool)
            .arg("version")
            .output()
            .is_ok()
    };
    if !present("openssl") || !present("curl") {
        crate::support::skip("HTTPS test", "openssl or curl is not installed", "CI");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = crate::support::free_port();
    let mut child = oxidot(dir.path())
        .arg("demo")
        .env("OXIDOT_PORT", port.to_string())
        .env("OXIDOT_TLS__CERTS", "cert.pem")
        .env("OXIDOT_TLS__KEY", "key.pem")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let curl = |url: &str| {
        std::process::Command::new("curl")
            .args(["-sS", "--cacert", "cert.pem", "-D", "-", url])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let url = format!("https://127.0.0.1:{port}/o/.well-known/openid-configuration");
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let answer = curl(&url);
        if answer.status.success() {
            break String::from_utf8_lossy(&answer.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no HTTPS answer: {}",
            text(&answer)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The certificate verified; the issuer the request shows is https.
    assert!(answer.starts_with("HTTP/"), "{answer}");
    assert!(
        answer.contains(&format!("\"issuer\":\"https://127.0.0.1:{port}/o\"")),
        "{answer}"
    );
    // Cookies set over TLS are Secure.
    let login = curl(&format!("https://127.0.0.1:{port}/accounts/login/"));
    let headers = String::from_utf8_lossy(&login.stdout).to_lowercase();
    assert!(
        headers.contains("set-cookie: csrftoken=") && headers.contains("; secure"),
        "{headers}"
    );
    // Plain HTTP on that port gets no page.
    let plain = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "3",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"ok\""));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn json_logs_carry_the_request_id_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cc.yaml"), CC_FIXTURE).unwrap();
    assert!(
        run(dir.path(), &["--profile", "demo", "loaddata", "cc.yaml"])
            .status
            .success()
    );
    let port = crate::support::free_port();
    let log = dir.path().join("server.log");
    let mut child = oxidot(dir.path())
        .arg("demo")
        .env("OXIDOT_PORT", port.to_string())
        .env("OXIDOT_LOG_FORMAT", "json")
        .env("OXIDOT_LOG_LEVEL", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_until_up(&base);
    // A wrong secret: the handler logs the failure inside the request's span.
    let wrong = "a-wrong-secret-that-must-not-be-logged";
    let response = http_client()
        .post(format!("{base}/o/token/"))
        .basic_auth("ops-cc", Some(wrong))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = cc_token(&base);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(!lines.is_empty(), "{text}");
    let failure = lines
        .iter()
        .find(|line| line["fields"]["message"] == "client authentication failed")
        .unwrap_or_else(|| panic!("no failure line in {text}"));
    assert_eq!(failure["span"]["id"], id.as_str(), "{failure}");
    assert!(lines.iter().any(|line| {
        line["fields"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("shutting down"))
    }));
    assert!(!text.contains(wrong) && !text.contains(&token) && !text.contains("ops-cc-secret"));
}
