//! Several `oxidot serve` processes on one PostgreSQL database, as behind a load balancer: a
//! code made on one instance is exchanged on another and its token used on the third; one
//! refresh token sent to all three at once is granted once; the periodic tasks run on one
//! leader only, and on another once the leader is killed; login failures count across
//! instances; a key added elsewhere is published by all; a database lost while serving
//! answers 503 and the server recovers when it is back. Needs `OXIDOT_TEST_POSTGRES` (skipped
//! without it unless `OXIDOT_REQUIRE_POSTGRES` is set).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{csrf_field, http_login, run, text};
use crate::e2e::{POSTMAN, browser_approves};
use crate::flow::challenge;
use crate::postgres::{fresh_database_url, sql_text};
use crate::support::{Server, http_client};

const SETTINGS: &str = r#"
[default.scheduler]
lease_seconds = 3
poll_seconds = 1

[default.tasks.clear_tokens]
task = "clear_tokens"
every = 2
period = "seconds"
enabled = true
one_off = false

[default.tasks.backup]
task = "backup"
every = 2
period = "seconds"
enabled = true
one_off = false
"#;

/// A database holding the DOT tutorial's users and clients, copied from a redb file loaded
/// with the demo fixtures (`copy-store`); None when no PostgreSQL is available.
fn tutorial_database(dir: &Path) -> Option<String> {
    let url = fresh_database_url()?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut load = vec!["loaddata".to_owned()];
    for name in [
        "auth.group.yaml",
        "auth.user.yaml",
        "oauth2_provider.application.yaml",
    ] {
        load.push(fixtures.join(name).display().to_string());
    }
    load.extend(["--database".to_owned(), "tutorial.redb".to_owned()]);
    let load: Vec<&str> = load.iter().map(String::as_str).collect();
    let loaded = run(dir, &load, &[]);
    assert!(loaded.status.success(), "{}", text(&loaded));
    let copied = run(
        dir,
        &["copy-store", "--from", "tutorial.redb", "--to", &url],
        &[],
    );
    assert!(copied.status.success(), "{}", text(&copied));
    assert!(
        text(&copied).contains("2 users, 4 applications"),
        "{}",
        text(&copied)
    );
    std::fs::write(dir.join("Rocket.toml"), SETTINGS).unwrap();
    Some(url)
}

fn serve(dir: &Path, url: &str) -> Server {
    Server::start_with(dir, &["serve"], &[("OXIDOT_DATABASE", url)])
}

/// How often the cleanup task has run, as the database records it.
fn cleanup_runs(url: &str) -> u64 {
    sql_text(
        url,
        "SELECT record->>'total_run_count' FROM oxidot_periodic_tasks WHERE name = 'clear_tokens'",
    )
    .and_then(|count| count.parse().ok())
    .unwrap_or(0)
}

/// The process id in the scheduler lease's holder (`host:pid:random`).
fn lease_holder_pid(url: &str) -> Option<u32> {
    let holder = sql_text(
        url,
        "SELECT holder FROM oxidot_leases WHERE name = 'scheduler'",
    )?;
    holder.rsplit(':').nth(1)?.parse().ok()
}

fn token_request(base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{base}/o/token/"))
        .basic_auth("hash1", Some("hashed"))
        .form(form)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, json(response))
}

/// Authorizes on `approve_on` (login and consent) and exchanges the code on `exchange_on`.
fn tokens_through(approve_on: &str, exchange_on: &str) -> Value {
    let verifier = "a-long-enough-pkce-verifier-for-the-multi-instance-test-0123456789";
    let authorize = format!(
        "{approve_on}/o/authorize/?response_type=code&client_id=hash1&scope=openid+read+write\
         &redirect_uri={}&state=s1&code_challenge={}&code_challenge_method=S256",
        urlencoding(POSTMAN),
        challenge(verifier)
    );
    let query = browser_approves(
        &http_client(),
        approve_on,
        &authorize,
        "Authorize hashed secret 1?",
    );
    let (status, tokens) = token_request(
        exchange_on,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query["code"]),
            ("redirect_uri", POSTMAN),
            ("code_verifier", verifier),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// A response's JSON body (Null when it is not JSON).
fn json(response: reqwest::blocking::Response) -> Value {
    serde_json::from_str(&response.text().unwrap_or_default()).unwrap_or(Value::Null)
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A browser signed in as the tutorial's admin (through `base`; the session is in the
/// database, so it is signed in on every instance).
fn admin_browser(base: &str) -> reqwest::blocking::Client {
    let browser = http_client();
    let page = browser
        .get(format!("{base}/accounts/login/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let signed_in = browser
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf_field(&page).as_str()),
            ("username", "admin"),
            ("password", "admin123"),
        ])
        .send()
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    browser
}

/// Posts an admin form on `path` as the page there shows it (its CSRF field added); the
/// status and the page a redirect leads to.
fn admin_post(
    browser: &reqwest::blocking::Client,
    base: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let page = browser
        .get(format!("{base}{path}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let token = csrf_field(&page);
    let mut fields = vec![("csrfmiddlewaretoken", token.as_str())];
    fields.extend_from_slice(form);
    let response = browser
        .post(format!("{base}{path}"))
        .form(&fields)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let Some(location) = response.headers().get("location") else {
        return (status, response.text().unwrap());
    };
    let location = location.to_str().unwrap().to_owned();
    let next = browser.get(format!("{base}{location}")).send().unwrap();
    (status, next.text().unwrap())
}

fn introspects(base: &str, secret: &str, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .post(format!("{base}/o/introspect/"))
        .basic_auth("hash1", Some(secret))
        .form(&[("token", token)])
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn kids(base: &str) -> Vec<String> {
    let jwks = json(reqwest::blocking::get(format!("{base}/o/.well-known/jwks.json")).unwrap());
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_instances_on_one_postgres_act_as_one_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = tutorial_database(dir.path()) else {
        return;
    };
    let mut instances: Vec<Server> = (0..3).map(|_| serve(dir.path(), &url)).collect();
    let bases: Vec<String> = instances.iter().map(|server| server.base.clone()).collect();

    // A code made on the first, exchanged on the second, its token used on the third.
    let tokens = tokens_through(&bases[0], &bases[1]);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let userinfo = reqwest::blocking::Client::new()
        .get(format!("{}/o/userinfo/", bases[2]))
        .bearer_auth(&access)
        .send()
        .unwrap();
    assert_eq!(userinfo.status().as_u16(), 200);
    let claims = json(userinfo);
    assert_eq!(claims["sub"], "1", "{claims}");
    let introspected = json(
        reqwest::blocking::Client::new()
            .post(format!("{}/o/introspect/", bases[2]))
            .basic_auth("hash1", Some("hashed"))
            .form(&[("token", access.as_str())])
            .send()
            .unwrap(),
    );
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["username"], "admin", "{introspected}");
    // Signed in through the first instance, known to all (the session is in the database).
    let admin = admin_browser(&bases[0]);
    for base in &bases {
        let page = admin.get(format!("{base}/admin/")).send().unwrap();
        assert_eq!(page.status().as_u16(), 200, "{base}");
    }

    // One refresh token sent to all three at once: exactly one is granted.
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let start = Arc::new(Barrier::new(3));
    let racers: Vec<_> = bases
        .iter()
        .map(|base| {
            let (base, refresh, start) = (base.clone(), refresh.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                token_request(
                    &base,
                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                )
            })
        })
        .collect();
    let outcomes: Vec<(u16, Value)> = racers
        .into_iter()
        .map(|racer| racer.join().unwrap())
        .collect();
    let granted = outcomes.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(granted, 1, "{outcomes:?}");
    for (status, body) in &outcomes {
        assert!(
            *status == 200 || (*status == 400 && body["error"] == "invalid_grant"),
            "{status} {body}"
        );
    }

    // Login failures spread over the instances count as on one: five, then refused.
    for attempt in 0..5 {
        assert_eq!(
            http_login(&bases[attempt % 3], "admin", "wrong-password"),
            400
        );
    }
    assert_eq!(http_login(&bases[2], "admin", "admin123"), 429);
    assert_eq!(http_login(&bases[0], "admin", "admin123"), 429);

    // dumpdata reads the shared database while the servers run.
    let dumped = run(
        dir.path(),
        &["dumpdata", "auth.user", "--format", "json"],
        &[("OXIDOT_DATABASE", &url)],
    );
    assert!(dumped.status.success(), "{}", text(&dumped));
    let users: Value = serde_json::from_slice(&dumped.stdout).unwrap();
    assert_eq!(users.as_array().map(Vec::len), Some(2), "{users}");
    assert!(
        users.to_string().contains("\"username\":\"admin\""),
        "{users}"
    );

    // Backups of PostgreSQL are its own tools' business: the command says so and makes
    // nothing, and so does the scheduled `backup` task (no directory beside a URL).
    let backup = run(
        dir.path(),
        &["backup", "copies"],
        &[("OXIDOT_DATABASE", &url)],
    );
    assert!(!backup.status.success());
    assert!(text(&backup).contains("pg_dump"), "{}", text(&backup));
    wait_for("a backup task run", Duration::from_secs(10), || {
        sql_text(
            &url,
            "SELECT record->'last_result'->>'message' FROM oxidot_periodic_tasks \
             WHERE name = 'backup'",
        )
        .is_some_and(|message| message.contains("pg_dump"))
    });
    let made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        made.iter()
            .all(|name| ["Rocket.toml", "tutorial.redb"].contains(&name.as_str())),
        "{made:?}"
    );

    // A key added elsewhere (the CLI, straight on the database) is published by every
    // instance within the key ring's poll.
    let before = kids(&bases[0]);
    let generated = run(
        dir.path(),
        &["keys", "generate", "--algorithm", "ES256"],
        &[("OXIDOT_DATABASE", &url)],
    );
    assert!(generated.status.success(), "{}", text(&generated));
    for base in &bases {
        wait_for("the new key in JWKS", Duration::from_secs(15), || {
            kids(base).len() == before.len() + 1
        });
    }

    // The cleanup runs every 2 s on the leader only: over 6 s, about 3 runs, not 9.
    let first = cleanup_runs(&url);
    std::thread::sleep(Duration::from_secs(6));
    let runs = cleanup_runs(&url) - first;
    // One leader: about 3 (scheduling jitter allowed); every instance running it: about 9.
    assert!(
        (1..=5).contains(&runs),
        "{runs} runs in 6 s with three instances"
    );

    // Disabled in the admin of one instance: the leader, whichever it is, stops running it
    // within a poll (1 s); enabled again through another instance, it runs again.
    let (status, _) = admin_post(
        &admin,
        &bases[0],
        "/admin/periodic-tasks/clear_tokens/",
        &[("action", "disable")],
    );
    assert_eq!(status, 303);
    std::thread::sleep(Duration::from_secs(3));
    let stopped = cleanup_runs(&url);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(cleanup_runs(&url), stopped, "a disabled task does not run");
    let (status, _) = admin_post(
        &admin,
        &bases[1],
        "/admin/periodic-tasks/clear_tokens/",
        &[("action", "enable")],
    );
    assert_eq!(status, 303);
    wait_for("the cleanup enabled again", Duration::from_secs(10), || {
        cleanup_runs(&url) > stopped
    });

    // The leader killed (SIGKILL: its lease is not released), another takes over once the
    // lease expires (3 s), and the cleanup goes on.
    let leader = lease_holder_pid(&url).expect("a lease holder");
    let position = instances
        .iter()
        .position(|server| server.child.id() == leader)
        .expect("the leader is one of the three");
    let mut killed = instances.remove(position);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    wait_for("another leader", Duration::from_secs(15), || {
        lease_holder_pid(&url).is_some_and(|pid| pid != leader)
    });
    let resumed = cleanup_runs(&url);
    wait_for("the cleanup to run again", Duration::from_secs(10), || {
        cleanup_runs(&url) >= resumed + 2
    });

    // A secret regenerated through one instance: another, which had verified the old secret
    // (and remembers it), refuses it at once and takes the new one.
    let (here, there) = (instances[0].base.clone(), instances[1].base.clone());
    assert_eq!(introspects(&there, "hashed", &access), 200);
    let (status, page) = admin_post(
        &admin,
        &here,
        "/admin/applications/3/",
        &[("action", "regenerate")],
    );
    assert_eq!(status, 303);
    let field = page
        .find("id=\"client-secret\"")
        .expect("the new secret shown once");
    let value = page[field..].find("value=\"").unwrap() + field + 7;
    let secret = &page[value..page[value..].find('"').unwrap() + value];
    assert_eq!(introspects(&there, "hashed", &access), 401);
    assert_eq!(introspects(&there, secret, &access), 200);
    for server in instances {
        assert!(server.terminate());
    }
}

/// A TCP relay to the database that a test can cut (every connection closed, new ones
/// dropped) and restore: the database "lost" and "back" without touching the shared server.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (flag, streams) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for incoming in listener.incoming() {
                let Ok(client) = incoming else { continue };
                if flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for stream in [&client, &server] {
                    streams.lock().unwrap().push(stream.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(read) = from.read(&mut buffer) {
                            if read == 0 || to.write_all(&buffer[..read]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[test]
fn losing_the_database_answers_503_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = tutorial_database(dir.path()) else {
        return;
    };
    let parsed = url::Url::parse(&url).unwrap();
    let relay = Relay::to(format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    ));
    let mut relayed = parsed.clone();
    relayed.set_port(Some(relay.port)).unwrap();
    let server = serve(dir.path(), relayed.as_str());
    let base = server.base.clone();
    let tokens = tokens_through(&base, &base);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let client = reqwest::blocking::Client::new();
    let hello = || {
        let response = client
            .get(format!("{base}/api/hello"))
            .bearer_auth(&access)
            .send()
            .unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().to_owned());
        (response.status().as_u16(), retry_after)
    };
    let ready = || {
        let response = client.get(format!("{base}/readyz")).send().unwrap();
        let status = response.status().as_u16();
        (status, json(response))
    };
    assert_eq!(hello().0, 200);
    assert_eq!(ready().0, 200);

    relay.cut();
    let (status, retry_after) = hello();
    assert_eq!(status, 503);
    assert!(retry_after.is_some(), "a 503 says when to come back");
    let (status, body) = ready();
    assert_eq!(status, 503);
    assert_eq!(body["store"], "unavailable", "{body}");
    let (status, body) = token_request(
        &base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "anything"),
        ],
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    relay.restore();
    wait_for("the database back", Duration::from_secs(20), || {
        ready().0 == 200
    });
    assert_eq!(
        hello().0,
        200,
        "the token minted before the loss still works"
    );
    assert!(server.terminate());
}
