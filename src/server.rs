//! Starting and stopping the server: open the store, load the demo data when asked, refuse
//! unsafe set-ups, serve until SIGINT/SIGTERM, then close everything cleanly so the next open
//! needs no repair.

use rust_embed::RustEmbed;

use crate::accounts::{self, AccountError};
use crate::clock::Clock;
use crate::commands::CommandContext;
use crate::config::LoadedConfig;
use crate::control::ControlSocket;
use crate::fixtures::{self, FixtureError, FixtureFile};
use crate::oidc::KeyRing;
use crate::passwords::Hasher;
use crate::scheduler::Scheduler;
use crate::store::{
    Database, OpenError, OpenOptions, SharedStorage, StoreError, Timestamp, postgres,
};
use crate::web::{self, AppState};

/// How often the signing keys are checked for a change made elsewhere.
const KEY_RING_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// The demo data, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "fixtures/"]
struct DemoFixtures;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot load the demo data: {0}")]
    Fixtures(#[from] FixtureError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(
        "refusing to listen on {0}: the demo credentials (admin/admin123 or hash1/hashed) work \
         on this database. Change them (`oxidot changepassword admin`, a new secret for hash1), \
         listen on 127.0.0.1, or pass --allow-demo-credentials if you really mean it"
    )]
    DemoCredentialsInPublic(std::net::IpAddr),
    #[error("{0}")]
    Startup(String),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Load the embedded demo fixtures into a new database and print the demo's accounts.
    pub demo: bool,
    pub allow_demo_credentials: bool,
}

/// The demo fixtures, in load order (groups before the users in them, users before the
/// applications they own).
pub fn demo_fixture_files() -> Vec<FixtureFile> {
    let mut names: Vec<String> = DemoFixtures::iter().map(|name| name.into_owned()).collect();
    names.sort_by_key(|name| {
        fixtures::MODELS
            .iter()
            .position(|model| name.starts_with(model))
            .unwrap_or(usize::MAX)
    });
    names
        .into_iter()
        .filter_map(|name| {
            let file = DemoFixtures::get(&name)?;
            let contents = String::from_utf8(file.data.into_owned()).ok()?;
            Some(FixtureFile { name, contents })
        })
        .collect()
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The server does not start with it (unless told otherwise).
    StopsStart,
    /// `serve` warns at every start.
    Warning,
    /// `oxidot check` says it.
    Advice,
}

/// Something in a set-up that a security review would flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

/// What `oxidot check` flags and `serve` warns about (or refuses) in these settings.
pub fn setup_findings(settings: &crate::config::Settings, keys_sealed: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    let database = &settings.database;
    if let Ok(Some(mode)) = crate::files::open_to_others(database) {
        findings.push(Finding {
            severity: if settings.allow_readable_database {
                Severity::Warning
            } else {
                Severity::StopsStart
            },
            message: format!(
                "the database {} can be read or written by other local users (mode {mode:o}); \
                 it holds password hashes{}. Run `chmod 600 {}`{}",
                database.display(),
                if keys_sealed {
                    ""
                } else {
                    " and the private signing keys"
                },
                database.display(),
                if settings.allow_readable_database {
                    " (allow_readable_database is set, so the server starts anyway)"
                } else {
                    ", or set allow_readable_database = true to start anyway"
                }
            ),
        });
    }
    if !keys_sealed {
        findings.push(Finding {
            severity: Severity::Advice,
            message: "private signing keys are stored unencrypted in the database: set \
                      key_encryption_key (OXIDOT_KEY_ENCRYPTION_KEY) or key_encryption_key_file \
                      to a random secret to encrypt them at rest"
                .to_owned(),
        });
    }
    if !settings.address.is_loopback() && settings.issuer.is_none() {
        findings.push(Finding {
            severity: Severity::Warning,
            message: format!(
                "listening on {} without `issuer`: the issuer (in tokens, discovery and \
                 redirects) then comes from each request's Host header, which any client sets. \
                 Set issuer = \"https://your.host/o\"",
                settings.address
            ),
        });
    }
    if let Some(advice) = postgres::url_in(&settings.database).and_then(postgres::tls_advice) {
        findings.push(Finding {
            severity: Severity::Warning,
            message: advice,
        });
    }
    if settings.metrics.enabled
        && settings.metrics.address.is_none()
        && !settings.address.is_loopback()
    {
        findings.push(Finding {
            severity: Severity::Warning,
            message: format!(
                "/metrics is served on the public address {}: move it with [metrics] address = \"127.0.0.1:9100\", or turn it off with enabled = false",
                settings.address
            ),
        });
    }
    findings
}

pub async fn run(
    loaded: LoadedConfig,
    options: ServeOptions,
    clock: Clock,
) -> Result<(), ServerError> {
    let settings = loaded.settings.clone();
    let sealed = loaded
        .key_sealer()
        .map_err(|error| ServerError::Startup(error.to_string()))?
        .is_some();
    for finding in setup_findings(&settings, sealed) {
        match finding.severity {
            Severity::StopsStart => {
                return Err(ServerError::Startup(format!(
                    "refusing to start: {}",
                    finding.message
                )));
            }
            Severity::Warning => tracing::warn!("{}", finding.message),
            Severity::Advice => {}
        }
    }
    // The port first: a server that cannot listen writes nothing (no database, no keys).
    let listener = web::listener::bind(&settings)
        .await
        .map_err(|error| ServerError::Startup(error.to_string()))?;
    if options.demo
        && let Some(url) = postgres::url_in(&settings.database)
    {
        return Err(ServerError::Startup(format!(
            "database: the demo runs on a redb file, not on {}; run `oxidot demo` without \
             a postgres:// database, or move its file with `oxidot copy-store`",
            postgres::describe_url(url)
        )));
    }
    let open_options = OpenOptions {
        cache_bytes: usize::try_from(settings.database_cache_mb.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        pool_size: settings.database_pool_size,
    };
    // PostgreSQL: connected and migrated (instances starting at once migrate once); a
    // database that cannot be used stops the start, naming the setting.
    let (database, opening) = match Database::open(&settings.database, open_options).await {
        Ok(opened) => opened,
        Err(OpenError::File(StoreError::AlreadyOpen(path))) => {
            return Err(ServerError::Startup(format!(
                "another oxidot server already serves {}: stop it first, or give this one \
                 another database (--database)",
                path.display()
            )));
        }
        Err(OpenError::File(error)) => return Err(error.into()),
        Err(error) => return Err(ServerError::Startup(error.to_string())),
    };
    if opening.interrupted_load_rolled_back {
        tracing::warn!(
            "a loaddata was interrupted before it finished: what it had loaded was rolled back"
        );
    }
    if opening.repaired {
        tracing::warn!(
            "{} was not closed cleanly last time and has been repaired",
            settings.database.display()
        );
    }
    let holds_file = database.file_path().is_some();
    let result = serve(
        listener,
        loaded,
        options,
        clock,
        database.storage(),
        holds_file,
        opening.created,
    )
    .await;
    database.close()?;
    result
}

/// Serves on an opened database; `holds_file` when it is a redb file this process holds (the
/// control socket serves commands for it, and the demo loads into it).
async fn serve(
    listener: tokio::net::TcpListener,
    loaded: LoadedConfig,
    options: ServeOptions,
    clock: Clock,
    store: SharedStorage,
    holds_file: bool,
    created: bool,
) -> Result<(), ServerError> {
    let loaded_pem = loaded
        .oidc_rsa_private_key_pem()
        .map_err(|error| ServerError::Startup(error.to_string()))?;
    let sealer = loaded
        .key_sealer()
        .map_err(|error| ServerError::Startup(error.to_string()))?;
    let settings = loaded.settings;
    let hasher = Hasher::new(settings.max_concurrent_hashes);
    let users = store.totals().await?.users;
    if holds_file && options.demo && (created || users == 0) {
        let files = demo_fixture_files().into_iter().map(Into::into).collect();
        let report = fixtures::load(store.clone(), files).await?;
        tracing::info!(
            "demo data loaded: {}",
            report.to_string().replace('\n', "; ")
        );
    }
    if !settings.address.is_loopback()
        && !options.allow_demo_credentials
        && accounts::demo_credentials_present(&*store, &hasher).await?
    {
        return Err(ServerError::DemoCredentialsInPublic(settings.address));
    }
    let users = store.totals().await?.users;
    let base = format!(
        "http://{}:{}",
        display_host(settings.address),
        settings.port
    );
    if options.demo {
        print_demo_banner(&base);
    } else if users == 0 {
        println!(
            "No user exists yet. Create an administrator with:\n  oxidot createsuperuser \
             --database {}",
            shown_database(&settings.database)
        );
    }
    // Commands on a redb file go through the server that holds it; on PostgreSQL they
    // connect to the database themselves.
    let control = if holds_file {
        Some(ControlSocket::bind(&settings.database).map_err(|error| {
            ServerError::Startup(format!("cannot open the control socket: {error}"))
        })?)
    } else {
        None
    };
    let keys = open_keys(&loaded_pem, sealer.clone(), &settings, &store, &clock).await?;
    // A rotation made through another instance (on a shared database) is used and published
    // here within this time.
    keys.follow(KEY_RING_POLL);
    // One hasher (one bound on argon2 work) for web requests and control commands alike.
    let mut context = CommandContext::new(
        store.clone(),
        holds_file.then(|| settings.database.clone()),
        hasher.clone(),
        &settings,
        clock.clone(),
    );
    context.keys = Some(keys.clone());
    context.sealer = sealer;
    let control_task = control.map(|control| tokio::spawn(control.serve(context)));
    let scheduler = Scheduler::start(store.clone(), &settings, clock.clone())
        .await
        .map_err(|error| ServerError::Startup(error.to_string()))?;
    let metrics_task = match (settings.metrics.enabled, settings.metrics.address) {
        (true, Some(address)) => {
            let status = crate::status::StoreStatus::new(
                store.clone(),
                settings.oauth2_provider.clone(),
                clock.clone(),
            );
            let hasher = hasher.clone();
            let listener = crate::metrics::serve_alone(address, move || {
                let (status, hasher) = (status.clone(), hasher.clone());
                Box::pin(async move { web::routes::health::render_from(&status, &hasher).await })
            });
            tracing::info!("metrics on http://{address}/metrics");
            Some(tokio::spawn(async move {
                if let Err(error) = listener.await {
                    tracing::error!("the metrics listener stopped: {error}");
                }
            }))
        }
        _ => None,
    };
    let settings_for_listener = settings.clone();
    let tls = settings.tls.is_some();
    let database_shown = shown_database(&settings.database);
    let issuer_setting = settings.issuer.clone();
    let mut state = AppState::new(settings, store, hasher, clock, keys)
        .map_err(|error| ServerError::Startup(error.to_string()))?;
    state.scheduler = Some(scheduler.clone());
    let served = web::listener::serve(
        listener,
        web::build(state),
        &settings_for_listener,
        stop_signal(),
        |address| {
            let base = display_base(address, tls);
            let issuer = issuer_setting.map_or_else(
                || {
                    format!(
                        "{base}/o (from each request's Host header: set `issuer` in production)"
                    )
                },
                |issuer| issuer.trim_end_matches('/').to_owned(),
            );
            tracing::info!(
                "oxidot {} listening on {base}; database {database_shown}; issuer {issuer}; \
                 admin at {base}/admin/",
                env!("CARGO_PKG_VERSION")
            );
        },
    )
    .await;
    tracing::info!("shutting down: stopping the scheduler at a batch boundary");
    if let Some(task) = metrics_task {
        task.abort();
    }
    // A running task stops at its next batch boundary before the store closes.
    scheduler.shutdown().await;
    if let Some(control_task) = control_task {
        control_task.abort();
        // Dropping the socket task removes the socket file.
        let _ = control_task.await;
    }
    served.map_err(|error| ServerError::Startup(error.to_string()))?;
    tracing::info!("oxidot stopped");
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C): stop accepting, let open requests finish. The signals are
/// watched from this call on, not from the future's first poll: a SIGTERM that arrives while
/// the first requests are served must still shut down cleanly, never kill the process.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let watched = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut interrupt)) = watched else {
            tracing::warn!("cannot watch for SIGTERM/SIGINT: stop the server with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received: shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT received: shutting down"),
        }
    }
}

fn display_base(address: std::net::SocketAddr, tls: bool) -> String {
    format!(
        "{}://{}:{}",
        if tls { "https" } else { "http" },
        display_host(address.ip()),
        address.port()
    )
}

/// The ID token signing keys: the configured RSA key, else those in the store, with a key
/// generated for each algorithm that has none.
async fn open_keys(
    configured_pem: &Option<String>,
    sealer: Option<crate::oidc::KeySealer>,
    settings: &crate::config::Settings,
    store: &SharedStorage,
    clock: &Clock,
) -> Result<KeyRing, ServerError> {
    let provider = &settings.oauth2_provider;
    let now = Timestamp::from_datetime(clock.now());
    KeyRing::open(
        store,
        configured_pem.as_deref(),
        provider.id_token_expire_seconds,
        provider.oidc_jwks_max_age_seconds,
        now,
        sealer,
    )
    .await
    .map_err(|error| ServerError::Startup(format!("signing keys: {error}")))
}

/// The database as logs and messages show it: a file's path, or PostgreSQL's database, host
/// and port (never the password a URL may carry).
fn shown_database(database: &std::path::Path) -> String {
    match postgres::url_in(database) {
        Some(url) => postgres::describe_url(url),
        None => database.display().to_string(),
    }
}

fn display_host(address: std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

fn print_demo_banner(base: &str) {
    println!(
        "oxidot demo — an OAuth 2.0 / OpenID Connect provider with the DOT tutorial's data

  Home            {base}/
  Log in          {base}/accounts/login/
  Admin           {base}/admin/
  Discovery       {base}/o/.well-known/openid-configuration
  Authorize URL   {base}/o/authorize/
  Token URL       {base}/o/token/

  Users           admin / admin123        (superuser)
                  oauthuser / oauth123     (staff)
  Clients         hash1 / hashed   \"hashed secret 1\"   (confidential, authorization code, RS256)
                  hash2 / hashed   \"hashed secret 2\"   (confidential, authorization code, RS256)
                  clear1 / secret  \"cleartext secret 1\" (confidential, authorization code, HS256)
                  clear2 / secret  \"cleartext secret 2\" (confidential, authorization code, HS256)
  Redirect URIs   https://oauth.pstmn.io/v1/callback, https://www.getpostman.com/oauth2/callback

These credentials are public: the demo listens on 127.0.0.1 only. Stop with Ctrl-C."
    );
}
