//! Test fixtures: an app on a temporary database driven through Rocket's local client, and the
//! real binary on a free port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxidot::clock::Clock;
use oxidot::config::Settings;
use oxidot::fixtures::{self, FixtureFile};
use oxidot::server::demo_fixture_files;
use oxidot::store::Store;
use oxidot::web::{self, AppState};
use rocket::http::{ContentType, Header};
use rocket::local::blocking::{Client, LocalResponse};
use tempfile::TempDir;

/// An RSA private key (PEM) shared by every test app of this process.
pub fn test_rsa_pem() -> &'static str {
    static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        use josekit::jwk::alg::rsa::RsaKeyPair;
        let pair = RsaKeyPair::generate(2048).unwrap();
        String::from_utf8(pair.to_pem_private_key()).unwrap()
    })
}

pub struct App {
    pub client: Client,
    pub store: Store,
    pub clock: Clock,
    /// Keeps the database's directory alive as long as the app.
    _dir: TempDir,
}

impl App {
    /// The demo data on a fresh database.
    pub fn demo() -> Self {
        Self::with(|_| {}, demo_fixture_files())
    }

    pub fn with(adjust: impl FnOnce(&mut Settings), files: Vec<FixtureFile>) -> Self {
        Self::at(time::OffsetDateTime::now_utc(), adjust, files)
    }

    /// An app whose clock starts at `start`.
    pub fn at(
        start: time::OffsetDateTime,
        adjust: impl FnOnce(&mut Settings),
        files: Vec<FixtureFile>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            database: dir.path().join("test.redb"),
            ..Settings::default()
        };
        adjust(&mut settings);
        let (store, _) = Store::open(&settings.database, 8 << 20).unwrap();
        if !files.is_empty() {
            let sources: Vec<fixtures::Source> = files.into_iter().map(Into::into).collect();
            fixtures::load_blocking(&store, &sources).unwrap();
        }
        let clock = Clock::manual(start);
        let hasher = oxidot::passwords::Hasher::new(settings.max_concurrent_hashes);
        // One RSA key for the whole test run: generating one per app would cost seconds.
        let pem = settings
            .oauth2_provider
            .oidc_rsa_private_key
            .clone()
            .unwrap_or_else(|| test_rsa_pem().to_owned());
        let provider = &settings.oauth2_provider;
        let shared: oxidot::store::SharedStorage = std::sync::Arc::new(store.clone());
        let keys = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(oxidot::oidc::KeyRing::open(
                &shared,
                Some(&pem),
                provider.id_token_expire_seconds,
                provider.oidc_jwks_max_age_seconds,
                oxidot::store::Timestamp::from_datetime(start),
                None,
            ))
            .unwrap();
        let state = AppState::new(settings, shared, hasher, clock.clone(), keys).unwrap();
        let client = Client::tracked(web::build(state)).unwrap();
        Self {
            client,
            store,
            clock,
            _dir: dir,
        }
    }

    /// The CSRF token this client's cookie holds, fetching the login page to get one.
    pub fn csrf(&self) -> String {
        if let Some(cookie) = self.client.cookies().get("csrftoken") {
            return cookie.value().to_owned();
        }
        let response = self.client.get("/accounts/login/").dispatch();
        assert_eq!(response.status().code, 200);
        self.client
            .cookies()
            .get("csrftoken")
            .expect("the login page sets a CSRF cookie")
            .value()
            .to_owned()
    }

    pub fn post_form(&self, path: &str, body: &str) -> LocalResponse<'_> {
        self.client
            .post(path.to_owned())
            .header(ContentType::Form)
            .body(body)
            .dispatch()
    }

    pub fn login(&self, username: &str, password: &str) -> LocalResponse<'_> {
        let body = format!(
            "csrfmiddlewaretoken={}&username={}&password={}",
            self.csrf(),
            enc(username),
            enc(password)
        );
        self.post_form("/accounts/login/", &body)
    }

    /// `login` from a client at `ip` (the socket's peer address).
    pub fn login_from(&self, ip: &str, username: &str, password: &str) -> LocalResponse<'_> {
        let body = format!(
            "csrfmiddlewaretoken={}&username={}&password={}",
            self.csrf(),
            enc(username),
            enc(password)
        );
        self.client
            .post("/accounts/login/")
            .header(ContentType::Form)
            .remote(std::net::SocketAddr::new(ip.parse().unwrap(), 40_000))
            .body(body)
            .dispatch()
    }

    pub fn session_count(&self) -> u64 {
        self.store.read(|tx| tx.session_count()).unwrap()
    }

    pub fn signed_in_as(&self) -> Option<String> {
        let page = self.client.get("/").dispatch().into_string().unwrap();
        let marker = "Signed in as <strong>";
        let start = page.find(marker)? + marker.len();
        let end = page[start..].find("</strong>")? + start;
        Some(page[start..end].to_owned())
    }
}

pub fn enc(text: &str) -> String {
    url_encode(text)
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn header<'a>(response: &'a LocalResponse<'_>, name: &str) -> Option<&'a str> {
    response.headers().get_one(name)
}

pub fn origin(value: &'static str) -> Header<'static> {
    Header::new("Origin", value)
}

// ----- the real binary -----

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_oxidot")
}

/// `oxidot` with a clean environment (no OXIDOT_* or DOT variables from the caller) in `dir`.
pub fn oxidot(dir: &Path) -> Command {
    let mut command = Command::new(binary());
    command.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("OXIDOT_")
            || name.starts_with("ROCKET_")
            || [
                "DOT_PKCE",
                "OIDC_RSA_PRIVATE_KEY",
                "OIDC_RSA_PRIVATE_KEY_FILE",
                "PORT",
            ]
            .contains(&name.as_str())
        {
            command.env_remove(name);
        }
    }
    command
}

/// `oxidot` (as `oxidot(dir)` sets it up) started under `umask`, through `sh`.
pub fn oxidot_under_umask(dir: &Path, umask: &str) -> Command {
    let command = oxidot(dir);
    let program = command.get_program().to_owned();
    let mut wrapped = Command::new("sh");
    wrapped
        .current_dir(dir)
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(program);
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// A runtime with two worker threads (the machine's cores), for tests that drive async code.
pub fn two_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed (SIGKILL) if a test forgets to stop it.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `oxidot <args>` in `dir` on a free loopback port and waits until it answers.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with(dir, args, &[])
    }

    /// `start` with extra environment variables.
    pub fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_from(oxidot(dir), args, env)
    }

    /// `start` with the process made by `command` (e.g. `oxidot_under_umask`).
    pub fn start_from(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = command
            .args(args)
            .envs(env.iter().copied())
            .env("OXIDOT_PORT", port.to_string())
            .env("OXIDOT_ADDRESS", "127.0.0.1")
            .stdout(Stdio::null())
            // Not piped: nobody reads it, and a full pipe would block the server's logging.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        wait_until_up(&self.base);
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a server started some other way answers `/healthz` at `base`.
pub fn wait_until_up(base: &str) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/healthz")).send()
            && response.status().is_success()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the server did not start");
}

/// A browser-like HTTP client for a real server: keeps cookies, follows no redirects.
/// The status a running server's `/api/hello` answers for a bearer token.
pub fn bearer_hello(base: &str, token: &str) -> u16 {
    http_client()
        .get(format!("{base}/api/hello"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The hidden fields of the page's form that posts to `action`, in order.
pub fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .expect("the form");
    let form = &html[start..html[start..].find("</form>").unwrap() + start];
    let mut fields = Vec::new();
    for part in form.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = part.split_once('"').unwrap();
        let value = rest
            .split_once("value=\"")
            .unwrap()
            .1
            .split_once('"')
            .unwrap()
            .0;
        fields.push((name.to_owned(), decode_entities(value)));
    }
    fields
}

fn decode_entities(text: &str) -> String {
    text.replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Says that `what` was skipped and why, where `cargo test` shows it: libtest captures
/// `eprintln!`, not a direct write to standard error. When `required_by` (an environment
/// variable CI sets) is present, a skip is a failure instead.
pub fn skip(what: &str, why: &str, required_by: &str) {
    use std::io::Write as _;
    assert!(
        std::env::var_os(required_by).is_none(),
        "{required_by} is set, so {what} must run, but {why}"
    );
    let _ = writeln!(std::io::stderr().lock(), "skipped: {what}: {why}");
}
