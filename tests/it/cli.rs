//! The real binary: demo, serve, the database commands (directly and through a running
//! server), config errors, exclusive opening, and clean shutdown under load.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::{Server, http_client, oxidot};

pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = oxidot(dir);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// Standard output then standard error, as one text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The hidden CSRF field of a page.
pub fn csrf_field(html: &str) -> String {
    let marker = r#"name="csrfmiddlewaretoken" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..start + 43].to_owned()
}

/// Logs in over real HTTP; returns the status of the login POST.
pub fn http_login(base: &str, username: &str, password: &str) -> u16 {
    let client = http_client();
    let page = client
        .get(format!("{base}/accounts/login/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let token = csrf_field(&page);
    client
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", token.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn demo_creates_its_database_loads_the_fixtures_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    assert!(dir.path().join("oxidot-demo.redb").exists());
    assert_eq!(http_login(&server.base, "admin", "admin123"), 303);
    assert_eq!(http_login(&server.base, "admin", "wrong-password"), 400);
    assert!(server.terminate(), "a clean exit on SIGTERM");

    // A second start keeps the data (the upgraded admin hash included) and loads nothing new.
    let server = Server::start(dir.path(), &["demo"]);
    assert_eq!(http_login(&server.base, "admin", "admin123"), 303);
    assert!(server.terminate());
    let output = run(
        dir.path(),
        &["--profile", "demo", "dumpdata", "auth.user"],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output));
    let users = String::from_utf8_lossy(&output.stdout);
    assert_eq!(users.matches("model: auth.user").count(), 2);
    assert!(users.contains("password: argon2$argon2id$"));
}

#[test]
fn serve_on_an_empty_database_says_how_to_create_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let mut child = oxidot(dir.path())
        .args(["serve"])
        .env("OXIDOT_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 512];
    while !seen.contains("oxidot createsuperuser") {
        let read = std::io::Read::read(&mut stdout, &mut buffer).unwrap();
        assert!(read > 0, "serve printed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    // Signal only once it serves (before that, SIGTERM has its default effect).
    let health = format!("http://127.0.0.1:{port}/healthz");
    while reqwest::blocking::get(&health).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // No demo data in production.
    let output = run(dir.path(), &["dumpdata", "--format", "json"], &[]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "[]");
}

#[test]
fn serve_refuses_a_public_address_while_the_demo_credentials_work() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let files: Vec<String> = [
        "auth.group.yaml",
        "auth.user.yaml",
        "oauth2_provider.application.yaml",
    ]
    .iter()
    .map(|name| fixtures.join(name).display().to_string())
    .collect();
    let mut args = vec!["loaddata"];
    args.extend(files.iter().map(String::as_str));
    let loaded = run(dir.path(), &args, &[]);
    assert!(loaded.status.success(), "{}", text(&loaded));
    assert!(text(&loaded).contains("Installed 8 object(s) from 3 fixture(s)"));

    let refused = run(dir.path(), &["serve"], &[("OXIDOT_ADDRESS", "0.0.0.0")]);
    assert!(!refused.status.success());
    let message = text(&refused);
    assert!(
        message.contains("refusing to listen on 0.0.0.0"),
        "{message}"
    );
    assert!(message.contains("--allow-demo-credentials"));
}

#[test]
fn createsuperuser_and_changepassword_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let created = run(
        dir.path(),
        &[
            "createsuperuser",
            "--no-input",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ],
        &[("OXIDOT_SUPERUSER_PASSWORD", "first-pass-123")],
    );
    assert!(created.status.success(), "{}", text(&created));
    assert!(text(&created).contains("Superuser \"root\" created"));

    let weak = run(
        dir.path(),
        &["createsuperuser", "--no-input", "--username", "other"],
        &[("OXIDOT_SUPERUSER_PASSWORD", "123")],
    );
    assert!(!weak.status.success());
    assert!(text(&weak).contains("too short"));

    let duplicate = run(
        dir.path(),
        &["createsuperuser", "--no-input", "--username", "root"],
        &[("OXIDOT_SUPERUSER_PASSWORD", "another-pass-123")],
    );
    assert!(!duplicate.status.success());
    assert!(text(&duplicate).contains("already exists"));

    let mut child = oxidot(dir.path())
        .args(["changepassword", "root", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"second-pass-456\n")
        .unwrap();
    let changed = child.wait_with_output().unwrap();
    assert!(changed.status.success(), "{}", text(&changed));

    let unknown = run(
        dir.path(),
        &["changepassword", "ghost", "--password-stdin"],
        &[],
    );
    assert!(!unknown.status.success());

    let server = Server::start(dir.path(), &["serve"]);
    assert_eq!(http_login(&server.base, "root", "first-pass-123"), 400);
    assert_eq!(http_login(&server.base, "root", "second-pass-456"), 303);
    assert!(server.terminate());
}

#[test]
fn database_commands_go_through_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let profile = ["--profile", "demo"];

    let created = run(
        dir.path(),
        &[
            &profile[..],
            &[
                "createsuperuser",
                "--no-input",
                "--username",
                "live",
                "--email",
                "",
            ],
        ]
        .concat(),
        &[("OXIDOT_SUPERUSER_PASSWORD", "live-pass-123")],
    );
    assert!(created.status.success(), "{}", text(&created));
    assert_eq!(http_login(&server.base, "live", "live-pass-123"), 303);

    let fixture = dir.path().join("extra.yaml");
    std::fs::write(
        &fixture,
        "- model: auth.group\n  pk: 9\n  fields: {name: extra, permissions: []}\n",
    )
    .unwrap();
    let loaded = run(
        dir.path(),
        &[&profile[..], &["loaddata", fixture.to_str().unwrap()]].concat(),
        &[],
    );
    assert!(loaded.status.success(), "{}", text(&loaded));
    let dumped = run(
        dir.path(),
        &[&profile[..], &["dumpdata", "auth.group"]].concat(),
        &[],
    );
    assert!(String::from_utf8_lossy(&dumped.stdout).contains("name: extra"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "- model: nope.nope\n  pk: 1\n  fields: {}\n").unwrap();
    let refused = run(
        dir.path(),
        &[&profile[..], &["loaddata", bad.to_str().unwrap()]].concat(),
        &[],
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("bad.yaml: record 1 (nope.nope pk=1): unknown model"));

    let check = run(dir.path(), &[&profile[..], &["check"]].concat(), &[]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("held by the running server"));
    assert!(server.terminate());
}

#[test]
fn a_second_process_gets_a_clear_message_not_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let database = dir.path().join("oxidot-demo.redb");

    // In this process: the store names the file and what to do.
    let error = match oxidot::store::Store::open(&database, 1 << 20) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("opened a database another process holds"),
    };
    assert!(
        error.contains("oxidot-demo.redb is already in use by another oxidot process"),
        "{error}"
    );

    // A CLI command whose server does not answer on the control socket says what to do.
    std::fs::remove_file(dir.path().join("oxidot-demo.redb.ctl")).unwrap();
    let output = run(dir.path(), &["--profile", "demo", "dumpdata"], &[]);
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("is in use by another process"),
        "{message}"
    );
    assert!(message.contains("stop the other process"));
    assert!(!message.contains("DatabaseAlreadyOpen"));
    assert!(server.terminate());
}

#[test]
fn sigterm_under_load_leaves_a_database_that_opens_without_repair() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let base = server.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let base = base.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut logins = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && logins < 200 {
                    // Errors are expected once the server stops accepting.
                    let client = http_client();
                    let Ok(page) = client.get(format!("{base}/accounts/login/")).send() else {
                        break;
                    };
                    let Ok(html) = page.text() else { break };
                    let token = csrf_field(&html);
                    let _ = client
                        .post(format!("{base}/accounts/login/"))
                        .form(&[
                            ("csrfmiddlewaretoken", token.as_str()),
                            ("username", "admin"),
                            ("password", "admin123"),
                        ])
                        .send();
                    logins += 1;
                }
                logins
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(server.terminate(), "exit status 0 after SIGTERM");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let logins: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(logins > 0);

    let check = run(dir.path(), &["--profile", "demo", "check"], &[]);
    assert!(check.status.success(), "{}", text(&check));
    let report = text(&check);
    assert!(
        report.contains("the database was closed cleanly"),
        "{report}"
    );
    assert!(
        !dir.path().join("oxidot-demo.redb.ctl").exists(),
        "socket removed"
    );
}

#[test]
fn config_errors_name_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let write = |contents: &str| std::fs::write(dir.path().join("Rocket.toml"), contents).unwrap();

    write("[default.oauth2_provider]\nbogus_setting = 1\n");
    let output = run(dir.path(), &["check"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = text(&output);
    assert!(
        message.contains("oauth2_provider.bogus_setting"),
        "{message}"
    );
    assert!(message.contains("Rocket.toml"), "{message}");
    assert!(message.contains("unknown key"), "{message}");

    write("[default]\nport = \"eighty\"\n");
    let message = text(&run(dir.path(), &["check"], &[]));
    assert!(
        message.contains("`port`") && message.contains("Rocket.toml"),
        "{message}"
    );

    write("[default.oauth2_provider]\ndefault_scopes = [\"nope\"]\n");
    let message = text(&run(dir.path(), &["check"], &[]));
    assert!(
        message.contains("oauth2_provider.default_scopes") && message.contains("Rocket.toml"),
        "{message}"
    );

    std::fs::remove_file(dir.path().join("Rocket.toml")).unwrap();
    let message = text(&run(dir.path(), &["check"], &[("OXIDOT_PORT", "abc")]));
    assert!(
        message.contains("`port`") && message.contains("OXIDOT_"),
        "{message}"
    );

    let message = text(&run(dir.path(), &["check"], &[("DOT_PKCE", "maybe")]));
    assert!(
        message.contains("environment variable DOT_PKCE"),
        "{message}"
    );

    let message = text(&run(dir.path(), &["check"], &[("PORT", "99999")]));
    assert!(message.contains("environment variable PORT"), "{message}");

    let message = text(&run(
        dir.path(),
        &["check"],
        &[("OIDC_RSA_PRIVATE_KEY", "not a key")],
    ));
    assert!(
        message.contains("environment variable OIDC_RSA_PRIVATE_KEY"),
        "{message}"
    );

    let missing = run(
        dir.path(),
        &["--config", "/nonexistent/oxidot.toml", "check"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("/nonexistent/oxidot.toml does not exist"));
}

#[test]
fn check_prints_each_value_its_source_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Rocket.toml"),
        "[default.oauth2_provider]\naccess_token_expire_seconds = 600\n[staging]\nport = 9000\n",
    )
    .unwrap();
    let key = josekit::jwk::alg::rsa::RsaKeyPair::generate(2048)
        .unwrap()
        .to_pem_private_key();
    let key = String::from_utf8(key).unwrap();
    let output = run(
        dir.path(),
        &["--profile", "staging", "check"],
        &[
            ("DOT_PKCE", "False"),
            ("OIDC_RSA_PRIVATE_KEY", key.as_str()),
            ("OXIDOT_LOG_LEVEL", "debug"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    let line = |key: &str| {
        report
            .lines()
            .find(|line| line.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {report}"))
            .to_owned()
    };
    assert!(
        line("oauth2_provider.pkce_required").contains("= false  # environment variable DOT_PKCE")
    );
    assert!(line("oauth2_provider.access_token_expire_seconds").contains("600  # TOML file"));
    assert!(line("port").contains("9000  # TOML file"));
    assert!(line("log_level").contains("OXIDOT_"));
    assert!(
        line("oauth2_provider.authorization_code_expire_seconds")
            .contains("60  # built-in default")
    );
    let secret = line("oauth2_provider.oidc_rsa_private_key");
    assert!(secret.contains("<redacted>"), "{secret}");
    assert!(!report.contains("BEGIN"));
    assert!(report.contains("configuration OK"));
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        "demo",
        "serve",
        "loaddata",
        "dumpdata",
        "createsuperuser",
        "changepassword",
        "check",
    ] {
        let output = run(dir.path(), &[command, "--help"], &[]);
        assert!(output.status.success(), "{command}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage: oxidot"));
    }
}

fn jwks_kids(base: &str) -> Vec<(String, String)> {
    let text = reqwest::blocking::get(format!("{base}/o/.well-known/jwks.json"))
        .unwrap()
        .text()
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut kids: Vec<(String, String)> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["alg"].as_str().unwrap().to_owned(),
                key["kid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kids.sort();
    kids
}

#[test]
fn signing_keys_are_generated_once_kept_and_managed_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let first = jwks_kids(&server.base);
    let algs: Vec<&str> = first.iter().map(|(alg, _)| alg.as_str()).collect();
    assert_eq!(
        algs,
        ["ES256", "EdDSA", "RS256"],
        "generated at first start"
    );
    let profile = ["--profile", "demo"];
    let keys = |args: &[&str]| {
        let output = run(dir.path(), &[&profile[..], &["keys"], args].concat(), &[]);
        (output.status.success(), text(&output))
    };
    let (ok, listed) = keys(&["list"]);
    assert!(ok, "{listed}");
    for (_, kid) in &first {
        assert!(listed.contains(kid.as_str()), "{listed}");
    }
    assert_eq!(listed.matches("signing").count(), 3, "{listed}");

    // A generated key is published at once, through the running server.
    let (ok, generated) = keys(&["generate", "--algorithm", "RS256"]);
    assert!(ok, "{generated}");
    let second = jwks_kids(&server.base);
    assert_eq!(second.len(), 4);
    let (ok, listed) = keys(&["list"]);
    assert!(
        ok && listed.contains("waiting for `oxidot keys rotate`"),
        "{listed}"
    );

    // Rotated in immediately (a compromised key): it signs now, the old RS256 key stays in JWKS.
    let (ok, rotated) = keys(&["rotate", "--algorithm", "RS256", "--immediately"]);
    assert!(ok && rotated.contains("signs now"), "{rotated}");
    let (_, listed) = keys(&["list"]);
    assert!(listed.contains("retired, published until"), "{listed}");
    assert_eq!(jwks_kids(&server.base).len(), 4);

    // Refusals are clear, and change nothing.
    let (ok, message) = keys(&["rotate", "--algorithm", "HS256"]);
    assert!(!ok && message.contains("not a key algorithm"), "{message}");
    let (ok, message) = keys(&["retire", "no-such-kid"]);
    assert!(!ok && message.contains("there is no key"), "{message}");
    let signing_es = first
        .iter()
        .find(|(alg, _)| alg == "ES256")
        .unwrap()
        .1
        .clone();
    let (ok, message) = keys(&["retire", &signing_es]);
    assert!(!ok && message.contains("rotate"), "{message}");

    // Kept in the store: the same keys after a restart.
    let before_restart = jwks_kids(&server.base);
    assert!(server.terminate());
    let server = Server::start(dir.path(), &["demo"]);
    assert_eq!(jwks_kids(&server.base), before_restart);
    assert!(server.terminate());
}
