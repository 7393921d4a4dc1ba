#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that does not panic when stdout is closed (`oxidot dumpdata | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
use oxidot::clock::Clock;
use oxidot::commands::{self, Command, CommandContext, CommandError, KeysAction};
use oxidot::config::{ConfigSource, DEFAULT_PROFILE, DEMO_PROFILE, LoadedConfig};
use oxidot::control;
use oxidot::fixtures::{Format, Source};
use oxidot::passwords::Hasher;
use oxidot::server::{self, ServeOptions};
use oxidot::store::{self, Database, OpenError, OpenOptions, StoreError};

/// Where settings come from, shown under `--help`.
const SETTINGS_HELP: &str = "\
Settings, lowest precedence first:
  built-in defaults (and the built-in `demo` profile)
  the settings file: --config FILE, OXIDOT_CONFIG or ROCKET_CONFIG, else ./Rocket.toml when
    it exists; its [default] table, then the profile's table (--profile, OXIDOT_PROFILE or
    ROCKET_PROFILE), then [global]
  ROCKET_PORT, ROCKET_ADDRESS
  OXIDOT_<KEY> environment variables, nested keys joined with __
    (OXIDOT_DATABASE, OXIDOT_LOG_LEVEL, OXIDOT_OAUTH2_PROVIDER__PKCE_REQUIRED=false, ...)
  the DOT tutorial's names: PORT, DOT_PKCE, OIDC_RSA_PRIVATE_KEY(_FILE)
  command-line options (--database, --address, --port)
`oxidot check` prints every setting with where its value came from.
OXIDOT_SUPERUSER_PASSWORD gives `createsuperuser --no-input` its password.";

/// An OAuth 2.0 authorization server and OpenID Connect provider in one binary,
/// compatible with the Django OAuth Toolkit (same URLs, settings and data).
#[derive(Parser)]
#[command(name = "oxidot", version = env!("BUILT_VERSION_LINE"), about, long_about = None,
          after_help = SETTINGS_HELP)]
struct Cli {
    /// Settings file [default: ./Rocket.toml when it exists] [env: OXIDOT_CONFIG,
    /// ROCKET_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Settings profile [default: "default"; "demo" for `oxidot demo`] [env: OXIDOT_PROFILE,
    /// ROCKET_PROFILE]
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// Database file, or a postgres:// URL, overriding the `database` setting [env:
    /// OXIDOT_DATABASE]
    #[arg(long, global = true, value_name = "FILE|URL")]
    database: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

/// Where `serve` and `demo` listen, overriding the `address` and `port` settings.
#[derive(clap::Args, Default)]
struct Listen {
    /// IP address to listen on [setting: address; env: OXIDOT_ADDRESS, ROCKET_ADDRESS]
    #[arg(long, value_name = "IP")]
    address: Option<std::net::IpAddr>,
    /// TCP port to listen on [setting: port; env: OXIDOT_PORT, ROCKET_PORT, PORT]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo: oxidot-demo.redb in this directory, the DOT tutorial's users and clients
    /// loaded when the database is new, served on http://127.0.0.1:8000
    Demo {
        #[command(flatten)]
        listen: Listen,
    },
    /// Run the server for real use; loads no data (create a user with `createsuperuser`)
    Serve {
        #[command(flatten)]
        listen: Listen,
        /// Listen beyond loopback even though the demo credentials work on this database
        #[arg(long)]
        allow_demo_credentials: bool,
    },
    /// Load Django fixtures (YAML or JSON dumpdata output) in one transaction
    Loaddata {
        /// Fixture files; .json is read as JSON, anything else as YAML
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Write users, groups and applications as a Django fixture
    Dumpdata {
        /// Models (auth.user, auth.group, oauth2_provider.application) or apps (auth,
        /// oauth2_provider); all when none is named
        #[arg(value_name = "MODEL")]
        models: Vec<String>,
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
        /// Write to this file instead of standard output
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create a superuser (asks for what is missing; see --no-input)
    Createsuperuser {
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Ask nothing: the password comes from OXIDOT_SUPERUSER_PASSWORD or --password-stdin
        #[arg(long, alias = "noinput")]
        no_input: bool,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password
    Changepassword {
        username: String,
        /// Read the new password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Validate the configuration and the database; print every setting and its source
    Check {
        /// Also run redb's integrity check on the database file (the server must be stopped)
        #[arg(long)]
        db: bool,
    },
    /// Upgrade the database to this version's schema, loading no data (a PaaS release step;
    /// `serve` does the same at start)
    Migrate,
    /// Replace the database with a backup made by `oxidot backup` (the server must be
    /// stopped); the replaced file is kept beside it
    Restore {
        /// The backup file
        #[arg(value_name = "FILE")]
        source: PathBuf,
    },
    /// Copy the database, consistently, while the server runs or not: to FILE, or to a
    /// time-named file in DIRECTORY
    Backup {
        #[arg(value_name = "FILE|DIRECTORY")]
        destination: PathBuf,
    },
    /// Shrink the database file to what it holds (with the server stopped)
    Compact,
    /// Delete expired and no longer needed tokens, codes, device grants and sessions (DOT's
    /// cleartokens; works while the server runs)
    Cleartokens,
    /// Manage the ID token signing keys (works while the server runs)
    Keys {
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// Copy everything (users, groups, applications, live tokens and codes, sessions, keys,
    /// tasks) from one database into an empty one: a redb file onto PostgreSQL, or back.
    /// Every client, token and signed-in browser keeps working on the copy
    CopyStore {
        /// The database to copy: a redb file (no server may hold it; copy a `backup` of a
        /// running one) or a postgres:// URL
        #[arg(long, value_name = "FILE|URL")]
        from: PathBuf,
        /// The empty database to fill: a redb file (created when missing) or a postgres:// URL
        /// (migrated first)
        #[arg(long, value_name = "FILE|URL")]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Every key: kid, algorithm and state (signing, published, retired)
    List,
    /// Publish a new key in JWKS; it signs once rotated in
    Generate {
        #[arg(long, default_value = "RS256", value_name = "RS256|ES256|EdDSA")]
        algorithm: String,
    },
    /// Make the newest published key of an algorithm the signing key (generating one if there
    /// is none), once it has been in JWKS for oidc_jwks_max_age_seconds; the replaced key stays
    /// in JWKS until the ID tokens it signed have expired
    Rotate {
        #[arg(long, default_value = "RS256", value_name = "RS256|ES256|EdDSA")]
        algorithm: String,
        /// Sign with the new key now, without waiting for cached JWKS (for a compromised key)
        #[arg(long)]
        immediately: bool,
    },
    /// Withdraw a key that has not signed yet (a signing key is replaced with `rotate`)
    Retire {
        /// The key's id (it may start with `-`: kids are base64url)
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

/// An option's value, else the first of `vars` that is set and not empty.
fn or_env(given: Option<String>, vars: &[&str]) -> Option<String> {
    given.or_else(|| {
        vars.iter()
            .find_map(|var| std::env::var(var).ok().filter(|value| !value.is_empty()))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let profile = or_env(cli.profile.clone(), &["OXIDOT_PROFILE", "ROCKET_PROFILE"])
        .unwrap_or_else(|| {
            if matches!(cli.command, Cmd::Demo { .. }) {
                DEMO_PROFILE.to_owned()
            } else {
                DEFAULT_PROFILE.to_owned()
            }
        });
    let file = or_env(
        cli.config
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned()),
        &["OXIDOT_CONFIG", "ROCKET_CONFIG"],
    );
    let source = ConfigSource {
        file: file.map(PathBuf::from),
        profile,
    };
    let mut loaded = match LoadedConfig::load(&source) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(database) = &cli.database {
        loaded.settings.database = database.clone();
    }
    if let Cmd::Demo { listen } | Cmd::Serve { listen, .. } = &cli.command {
        if let Some(address) = listen.address {
            loaded.settings.address = address;
        }
        if let Some(port) = listen.port {
            loaded.settings.port = port;
        }
    }
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let serving = matches!(cli.command, Cmd::Demo { .. } | Cmd::Serve { .. });
    init_logging(
        if serving {
            &loaded.settings.log_level
        } else {
            "warn"
        },
        loaded.settings.log_format == "json",
    );
    let workers = match loaded.settings.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Human-readable lines by default; one JSON object per line with `log_format = "json"`
/// (a request's lines carry its id either way).
fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

async fn dispatch(command: Cmd, loaded: LoadedConfig) -> Result<(), String> {
    if let Some(url) = postgres_url(&loaded)
        && let Some(refusal) = file_only(&command)
    {
        // Treating the URL as a file name would create a file called "postgres:".
        return Err(format!(
            "database: {} — {refusal}",
            oxidot::store::postgres::describe_url(url)
        ));
    }
    match command {
        Cmd::Demo { .. } => run_server(loaded, true, false).await,
        Cmd::Serve {
            allow_demo_credentials,
            ..
        } => run_server(loaded, false, allow_demo_credentials).await,
        Cmd::Loaddata { files } => {
            // Read as they load (a dump of millions of tokens never sits in memory whole).
            for path in &files {
                std::fs::File::open(path)
                    .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            }
            let sources = files.iter().map(|path| Source::file(path)).collect();
            let output = run_command(&loaded, Command::LoadData { files: sources }).await?;
            say!("{output}");
            Ok(())
        }
        Cmd::Dumpdata {
            models,
            format,
            output,
        } => {
            let text = run_command(&loaded, Command::DumpData { models, format }).await?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|error| format!("cannot write {}: {error}", path.display())),
                None => {
                    let _ = write!(std::io::stdout(), "{text}");
                    Ok(())
                }
            }
        }
        Cmd::Createsuperuser {
            username,
            email,
            no_input,
            password_stdin,
        } => {
            let interactive = !no_input && !password_stdin && std::io::stdin().is_terminal();
            let username = match username {
                Some(username) => username,
                None if interactive => prompt("Username: ")?,
                None => return Err("--username is required with --no-input".to_owned()),
            };
            let email = match email {
                Some(email) => email,
                None if interactive => prompt("Email address: ")?,
                None => String::new(),
            };
            let password = if password_stdin {
                read_stdin_line()?
            } else if no_input || !interactive {
                std::env::var("OXIDOT_SUPERUSER_PASSWORD").map_err(|_| {
                    "give the password in OXIDOT_SUPERUSER_PASSWORD or with --password-stdin"
                        .to_owned()
                })?
            } else {
                ask_new_password()?
            };
            let output = run_command(
                &loaded,
                Command::CreateSuperuser {
                    username,
                    email,
                    password,
                },
            )
            .await?;
            say!("{output}");
            Ok(())
        }
        Cmd::Changepassword {
            username,
            password_stdin,
        } => {
            let password = if password_stdin || !std::io::stdin().is_terminal() {
                read_stdin_line()?
            } else {
                say!("Changing password for user {username:?}");
                ask_new_password()?
            };
            let output =
                run_command(&loaded, Command::ChangePassword { username, password }).await?;
            say!("{output}");
            Ok(())
        }
        Cmd::Check { db } => {
            check(&loaded).await?;
            if db && postgres_url(&loaded).is_some() {
                say!("# integrity: PostgreSQL checks its own pages (amcheck, data checksums)");
            } else if db {
                check_integrity(&loaded)?;
            }
            Ok(())
        }
        Cmd::Migrate => migrate(&loaded).await,
        Cmd::Restore { source } => restore(&loaded, &source),
        Cmd::Backup { destination } => {
            // The server may run elsewhere: give it an absolute path.
            let destination =
                std::path::absolute(&destination).map_err(|error| error.to_string())?;
            let output = run_command(&loaded, Command::Backup { destination }).await?;
            println!("{output}");
            Ok(())
        }
        Cmd::Compact => {
            let database = loaded.settings.database.clone();
            match tokio::task::block_in_place(|| store::compact_file(&database)) {
                Ok((before, after)) => {
                    println!(
                        "{}: {before} bytes before, {after} bytes after compaction",
                        database.display()
                    );
                    Ok(())
                }
                Err(StoreError::AlreadyOpen(_)) => Err(held_by_server(&database, "compaction")),
                Err(error) => Err(error.to_string()),
            }
        }
        Cmd::Cleartokens => {
            let output = run_command(&loaded, Command::ClearTokens).await?;
            print!("{output}");
            Ok(())
        }
        Cmd::CopyStore { from, to } => copy_store(&loaded, &from, &to).await,
        Cmd::Keys { action } => {
            let action = match action {
                KeysCmd::List => KeysAction::List,
                KeysCmd::Generate { algorithm } => KeysAction::Generate { algorithm },
                KeysCmd::Rotate {
                    algorithm,
                    immediately,
                } => KeysAction::Rotate {
                    algorithm,
                    immediately,
                },
                KeysCmd::Retire { kid } => KeysAction::Retire { kid },
            };
            let output = run_command(&loaded, Command::Keys { action }).await?;
            print!("{output}");
            Ok(())
        }
    }
}

/// A database named by a path or a URL, opened for a command that owns it while it runs.
async fn open_database(
    database: &std::path::Path,
    loaded: &LoadedConfig,
) -> Result<Database, String> {
    match Database::open(database, open_options(loaded)).await {
        Ok((opened, _)) => Ok(opened),
        Err(OpenError::File(StoreError::AlreadyOpen(_))) => Err(format!(
            "{} is held by a running server: stop it, or copy from a backup of it (`oxidot \
             backup FILE`)",
            database.display()
        )),
        Err(OpenError::File(error)) => Err(format!("{}: {error}", database.display())),
        Err(error) => Err(error.to_string()),
    }
}

/// How a command opens the database: the configured redb cache, two PostgreSQL connections.
fn open_options(loaded: &LoadedConfig) -> OpenOptions {
    OpenOptions {
        cache_bytes: cache_bytes(loaded),
        pool_size: 2,
    }
}

async fn copy_store(
    loaded: &LoadedConfig,
    from: &std::path::Path,
    to: &std::path::Path,
) -> Result<(), String> {
    if oxidot::store::postgres::url_in(from).is_none() && !from.exists() {
        return Err(format!("--from: {} does not exist", from.display()));
    }
    let source = open_database(from, loaded)
        .await
        .map_err(|error| format!("--from: {error}"))?;
    let destination = match open_database(to, loaded).await {
        Ok(opened) => opened,
        Err(error) => {
            source.close().map_err(|error| error.to_string())?;
            return Err(format!("--to: {error}"));
        }
    };
    let copied = store::copy_store(&*source.storage(), &*destination.storage()).await;
    source.close().map_err(|error| error.to_string())?;
    destination.close().map_err(|error| error.to_string())?;
    let report = copied.map_err(|error| error.to_string())?;
    say!("{report}");
    Ok(())
}

async fn run_server(loaded: LoadedConfig, demo: bool, allow: bool) -> Result<(), String> {
    let options = ServeOptions {
        demo,
        allow_demo_credentials: allow,
    };
    server::run(loaded, options, Clock::system())
        .await
        .map_err(|error| error.to_string())
}

fn cache_bytes(loaded: &LoadedConfig) -> usize {
    usize::try_from(
        loaded
            .settings
            .database_cache_mb
            .saturating_mul(1024 * 1024),
    )
    .unwrap_or(usize::MAX)
}

/// Runs a command on the database directly, or through the server that holds it.
async fn run_command(loaded: &LoadedConfig, command: Command) -> Result<String, String> {
    let database = loaded.settings.database.clone();
    let sealer = loaded.key_sealer().map_err(|error| error.to_string())?;
    // A bulk load touches pages all over the token tables: a larger page cache (still a
    // fixed bound) saves re-reading them.
    let cache = match command {
        Command::LoadData { .. } => cache_bytes(loaded).max(64 << 20),
        _ => cache_bytes(loaded),
    };
    let hasher = Hasher::new(loaded.settings.max_concurrent_hashes);
    // On PostgreSQL servers may be running: a command works on the shared database as they do.
    let options = OpenOptions {
        cache_bytes: cache,
        pool_size: 2,
    };
    match Database::open(&database, options).await {
        Ok((opened, _)) => {
            let mut context = CommandContext::new(
                opened.storage(),
                opened.file_path().map(ToOwned::to_owned),
                hasher,
                &loaded.settings,
                Clock::system(),
            );
            context.sealer = sealer;
            let result = commands::execute(&context, command).await;
            drop(context);
            opened.close().map_err(|error| error.to_string())?;
            result.map_err(|error| error.to_string())
        }
        Err(OpenError::File(StoreError::AlreadyOpen(_))) => control::send(&database, &command)
            .await
            .map_err(|error: CommandError| error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// Why a command does not run on PostgreSQL, if it does not.
fn file_only(command: &Cmd) -> Option<&'static str> {
    match command {
        Cmd::Demo { .. } => Some(
            "the demo runs on a redb file; run it without a postgres:// database (and move its \
             file with `oxidot copy-store` if you like)",
        ),
        Cmd::Restore { .. } => Some(
            "a PostgreSQL database is restored with its own tools (pg_restore or psql from a \
             pg_dump)",
        ),
        Cmd::Compact => Some("PostgreSQL reclaims space itself (autovacuum; VACUUM FULL)"),
        _ => None,
    }
}

/// The message for a command that needs the database file to itself.
fn held_by_server(database: &std::path::Path, what: &str) -> String {
    format!(
        "{} is in use (a server is running?): {what} needs the file to itself; stop the server \
         and run it again",
        database.display()
    )
}

fn check_integrity(loaded: &LoadedConfig) -> Result<(), String> {
    let database = &loaded.settings.database;
    match tokio::task::block_in_place(|| store::check_file(database)) {
        Ok(report) => {
            if report.repaired {
                say!(
                    "# integrity: damage found and repaired (schema {})",
                    report.schema_version
                );
            } else {
                say!("# integrity: OK (schema {})", report.schema_version);
            }
            Ok(())
        }
        Err(StoreError::AlreadyOpen(_)) => Err(held_by_server(database, "the integrity check")),
        Err(error) => Err(error.to_string()),
    }
}

/// The `database` setting when it names PostgreSQL.
fn postgres_url(loaded: &LoadedConfig) -> Option<&str> {
    oxidot::store::postgres::url_in(&loaded.settings.database)
}

async fn migrate(loaded: &LoadedConfig) -> Result<(), String> {
    let database = &loaded.settings.database;
    let name = shown(database);
    let options = OpenOptions {
        pool_size: 1,
        ..open_options(loaded)
    };
    match Database::open(database, options).await {
        Ok((opened, opening)) => {
            opened.close().map_err(|error| error.to_string())?;
            let latest = opening.schema_version;
            match (opening.created, opening.upgraded_from) {
                (true, _) => say!("{name}: created with the current schema ({latest})"),
                (false, Some(old)) => say!("{name}: upgraded from schema {old} to {latest}"),
                (false, None) => say!("{name}: up to date (schema {latest})"),
            }
            Ok(())
        }
        // A running server upgraded the file when it started.
        Err(OpenError::File(StoreError::AlreadyOpen(_))) => {
            say!("{name}: held by the running server, which upgraded it at start");
            Ok(())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// The database as messages show it: a file's path, or PostgreSQL's name, host and port.
fn shown(database: &std::path::Path) -> String {
    match store::postgres::url_in(database) {
        Some(url) => store::postgres::describe_url(url),
        None => database.display().to_string(),
    }
}

fn restore(loaded: &LoadedConfig, source: &std::path::Path) -> Result<(), String> {
    let database = &loaded.settings.database;
    let now = oxidot::store::Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    match tokio::task::block_in_place(|| store::restore_file(source, database, now)) {
        Ok(report) => {
            say!("{} restored from {}", database.display(), source.display());
            if let Some(previous) = report.previous {
                say!("the database it replaced is kept as {}", previous.display());
            }
            Ok(())
        }
        Err(StoreError::AlreadyOpen(_)) => Err(held_by_server(database, "a restore")),
        Err(error) => Err(error.to_string()),
    }
}

async fn check(loaded: &LoadedConfig) -> Result<(), String> {
    say!("# profile: {}", loaded.profile);
    match &loaded.file {
        Some(file) => say!("# config file: {}", file.display()),
        None => say!("# config file: none (built-in defaults and environment)"),
    }
    for (key, value, source) in loaded.describe() {
        say!("{key} = {value}  # {source}");
    }
    let sealed = loaded
        .key_sealer()
        .map_err(|error| error.to_string())?
        .is_some();
    for finding in oxidot::server::setup_findings(&loaded.settings, sealed) {
        let level = match finding.severity {
            oxidot::server::Severity::StopsStart => "error",
            oxidot::server::Severity::Warning => "warning",
            oxidot::server::Severity::Advice => "advice",
        };
        say!("# {level}: {}", finding.message);
    }
    if sealed {
        say!("# signing keys: encrypted at rest (key_encryption_key)");
    }
    if postgres_url(loaded).is_some() {
        say!("# {}", run_command(loaded, Command::Status).await?);
        say!("configuration OK");
        return Ok(());
    }
    let database = &loaded.settings.database;
    if !database.exists() {
        say!(
            "# database {} does not exist yet; it is created on first start",
            database.display()
        );
        say!("configuration OK");
        return Ok(());
    }
    match Database::open(database, open_options(loaded)).await {
        Ok((opened, opening)) => {
            let context = CommandContext::new(
                opened.storage(),
                opened.file_path().map(ToOwned::to_owned),
                Hasher::new(1),
                &loaded.settings,
                Clock::system(),
            );
            let status = commands::execute(&context, Command::Status).await;
            drop(context);
            opened.close().map_err(|error| error.to_string())?;
            say!("# {}", status.map_err(|error| error.to_string())?);
            if opening.repaired {
                say!("# the database was not closed cleanly and has been repaired");
            } else {
                say!("# the database was closed cleanly");
            }
        }
        Err(OpenError::File(StoreError::AlreadyOpen(_))) => {
            let status = control::send(database, &Command::Status)
                .await
                .map_err(|error| error.to_string())?;
            say!("# {status} (held by the running server)");
        }
        Err(error) => return Err(error.to_string()),
    }
    say!("configuration OK");
    Ok(())
}

fn prompt(label: &str) -> Result<String, String> {
    print!("{label}");
    std::io::stdout()
        .flush()
        .map_err(|error| error.to_string())?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|error| error.to_string())?;
    Ok(line.trim().to_owned())
}

fn ask_new_password() -> Result<String, String> {
    let first = rpassword::prompt_password("Password: ").map_err(|error| error.to_string())?;
    let second =
        rpassword::prompt_password("Password (again): ").map_err(|error| error.to_string())?;
    if first != second {
        return Err("the two passwords differ".to_owned());
    }
    Ok(first)
}

fn read_stdin_line() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read the password from standard input: {error}"))?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    if line.is_empty() {
        return Err("standard input holds no password".to_owned());
    }
    Ok(line)
}
