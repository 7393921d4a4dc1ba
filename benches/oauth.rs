//! Load benchmark of the OAuth endpoints for BENCHMARKS.md.
//!
//! Run: `cargo bench --bench oauth` (builds the release binary; prints figures, asserts
//! nothing). It starts `oxidot serve` on a temporary database on a free loopback port, loads a
//! few clients, and drives it from 64 keep-alive connections on one thread of its own, with a
//! minimal HTTP/1.1 client so the generator costs as little of the two cores as possible.
//! Every token is durable before its response (the server's group commit).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONCURRENCY: usize = 64;
const DURATION: Duration = Duration::from_secs(8);
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CALLBACK: &str = "http://127.0.0.1:9/callback";

const FIXTURE: &str = r#"
- model: auth.user
  pk: 1
  fields: {username: bench, password: '', is_active: true}
- model: oauth2_provider.application
  pk: 1
  fields: {client_id: cc, client_type: confidential, authorization_grant_type: client-credentials,
           client_secret: cc-secret, hash_client_secret: true, name: CC}
- model: oauth2_provider.application
  pk: 2
  fields: {client_id: pw, client_type: confidential, authorization_grant_type: password,
           client_secret: pw-secret, hash_client_secret: true, name: PW}
- model: oauth2_provider.application
  pk: 3
  fields: {client_id: web, client_type: confidential, authorization_grant_type: authorization-code,
           client_secret: web-secret, hash_client_secret: true, name: Web app,
           redirect_uris: "http://127.0.0.1:9/callback"}
- model: oauth2_provider.application
  pk: 4
  fields: {client_id: rs, client_type: confidential, authorization_grant_type: authorization-code,
           client_secret: rs-secret, hash_client_secret: true, name: RS256 app, algorithm: RS256,
           redirect_uris: "http://127.0.0.1:9/callback"}
- model: oauth2_provider.application
  pk: 5
  fields: {client_id: es, client_type: confidential, authorization_grant_type: authorization-code,
           client_secret: es-secret, hash_client_secret: true, name: ES256 app, algorithm: ES256,
           redirect_uris: "http://127.0.0.1:9/callback"}
"#;

struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One keep-alive connection speaking just enough HTTP/1.1 for this server.
struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
    port: u16,
}

impl Conn {
    async fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buffer: Vec::with_capacity(8192),
            port,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        if self.stream.write_all(request.as_bytes()).await.is_err() {
            *self = Conn::open(self.port).await;
            self.stream.write_all(request.as_bytes()).await.unwrap();
        }
        self.read().await
    }

    /// A field of what the token endpoint answers `body`, the client authenticated by
    /// `authorization` (a Basic header).
    async fn token(&mut self, authorization: &str, body: &str, field: &str) -> String {
        self.send(
            "POST",
            "/o/token/",
            &[("Authorization", authorization)],
            body,
        )
        .await
        .json()[field]
            .as_str()
            .unwrap_or_else(|| panic!("the token endpoint gave no {field} for {body}"))
            .to_owned()
    }

    async fn read(&mut self) -> Response {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status = lines
                    .next()
                    .and_then(|line| line.split(' ').nth(1))
                    .and_then(|code| code.parse().ok())
                    .unwrap_or(0);
                let mut headers = HashMap::new();
                for line in lines {
                    if let Some((name, value)) = line.split_once(':') {
                        let name = name.trim().to_ascii_lowercase();
                        let value = value.trim().to_owned();
                        headers
                            .entry(name)
                            .and_modify(|existing: &mut String| {
                                existing.push('\n');
                                existing.push_str(&value);
                            })
                            .or_insert(value);
                    }
                }
                let length: usize = headers
                    .get("content-length")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                while self.buffer.len() < end + 4 + length {
                    self.fill().await;
                }
                let body = self.buffer[end + 4..end + 4 + length].to_vec();
                self.buffer.drain(..end + 4 + length);
                return Response {
                    status,
                    headers,
                    body,
                };
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        let read = self.stream.read(&mut chunk).await.unwrap_or(0);
        assert!(read > 0, "the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
}

/// Runs `CONCURRENCY` workers for `DURATION`; each `iteration` returns whether it succeeded.
/// Runs named on the command line (`cargo bench --bench oauth -- refresh`) match by substring;
/// with none named, every run.
fn selected(name: &str) -> bool {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    wanted.is_empty() || wanted.iter().any(|part| name.contains(part.as_str()))
}

/// A run's figures: requests per second, p50 and p99 in ms, peak RSS in MiB.
#[derive(Clone, Copy)]
struct Figures {
    p99: f64,
}

async fn run<S, F>(name: &str, ports: &[u16], pid: u32, setup: S, iteration: F) -> Option<Figures>
where
    S: AsyncFn(Conn) -> (Conn, String),
    F: AsyncFn(&mut Conn, &mut String) -> bool + Clone + 'static,
{
    if !selected(name) {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let local = tokio::task::LocalSet::new();
    let mut handles = Vec::new();
    let mut prepared = Vec::new();
    // Connections spread over the instances, as a load balancer would.
    for index in 0..CONCURRENCY {
        prepared.push(setup(Conn::open(ports[index % ports.len()]).await).await);
    }
    for (mut conn, mut state) in prepared {
        let stop = stop.clone();
        let iteration = iteration.clone();
        handles.push(local.spawn_local(async move {
            let mut outcome = Outcome {
                latencies: Vec::new(),
                errors: 0,
            };
            while !stop.load(Ordering::Relaxed) {
                let begun = Instant::now();
                if iteration(&mut conn, &mut state).await {
                    outcome.latencies.push(begun.elapsed());
                } else {
                    outcome.errors += 1;
                }
            }
            outcome
        }));
    }
    let begun = Instant::now();
    let peak = local
        .run_until(async {
            let mut peak = 0;
            while begun.elapsed() < DURATION {
                tokio::time::sleep(Duration::from_millis(100)).await;
                peak = peak.max(rss_kib(pid));
            }
            stop.store(true, Ordering::Relaxed);
            peak
        })
        .await;
    let elapsed = begun.elapsed();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let outcome = local.run_until(handle).await.unwrap();
        latencies.extend(outcome.latencies);
        errors += outcome.errors;
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{name:<44} {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {errors}  peak RSS {:.1} MiB",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        peak as f64 / 1024.0
    );
    Some(Figures { p99: pct(0.99) })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `oxidot serve` on `dir`'s database with `settings` (environment variables) added.
fn start_server(dir: &std::path::Path, port: u16, settings: &[(&str, &str)]) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .arg("serve")
        .current_dir(dir)
        .envs(settings.iter().copied())
        .env("OXIDOT_PORT", port.to_string())
        // OXIDOT_LOG_LEVEL=oxidot::store=trace shows each group commit (to bench-server.log).
        .env(
            "OXIDOT_LOG_LEVEL",
            std::env::var("OXIDOT_LOG_LEVEL").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(std::env::temp_dir().join("oxidot-bench-server.log"))
                .map_or_else(|_| Stdio::null(), Stdio::from),
        )
        .spawn()
        .unwrap();
    // Opening a database of a million rows takes longer than the small ones.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Rows the cleanup benchmark files: expired access tokens, then expired ID tokens, codes and
/// revoked refresh tokens of each, and live access tokens.
const EXPIRED_ACCESS: usize = 1_000_000;
const EXPIRED_OTHERS: usize = 100_000;
const LIVE_ACCESS: usize = 100_000;

/// Files expired and live rows straight into the (stopped) server's database, as a year of
/// traffic would have left them.
fn fill(database: &std::path::Path) {
    use oxidot::store::{
        AccessToken, FamilyId, Grant, IdToken, RefreshToken, SecretKey, Store, Timestamp,
    };
    let (store, _) = Store::open(database, 8 << 20).unwrap();
    let now = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    let long_ago = Timestamp(now.0 - 2 * 86_400 * 1_000_000);
    let key_at = |at: Timestamp| SecretKey::of_token(&oxidot::random::ordered_token(at.0).unwrap());
    let chunk = 20_000;
    let kinds: [(usize, u8); 5] = [
        (EXPIRED_ACCESS, 0),
        (EXPIRED_OTHERS, 1),
        (EXPIRED_OTHERS, 2),
        (EXPIRED_OTHERS, 3),
        (LIVE_ACCESS, 4),
    ];
    for (count, kind) in kinds {
        for start in (0..count).step_by(chunk) {
            let end = (start + chunk).min(count);
            store
                .write_blocking(move |tx| {
                    for i in start..end {
                        let created = Timestamp(long_ago.0 + i as i64);
                        let key = key_at(if kind == 4 { now } else { created });
                        match kind {
                            0 | 4 => {
                                let (created, expires) = if kind == 4 {
                                    (now, now.plus_seconds(36_000))
                                } else {
                                    (created, created.plus_seconds(3_600))
                                };
                                tx.put_access_token(
                                    &key,
                                    &AccessToken {
                                        user: None,
                                        application: 1,
                                        scope: "read".to_owned(),
                                        expires,
                                        created,
                                        refresh_token: None,
                                        family: None,
                                        tail: String::new(),
                                    },
                                )?;
                            }
                            1 => tx.put_id_token(
                                &key,
                                &IdToken {
                                    user: Some(1),
                                    application: 3,
                                    jti: String::new(),
                                    scope: "openid".to_owned(),
                                    expires: created.plus_seconds(3_600),
                                    created,
                                },
                            )?,
                            2 => tx.put_grant(
                                &key,
                                &Grant {
                                    user: 1,
                                    application: 3,
                                    redirect_uri: None,
                                    scope: "read".to_owned(),
                                    code_challenge: None,
                                    code_challenge_method: None,
                                    nonce: None,
                                    auth_time: created,
                                    created,
                                    expires: created.plus_seconds(60),
                                    used: Some(created),
                                    family: FamilyId(key.0[..16].try_into().unwrap()),
                                    sid: None,
                                    claims: None,
                                },
                            )?,
                            _ => tx.put_refresh_token(
                                &key,
                                &RefreshToken {
                                    user: Some(1),
                                    application: 2,
                                    scope: "read".to_owned(),
                                    created,
                                    revoked: Some(created),
                                    access_token: None,
                                    family: FamilyId(key.0[..16].try_into().unwrap()),
                                    tail: String::new(),
                                },
                            )?,
                        }
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
    store.close().unwrap();
}

fn file_mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |meta| meta.len() as f64 / (1024.0 * 1024.0))
}

/// MiB in pages the database uses, with the server stopped.
fn used_mib(path: &std::path::Path) -> f64 {
    let (store, _) = oxidot::store::Store::open(path, 8 << 20).unwrap();
    let bytes = store.allocated_bytes().unwrap();
    store.close().unwrap();
    bytes as f64 / (1024.0 * 1024.0)
}

/// `oxidot cleartokens` through the running server (or on the file when none runs); its output.
fn cleartokens(dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .arg("cleartokens")
        .current_dir(dir)
        .env(
            "OXIDOT_OAUTH2_PROVIDER__REFRESH_TOKEN_REUSE_PROTECTION",
            "false",
        )
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn cleanup_figures(output: &str) -> (u64, f64) {
    let deleted: u64 = output
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let millis: f64 = output
        .lines()
        .find_map(|line| line.strip_prefix('(')?.strip_suffix(" ms)")?.parse().ok())
        .unwrap_or(f64::NAN);
    (deleted, millis)
}

/// The cleanup benchmark (`cargo bench --bench oauth -- cleanup`): 1.3 million expired rows
/// and 100,000 live ones; cleanup rate, the server's peak RSS during it, the file size before,
/// after and after refilling, and token-endpoint p99 during the cleanup against idle.
fn cleanup_bench(dir: &std::path::Path) {
    let database = dir.join("oxidot.redb");
    let filling = Instant::now();
    fill(&database);
    let expired = EXPIRED_ACCESS + 3 * EXPIRED_OTHERS;
    println!(
        "filled {expired} expired and {LIVE_ACCESS} live rows in {:.1} s; file {:.1} MiB, {:.1} MiB in use",
        filling.elapsed().as_secs_f64(),
        file_mib(&database),
        used_mib(&database)
    );
    let port = free_port();
    // Without reuse protection, revoked refresh tokens are due at once (the benchmark's
    // refresh rows were revoked two days ago).
    let mut server = start_server(
        dir,
        port,
        &[
            (
                "OXIDOT_OAUTH2_PROVIDER__REFRESH_TOKEN_REUSE_PROTECTION",
                "false",
            ),
            ("OXIDOT_TASKS__CLEAR_TOKENS__ENABLED", "false"),
        ],
    );
    let pid = server.id();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cc = basic("cc", "cc-secret");
    let ports = [port];
    let load = |name: &'static str| {
        let auth = cc.clone();
        run(
            name,
            &ports,
            pid,
            async |conn: Conn| (conn, String::new()),
            async move |conn: &mut Conn, _: &mut String| {
                conn.send(
                    "POST",
                    "/o/token/",
                    &[("Authorization", &auth)],
                    "grant_type=client_credentials&scope=read",
                )
                .await
                .status
                    == 200
            },
        )
    };
    let idle = runtime
        .block_on(load("client_credentials, idle (cleanup bench)"))
        .unwrap();
    let cleaner = {
        let dir = dir.to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cleartokens(&dir)
        })
    };
    let busy = runtime
        .block_on(load("client_credentials while cleanup runs"))
        .unwrap();
    let output = cleaner.join().unwrap();
    let (deleted, millis) = cleanup_figures(&output);
    println!(
        "cleanup: {deleted} rows in {millis:.0} ms = {:.0} rows/s; p99 while it ran {:.2} ms vs idle {:.2} ms ({:.1}x)",
        deleted as f64 / (millis / 1000.0),
        busy.p99,
        idle.p99,
        busy.p99 / idle.p99
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let after = (file_mib(&database), used_mib(&database));
    fill(&database);
    let refilled = (file_mib(&database), used_mib(&database));
    let output = cleartokens(dir);
    let (deleted_again, millis_again) = cleanup_figures(&output);
    println!(
        "file (in use): {:.1} ({:.1}) MiB after the cleanup, {:.1} ({:.1}) MiB refilled with the \
         same rows, {:.1} ({:.1}) MiB after cleaning again ({deleted_again} rows in {millis_again:.0} ms, \
         server stopped)",
        after.0,
        after.1,
        refilled.0,
        refilled.1,
        file_mib(&database),
        used_mib(&database)
    );
    for line in output.lines() {
        println!("  {line}");
    }
    let compacting = Instant::now();
    let compacted = Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .arg("compact")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(compacted.status.success(), "{compacted:?}");
    println!(
        "oxidot compact: {:.1} MiB file ({:.1} MiB in use) in {:.1} s",
        file_mib(&database),
        used_mib(&database),
        compacting.elapsed().as_secs_f64()
    );
}

/// Logs the bench user in on `conn`: its Cookie header value and CSRF token.
async fn log_in(conn: &mut Conn) -> (String, String) {
    let page = conn.send("GET", "/accounts/login/", &[], "").await;
    let csrf = page.headers["set-cookie"]
        .lines()
        .find_map(|line| line.strip_prefix("csrftoken="))
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned();
    let cookie = format!("csrftoken={csrf}");
    let login = conn
        .send(
            "POST",
            "/accounts/login/",
            &[("Cookie", &cookie)],
            &format!("csrfmiddlewaretoken={csrf}&username=bench&password=bench-password-1"),
        )
        .await;
    let mut cookies = HashMap::new();
    for line in login.headers["set-cookie"].lines() {
        if let Some((name, rest)) = line.split_once('=') {
            cookies.insert(
                name.to_owned(),
                rest.split(';').next().unwrap_or_default().to_owned(),
            );
        }
    }
    (
        format!(
            "sessionid={}; csrftoken={}",
            cookies["sessionid"], cookies["csrftoken"]
        ),
        cookies["csrftoken"].clone(),
    )
}

/// Admin pages over a million tokens (`cargo bench --bench oauth -- admin`): the cleanup
/// bench's 1.4 million rows, then each list page fetched 20 times by a signed-in staff user.
/// Makes the bench's user a superuser (the admin pages are theirs).
fn make_bench_a_superuser(store: &oxidot::store::Store) {
    store
        .write_blocking(|tx| {
            let mut user = tx.user_by_username("bench")?.unwrap();
            user.is_staff = true;
            user.is_superuser = true;
            tx.put_user(&user)
        })
        .unwrap();
}

/// Gets an admin page `times` times on one connection: the median and slowest times in
/// milliseconds, and how many rows (occurrences of `row`) the last answer had.
async fn time_page(
    conn: &mut Conn,
    cookie: &str,
    path: &str,
    times: usize,
    row: &str,
) -> (f64, f64, usize) {
    let mut took = Vec::new();
    let mut rows = 0;
    for _ in 0..times {
        let started = Instant::now();
        let page = conn.send("GET", path, &[("Cookie", cookie)], "").await;
        took.push(started.elapsed());
        assert_eq!(page.status, 200, "{path}");
        rows = String::from_utf8_lossy(&page.body).matches(row).count();
    }
    took.sort();
    let millis = |at: usize| took[at].as_secs_f64() * 1000.0;
    (millis(took.len() / 2), millis(took.len() - 1), rows)
}

fn admin_bench(dir: &std::path::Path) {
    let database = dir.join("oxidot.redb");
    fill(&database);
    {
        let (store, _) = oxidot::store::Store::open(&database, 8 << 20).unwrap();
        make_bench_a_superuser(&store);
        store.close().unwrap();
    }
    let port = free_port();
    let mut server = start_server(
        dir,
        port,
        &[("OXIDOT_TASKS__CLEAR_TOKENS__ENABLED", "false")],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A cursor in the middle of the expired access tokens (keys start with their issue time).
    let middle = {
        let now = time::OffsetDateTime::now_utc();
        let micros = (now.unix_timestamp_nanos() / 1000) as i64 - 2 * 86_400 * 1_000_000
            + (EXPIRED_ACCESS / 2) as i64;
        let key =
            oxidot::store::SecretKey::of_token(&oxidot::random::ordered_token(micros).unwrap());
        key.0
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let pages = [
        ("dashboard", "/admin/".to_owned()),
        ("access tokens, newest", "/admin/access-tokens/".to_owned()),
        (
            "access tokens, a page in the middle",
            format!("/admin/access-tokens/?before={middle}"),
        ),
        (
            "access tokens of one client, live",
            "/admin/access-tokens/?application=cc&state=live".to_owned(),
        ),
        (
            "access tokens, expired",
            "/admin/access-tokens/?state=expired".to_owned(),
        ),
        (
            "access tokens, revoked (none: a full 20,000-row scan)",
            "/admin/access-tokens/?state=revoked".to_owned(),
        ),
        (
            "access tokens of a user",
            "/admin/access-tokens/?user=bench".to_owned(),
        ),
        ("refresh tokens", "/admin/refresh-tokens/".to_owned()),
        ("authorization codes", "/admin/grants/".to_owned()),
        ("ID tokens", "/admin/id-tokens/".to_owned()),
        ("applications", "/admin/applications/".to_owned()),
        ("users", "/admin/users/".to_owned()),
    ];
    runtime.block_on(async {
        let mut conn = Conn::open(port).await;
        let (cookie, _) = log_in(&mut conn).await;
        println!(
            "admin pages over {} access tokens (20 requests each, one connection):",
            EXPIRED_ACCESS + LIVE_ACCESS
        );
        for (label, path) in &pages {
            let (p50, max, rows) = time_page(&mut conn, &cookie, path, 20, "name=\"key\"").await;
            println!("  {label:<55} p50 {p50:>7.2} ms  max {max:>7.2} ms  rows {rows}");
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

/// The admin's user list over many users (`BENCH_USERS`, 100,000 by default): each page
/// searched, sorted and paged by the store, on the file and, with `BENCH_POSTGRES`, on
/// PostgreSQL (the same users moved there by `copy-store`).
fn users_bench(dir: &std::path::Path) {
    let count: u32 = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(100_000);
    let database = dir.join("oxidot.redb");
    {
        let (store, _) = oxidot::store::Store::open(&database, 64 << 20).unwrap();
        make_bench_a_superuser(&store);
        for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
            let chunk = chunk.to_vec();
            store
                .write_blocking(move |tx| {
                    for n in &chunk {
                        let user = oxidot::store::User {
                            id: tx.next_user_id()?,
                            username: format!("member{n:07}"),
                            password: "!".to_owned(),
                            first_name: ["Ann", "Bo", "Chloé", "Dmitri"][*n as usize % 4]
                                .to_owned(),
                            last_name: format!("Family{}", n % 997),
                            email: format!("m{n}@example.org"),
                            is_active: true,
                            is_staff: false,
                            is_superuser: false,
                            last_login: (n % 3 != 0).then_some(oxidot::store::Timestamp(
                                1_700_000_000_000_000 + i64::from(*n),
                            )),
                            date_joined: oxidot::store::Timestamp(
                                1_600_000_000_000_000 + i64::from(*n),
                            ),
                            groups: Vec::new(),
                            user_permissions: Vec::new(),
                        };
                        tx.put_user(&user)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        store.close().unwrap();
    }
    let middle = count / 100 / 2;
    let pages = [
        ("first page (id order)", "/admin/users/".to_owned()),
        (
            "by username, a page in the middle",
            format!("/admin/users/?sort=username&page={middle}"),
        ),
        (
            "by last login, newest first",
            "/admin/users/?sort=-last_login".to_owned(),
        ),
        ("by name", "/admin/users/?sort=name".to_owned()),
        (
            "search, one match",
            format!("/admin/users/?q=member{:07}", count / 2),
        ),
        (
            "search, two words (a quarter match)",
            "/admin/users/?q=chlo%C3%A9+family1".to_owned(),
        ),
        ("search, no match", "/admin/users/?q=nobody-here".to_owned()),
    ];
    let mut backends = vec![("a redb file", None)];
    if let Ok(server) = std::env::var("BENCH_POSTGRES") {
        backends.push((
            "PostgreSQL (same machine)",
            Some(bench_database(&server, dir)),
        ));
    }
    for (label, url) in backends {
        let port = free_port();
        let mut settings = vec![("OXIDOT_TASKS__CLEAR_TOKENS__ENABLED", "false")];
        if let Some(url) = &url {
            settings.push(("OXIDOT_DATABASE", url));
        }
        let mut server = start_server(dir, port, &settings);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut conn = Conn::open(port).await;
            let (cookie, _) = log_in(&mut conn).await;
            println!(
                "admin user list over {count} users on {label} (10 requests each, one connection):"
            );
            for (what, path) in &pages {
                let (p50, max, rows) =
                    time_page(&mut conn, &cookie, path, 10, "<td><a href=\"/admin/users/").await;
                println!(
                    "  {what:<40} p50 {p50:>8.2} ms  max {max:>8.2} ms  rows {rows}  peak RSS {:.1} MiB",
                    peak_rss_kib(server.id()) as f64 / 1024.0
                );
            }
        });
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        let _ = server.wait();
    }
}

/// Writes a DOT `dumpdata` (JSON) of a user, an application and `tokens` access tokens, every
/// other one with its refresh token, as DOT 3.4.1 writes them.
fn write_dump(path: &std::path::Path, tokens: u64) {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    write!(
        out,
        r#"[{{"model": "auth.user", "pk": 9001, "fields": {{"username": "imported", "password": "", "is_active": true}}}},
{{"model": "oauth2_provider.application", "pk": 9001, "fields": {{"client_id": "imported-app", "client_type": "confidential", "authorization_grant_type": "password", "client_secret": "pbkdf2_sha256$1000000$salt$aGFzaA==", "hash_client_secret": true, "name": "Imported"}}}}"#
    )
    .unwrap();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for n in 1..=tokens {
        let access = format!("access-{n:012}-xxxxxxxxxxxxxxxx");
        write!(
            out,
            r#",
{{"model": "oauth2_provider.accesstoken", "pk": {n}, "fields": {{"user": 9001, "source_refresh_token": null, "id_token": null, "token": "{access}", "token_checksum": "{}", "application": 9001, "expires": "2099-01-01T00:00:00Z", "scope": "read write", "created": "2026-11-01T00:00:00Z", "updated": "2026-11-01T00:00:00Z"}}}}"#,
            hex(&sha2::Sha256::digest(access.as_bytes()))
        )
        .unwrap();
        if n % 2 == 0 {
            let refresh = format!("refresh-{n:012}-xxxxxxxxxxxxxxx");
            write!(
                out,
                r#",
{{"model": "oauth2_provider.refreshtoken", "pk": {n}, "fields": {{"user": 9001, "token": "{refresh}", "token_checksum": "{}", "application": 9001, "access_token": {n}, "created": "2026-11-01T00:00:00Z", "updated": "2026-11-01T00:00:00Z", "revoked": null, "token_family": "{:032x}"}}}}"#,
                hex(&sha2::Sha256::digest(refresh.as_bytes())),
                n
            )
            .unwrap();
        }
    }
    writeln!(out, "\n]").unwrap();
}

/// `oxidot loaddata` of large DOT dumps (`cargo bench --bench oauth -- import`; sizes from
/// `BENCH_IMPORT_SIZES`, default 1,000,000 and 10,000,000 access tokens): time and peak RSS
/// of the loading process, with no server running; into a fresh PostgreSQL database on the
/// server `BENCH_POSTGRES` names, when it is set, else into a redb file.
fn import_bench(dir: &std::path::Path) {
    let postgres = std::env::var("BENCH_POSTGRES").ok();
    let binary = env!("CARGO_BIN_EXE_oxidot");
    let sizes: Vec<u64> = std::env::var("BENCH_IMPORT_SIZES")
        .unwrap_or_else(|_| "1000000,10000000".to_owned())
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect();
    for tokens in sizes {
        let dump = dir.join(format!("dump-{tokens}.json"));
        write_dump(&dump, tokens);
        let file_mib = std::fs::metadata(&dump).unwrap().len() as f64 / (1 << 20) as f64;
        let file = dir.join(format!("import-{tokens}.redb"));
        let database = match &postgres {
            Some(server) => empty_database(
                server,
                &format!("oxidot_import_{tokens}_{}", std::process::id()),
            ),
            None => file.display().to_string(),
        };
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args([
                "--database",
                database.as_str(),
                "loaddata",
                dump.to_str().unwrap(),
            ])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut peak = 0;
        let status = loop {
            peak = peak.max(peak_rss_kib(pid));
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        let mut output = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut output).unwrap();
        assert!(status.success(), "{output}");
        let rows = tokens + tokens / 2;
        let database_bytes = match &postgres {
            Some(_) => postgres_database_bytes(&database),
            None => std::fs::metadata(&file).unwrap().len(),
        };
        println!(
            "loaddata {tokens} access + {} refresh tokens ({file_mib:.0} MiB of JSON) into {}: {:.1} s ({:.0} records/s), peak RSS {:.1} MiB, database {:.0} MiB; {}",
            tokens / 2,
            if postgres.is_some() {
                "PostgreSQL"
            } else {
                "a redb file"
            },
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64(),
            peak as f64 / 1024.0,
            database_bytes as f64 / (1 << 20) as f64,
            output.trim()
        );
        let _ = std::fs::remove_file(&dump);
        let _ = std::fs::remove_file(&file);
    }
}

/// The server's peak resident memory so far (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Backup and restore of a million-token database (`cargo bench --bench oauth -- backup`):
/// `oxidot backup` through the running server (its peak RSS before and after), then
/// `oxidot restore` with the server stopped.
fn backup_bench(dir: &std::path::Path) {
    let database = dir.join("oxidot.redb");
    fill(&database);
    let port = free_port();
    let mut server = start_server(
        dir,
        port,
        &[("OXIDOT_TASKS__CLEAR_TOKENS__ENABLED", "false")],
    );
    let pid = server.id();
    let before = peak_rss_kib(pid);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .args(["backup", "copy.redb"])
        .current_dir(dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    let after = peak_rss_kib(pid);
    println!(
        "backup of a {:.1} MiB database ({} access tokens and {} other rows) through the running \
         server: {:.2} s, {:.1} MiB copy; server peak RSS {:.1} MiB before, {:.1} MiB after",
        file_mib(&database),
        EXPIRED_ACCESS + LIVE_ACCESS,
        3 * EXPIRED_OTHERS,
        took.as_secs_f64(),
        file_mib(&dir.join("copy.redb")),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .args(["restore", "copy.redb"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    println!(
        "restore with the server stopped: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// Steady issue-and-expire load (`cargo bench --bench oauth -- growth`): each cycle issues
/// `PER_CYCLE` access tokens in small durable transactions, as the token endpoint's group
/// commits do, lets them expire and cleans them; the file size and the pages in use after each
/// cycle show whether freed pages are reused.
fn growth_bench(dir: &std::path::Path) {
    use oxidot::store::{AccessToken, SecretKey, Store, Timestamp};
    const PER_CYCLE: usize = 200_000;
    const PER_TRANSACTION: usize = 100;
    const CYCLES: usize = 8;
    let database = dir.join("growth.redb");
    let (store, _) = Store::open(&database, 8 << 20).unwrap();
    let start = time::OffsetDateTime::now_utc();
    let clock = oxidot::clock::Clock::manual(start);
    let provider = oxidot::config::OAuth2Provider::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    for cycle in 1..=CYCLES {
        let issuing = Instant::now();
        for _ in 0..PER_CYCLE / PER_TRANSACTION {
            let now = Timestamp::from_datetime(clock.now());
            store
                .write_blocking(move |tx| {
                    for i in 0..PER_TRANSACTION {
                        let created = Timestamp(now.0 + i as i64);
                        let key =
                            SecretKey::of_token(&oxidot::random::ordered_token(created.0).unwrap());
                        tx.put_access_token(
                            &key,
                            &AccessToken {
                                user: None,
                                application: 1,
                                scope: "read".to_owned(),
                                expires: created.plus_seconds(3_600),
                                created,
                                refresh_token: None,
                                family: None,
                                tail: String::new(),
                            },
                        )?;
                    }
                    Ok(())
                })
                .unwrap();
            clock.advance(time::Duration::milliseconds(10));
        }
        let issued = (
            file_mib(&database),
            store.allocated_bytes().unwrap() as f64 / 1048576.0,
        );
        let issue_seconds = issuing.elapsed().as_secs_f64();
        clock.advance(time::Duration::hours(2));
        let report = runtime
            .block_on(oxidot::cleanup::clear_expired(
                &store, &provider, &clock, &stop,
            ))
            .unwrap();
        println!(
            "cycle {cycle}: issued {PER_CYCLE} in {issue_seconds:.1} s -> file {:.1} MiB ({:.1} in use); \
             cleaned {} in {} ms -> file {:.1} MiB ({:.1} in use)",
            issued.0,
            issued.1,
            report.total(),
            report.elapsed_millis,
            file_mib(&database),
            store.allocated_bytes().unwrap() as f64 / 1048576.0
        );
    }
    store.close().unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_oxidot");
    std::fs::write(dir.path().join("bench.yaml"), FIXTURE).unwrap();
    let status = Command::new(binary)
        .args(["loaddata", "bench.yaml"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut password = Command::new(binary)
        .args(["changepassword", "bench", "--password-stdin"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(password.stdin.as_mut().unwrap(), b"bench-password-1\n").unwrap();
    assert!(password.wait().unwrap().success());
    // Heavy: only when named (`cargo bench --bench oauth -- import`).
    if std::env::args().skip(1).any(|arg| arg == "import") {
        import_bench(dir.path());
        return;
    }
    // Heavy: only when named (`cargo bench --bench oauth -- backup`).
    if std::env::args().skip(1).any(|arg| arg == "backup") {
        backup_bench(dir.path());
        return;
    }
    // Heavy: only when named (`cargo bench --bench oauth -- admin`).
    if std::env::args().skip(1).any(|arg| arg == "admin") {
        admin_bench(dir.path());
        return;
    }
    // Heavy: only when named (`cargo bench --bench oauth -- users`).
    if std::env::args().skip(1).any(|arg| arg == "users") {
        users_bench(dir.path());
        return;
    }
    // Heavy: only when named (`cargo bench --bench oauth -- growth`).
    if std::env::args().skip(1).any(|arg| arg == "growth") {
        growth_bench(dir.path());
        return;
    }
    // Heavy: only when named (`cargo bench --bench oauth -- cleanup`).
    if std::env::args().skip(1).any(|arg| arg == "cleanup") {
        cleanup_bench(dir.path());
        return;
    }

    // `BENCH_POSTGRES=postgres://…` (a server): the same runs on a fresh database
    // there, copied from the loaded file, with `BENCH_INSTANCES` servers (default 1).
    let postgres = std::env::var("BENCH_POSTGRES")
        .ok()
        .map(|server| bench_database(&server, dir.path()));
    let instances: usize = std::env::var("BENCH_INSTANCES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);
    assert!(
        instances == 1 || postgres.is_some(),
        "several instances need BENCH_POSTGRES"
    );
    let settings: Vec<(&str, &str)> = postgres
        .as_deref()
        .map(|url| vec![("OXIDOT_DATABASE", url)])
        .unwrap_or_default();
    let ports: Vec<u16> = (0..instances).map(|_| free_port()).collect();
    let mut children: Vec<Child> = ports
        .iter()
        .map(|port| start_server(dir.path(), *port, &settings))
        .collect();
    let port = ports[0];
    let pid = children[0].id();
    println!(
        "oxidot serve, release build, {} on {}, {CONCURRENCY} connections, {} s per run, generator on one thread of the same 2-core machine (peak RSS: the first instance)",
        if instances == 1 {
            "one instance".to_owned()
        } else {
            format!("{instances} instances")
        },
        if postgres.is_some() {
            "PostgreSQL (same machine)"
        } else {
            "a redb file"
        },
        DURATION.as_secs()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let cc = basic("cc", "cc-secret");
        let pw = basic("pw", "pw-secret");

        // A token for the read benchmarks (and the first, full-price argon2 check of cc).
        let mut conn = Conn::open(port).await;
        let token = conn.token(&cc, "grant_type=client_credentials&scope=read+introspection", "access_token").await;

        let auth = cc.clone();
        run(
            "client_credentials (hashed secret, durable)",
            &ports,
            pid,
            async |conn: Conn| (conn, String::new()),
            async move |conn: &mut Conn, _: &mut String| {
                conn.send(
                    "POST",
                    "/o/token/",
                    &[("Authorization", &auth)],
                    "grant_type=client_credentials&scope=read",
                )
                .await
                .status
                    == 200
            },
        )
        .await;

        let auth = pw.clone();
        run(
            "refresh_token (rotating, durable)",
            &ports,
            pid,
            async |mut conn: Conn| {
                let response = conn
                    .send(
                        "POST",
                        "/o/token/",
                        &[("Authorization", &pw)],
                        "grant_type=password&username=bench&password=bench-password-1&scope=read",
                    )
                    .await;
                let refresh = response.json()["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (conn, refresh)
            },
            async move |conn: &mut Conn, refresh: &mut String| {
                let body = format!("grant_type=refresh_token&refresh_token={refresh}");
                let response = conn
                    .send("POST", "/o/token/", &[("Authorization", &auth)], &body)
                    .await;
                match response.json()["refresh_token"].as_str() {
                    Some(next) if response.status == 200 => {
                        *refresh = next.to_owned();
                        true
                    }
                    _ => false,
                }
            },
        )
        .await;

        let (auth, body) = (cc.clone(), format!("token={token}"));
        run(
            "introspection (client auth, remembered)",
            &ports,
            pid,
            async |conn: Conn| (conn, String::new()),
            async move |conn: &mut Conn, _: &mut String| {
                let response = conn
                    .send("POST", "/o/introspect/", &[("Authorization", &auth)], &body)
                    .await;
                response.status == 200 && response.body.starts_with(b"{\"active\":true")
            },
        )
        .await;

        let bearer = format!("Bearer {token}");
        run(
            "/api/hello (bearer)",
            &ports,
            pid,
            async |conn: Conn| (conn, String::new()),
            async move |conn: &mut Conn, _: &mut String| {
                conn.send("GET", "/api/hello", &[("Authorization", &bearer)], "")
                    .await
                    .status
                    == 200
            },
        )
        .await;


        // userinfo with a token carrying openid and profile.
        let mut conn = Conn::open(port).await;
        let openid_token = conn.token(&pw, "grant_type=password&username=bench&password=bench-password-1&scope=openid+profile", "access_token").await;
        let bearer = format!("Bearer {openid_token}");
        run(
            "userinfo (bearer, openid profile)",
            &ports,
            pid,
            async |conn: Conn| (conn, String::new()),
            async move |conn: &mut Conn, _: &mut String| {
                let response = conn.send("GET", "/o/userinfo/", &[("Authorization", &bearer)], "").await;
                response.status == 200 && response.body.starts_with(b"{\"sub\":")
            },
        )
        .await;

        // The full authorization code flow: consent page, consent POST, code exchange, with a
        // logged-in browser session per connection.
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER));
        for (name, client, scope) in [
            ("authorization code flow (page + consent + token)", "web", "read"),
            ("authorization code flow with openid, RS256 ID token", "rs", "openid+read"),
            ("authorization code flow with openid, ES256 ID token", "es", "openid+read"),
        ] {
        let web = basic(client, &format!("{client}-secret"));
        let wants_id_token = scope.starts_with("openid");
        let authorize = format!(
            "/o/authorize/?response_type=code&client_id={client}&redirect_uri={}&scope={scope}&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
            enc(CALLBACK)
        );
        let consent_body = format!(
            "client_id={client}&response_type=code&scope={scope}&redirect_uri={}&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256&allow=Authorize",
            enc(CALLBACK)
        );
        let exchange_prefix = format!("grant_type=authorization_code&redirect_uri={}&code_verifier={VERIFIER}&code=", enc(CALLBACK));
        run(
            name,
            &ports,
            pid,
            async |mut conn: Conn| {
                {
                    let (cookie, csrf) = log_in(&mut conn).await;
                    let state = format!("{cookie}\n{csrf}");
                    (conn, state)
                }
            },
            async move |conn: &mut Conn, state: &mut String| {
                let (cookie, csrf) = state
                    .split_once('\n')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .unwrap();
                {
                    let page = conn.send("GET", &authorize, &[("Cookie", &cookie)], "").await;
                    if page.status != 200 {
                        return false;
                    }
                    let consent = conn
                        .send("POST", "/o/authorize/", &[("Cookie", &cookie)], &format!("csrfmiddlewaretoken={csrf}&{consent_body}"))
                        .await;
                    let Some(location) = consent.headers.get("location") else {
                        return false;
                    };
                    let Some(code) = location.split("code=").nth(1).and_then(|rest| rest.split('&').next()) else {
                        return false;
                    };
                    let token = conn
                        .send("POST", "/o/token/", &[("Authorization", &web)], &format!("{exchange_prefix}{code}"))
                        .await;
                    token.status == 200
                        && (!wants_id_token || token.json()["id_token"].is_string())
                }
            },
        )
        .await;
        }
    });
    if let Some(url) = &postgres
        && selected("round trips")
    {
        round_trips(url, dir.path());
    }
    for child in &mut children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
}

/// A fresh database on the PostgreSQL server `server` names, filled from the bench's loaded
/// file by `oxidot copy-store`; its URL.
fn bench_database(server: &str, dir: &std::path::Path) -> String {
    let url = empty_database(server, &format!("oxidot_bench_{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .args(["copy-store", "--from", "oxidot.redb", "--to", &url])
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    url
}

/// A new, empty database `name` on the PostgreSQL server `server` names; its URL.
fn empty_database(server: &str, name: &str) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
                .await
                .expect("BENCH_POSTGRES answers");
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        });
    let (prefix, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{prefix}/{name}")
}

/// The size of the database a PostgreSQL URL names, in bytes.
fn postgres_database_bytes(url: &str) -> u64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("the bench database answers");
            tokio::spawn(connection);
            let row = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
                .unwrap();
            row.get::<_, i64>(0).unsigned_abs()
        })
}

/// A relay between one server and PostgreSQL that counts round trips: each time the database
/// answers after the server has sent something.
fn counting_relay(target: String) -> (u16, Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let trips = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = trips.clone();
    std::thread::spawn(move || {
        for incoming in listener.incoming() {
            let Ok(client) = incoming else { continue };
            let Ok(server) = std::net::TcpStream::connect(&target) else {
                continue;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let spoke = Arc::new(AtomicBool::new(false));
            for (mut from, mut to, outbound) in [
                (
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                ),
                (server, client, false),
            ] {
                let (spoke, counted) = (spoke.clone(), counted.clone());
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(read) = from.read(&mut buffer) {
                        if read == 0 {
                            break;
                        }
                        if outbound {
                            spoke.store(true, Ordering::SeqCst);
                        } else if spoke.swap(false, Ordering::SeqCst) {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        if to.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                });
            }
        }
    });
    (port, trips)
}

/// One request (or flow) of the round-trip count, on the connection it is given.
type Operation<'a> =
    dyn FnMut(&mut Conn) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + '_>> + 'a;

/// Database round trips per operation: one more server, reaching PostgreSQL through a
/// counting relay, driven one request at a time (after a warm-up that prepares statements).
fn round_trips(url: &str, dir: &std::path::Path) {
    const TIMES: u64 = 50;
    let parsed = url::Url::parse(url).unwrap();
    let (relay, trips) = counting_relay(format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    ));
    let mut relayed = parsed.clone();
    relayed.set_port(Some(relay)).unwrap();
    let port = free_port();
    let mut child = start_server(dir, port, &[("OXIDOT_DATABASE", relayed.as_str())]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cc = basic("cc", "cc-secret");
        let pw = basic("pw", "pw-secret");
        let mut conn = Conn::open(port).await;
        let token = conn.token(&cc, "grant_type=client_credentials&scope=read+introspection", "access_token").await;
        let openid = conn.token(&pw, "grant_type=password&username=bench&password=bench-password-1&scope=openid+profile", "access_token").await;
        let mut refresh = conn.token(&pw, "grant_type=password&username=bench&password=bench-password-1&scope=read", "refresh_token").await;
        let (cookie, csrf) = log_in(&mut conn).await;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER));
        let web = basic("web", "web-secret");
        let measure = async |name: &str, conn: &mut Conn, operation: &mut Operation<'_>| {
            for _ in 0..10 {
                assert!(operation(conn).await, "{name}");
            }
            let before = trips.load(Ordering::SeqCst);
            for _ in 0..TIMES {
                assert!(operation(conn).await, "{name}");
            }
            let used = trips.load(Ordering::SeqCst) - before;
            println!("{name:<44} {:>5.2} database round trips", used as f64 / TIMES as f64);
        };
        let bearer = format!("Bearer {token}");
        let introspect = format!("token={token}");
        let userinfo = format!("Bearer {openid}");
        measure("client_credentials (hashed secret, remembered)", &mut conn, &mut |conn| {
            let cc = cc.clone();
            Box::pin(async move {
                conn.send("POST", "/o/token/", &[("Authorization", &cc)], "grant_type=client_credentials&scope=read").await.status == 200
            })
        }).await;
        measure("introspection (client auth, remembered)", &mut conn, &mut |conn| {
            let (cc, introspect) = (cc.clone(), introspect.clone());
            Box::pin(async move {
                conn.send("POST", "/o/introspect/", &[("Authorization", &cc)], &introspect).await.status == 200
            })
        }).await;
        measure("/api/hello (bearer)", &mut conn, &mut |conn| {
            let bearer = bearer.clone();
            Box::pin(async move { conn.send("GET", "/api/hello", &[("Authorization", &bearer)], "").await.status == 200 })
        }).await;
        measure("userinfo (bearer, openid profile)", &mut conn, &mut |conn| {
            let userinfo = userinfo.clone();
            Box::pin(async move { conn.send("GET", "/o/userinfo/", &[("Authorization", &userinfo)], "").await.status == 200 })
        }).await;
        let refresh_cell = std::rc::Rc::new(std::cell::RefCell::new(std::mem::take(&mut refresh)));
        measure("refresh_token (rotating)", &mut conn, &mut |conn| {
            let (pw, refresh_cell) = (pw.clone(), refresh_cell.clone());
            Box::pin(async move {
                let body = format!("grant_type=refresh_token&refresh_token={}", refresh_cell.borrow());
                let response = conn.send("POST", "/o/token/", &[("Authorization", &pw)], &body).await;
                match response.json()["refresh_token"].as_str() {
                    Some(next) if response.status == 200 => {
                        *refresh_cell.borrow_mut() = next.to_owned();
                        true
                    }
                    _ => false,
                }
            })
        }).await;
        let authorize = format!(
            "/o/authorize/?response_type=code&client_id=web&redirect_uri={}&scope=read&state=s&code_challenge={challenge}&code_challenge_method=S256",
            enc(CALLBACK)
        );
        let consent = format!(
            "csrfmiddlewaretoken={csrf}&client_id=web&response_type=code&scope=read&redirect_uri={}&state=s&code_challenge={challenge}&code_challenge_method=S256&allow=Authorize",
            enc(CALLBACK)
        );
        let exchange = format!("grant_type=authorization_code&redirect_uri={}&code_verifier={VERIFIER}&code=", enc(CALLBACK));
        measure("authorization code flow (page + consent + token)", &mut conn, &mut |conn| {
            let (cookie, authorize, consent, exchange, web) = (cookie.clone(), authorize.clone(), consent.clone(), exchange.clone(), web.clone());
            Box::pin(async move {
                if conn.send("GET", &authorize, &[("Cookie", &cookie)], "").await.status != 200 {
                    return false;
                }
                let approved = conn.send("POST", "/o/authorize/", &[("Cookie", &cookie)], &consent).await;
                let Some(code) = approved.headers.get("location").and_then(|location| location.split("code=").nth(1)).and_then(|rest| rest.split('&').next()).map(str::to_owned) else {
                    return false;
                };
                conn.send("POST", "/o/token/", &[("Authorization", &web)], &format!("{exchange}{code}")).await.status == 200
            })
        }).await;
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
