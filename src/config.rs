//! Settings and where they come from.
//!
//! Precedence, lowest first: built-in defaults (plus the built-in `demo` profile) <
//! `Rocket.toml` (the `[default]` table, then the selected profile, then `[global]`) <
//! Rocket's `ROCKET_PORT` and `ROCKET_ADDRESS` (the settings file is Rocket's) < `OXIDOT_*`
//! environment variables (nested keys joined with `__`) < the environment names the DOT
//! tutorial used (`DOT_PKCE`, `OIDC_RSA_PRIVATE_KEY`, `OIDC_RSA_PRIVATE_KEY_FILE`, `PORT`).
//! An `OXIDOT_*` variable that names no setting (a script's `OXIDOT_BIN`) is ignored with a
//! warning, as Rocket ignores `ROCKET_*` variables it does not know.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

pub const DEFAULT_CONFIG_FILE: &str = "Rocket.toml";
pub const DEFAULT_PROFILE: &str = "default";
pub const DEMO_PROFILE: &str = "demo";
pub const ENV_PREFIX: &str = "OXIDOT_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid value for `{key}` (from {source_name}): {message}")]
    BadValue {
        key: String,
        source_name: String,
        message: String,
    },
    #[error("there is no profile `{profile}` {where_}; the profiles are: {available}")]
    UnknownProfile {
        profile: String,
        where_: String,
        available: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalPrompt {
    Force,
    Auto,
}

/// DOT's `OAUTH2_PROVIDER` settings, lowercased, with DOT's defaults except where noted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2Provider {
    pub access_token_expire_seconds: u64,
    pub authorization_code_expire_seconds: u64,
    pub id_token_expire_seconds: u64,
    /// Idle lifetime of refresh tokens; none means they never expire (DOT's default).
    pub refresh_token_expire_seconds: Option<u64>,
    pub refresh_token_grace_period_seconds: u64,
    pub rotate_refresh_token: bool,
    /// DOT defaults to false and announces true; we start with the safer value.
    pub refresh_token_reuse_protection: bool,
    pub pkce_required: bool,
    /// Whether `code_challenge_method=plain` is accepted (DOT accepts it; S256 is always).
    pub pkce_plain_allowed: bool,
    /// Scope name → description shown on the consent page.
    pub scopes: BTreeMap<String, String>,
    /// `["__all__"]` means every scope in `scopes`, as in DOT.
    pub default_scopes: Vec<String>,
    pub request_approval_prompt: ApprovalPrompt,
    pub allowed_redirect_uri_schemes: Vec<String>,
    pub clear_expired_tokens_batch_size: u64,
    pub clear_expired_tokens_batch_interval: f64,
    /// Lifetime of a device code (RFC 8628), and the polling interval given to devices.
    pub device_code_expire_seconds: u64,
    pub device_flow_interval: u64,
    pub oidc_enabled: bool,
    pub oidc_rsa_private_key: Option<String>,
    pub oidc_rsa_private_key_file: Option<PathBuf>,
    /// `Cache-Control: max-age` of JWKS; a rotated-in key waits this long before it signs.
    pub oidc_jwks_max_age_seconds: u64,
    /// RP-initiated logout at `/o/logout/` (DOT: off by default; on here).
    pub oidc_rp_initiated_logout_enabled: bool,
    /// Ask the user even when a valid `id_token_hint` names them.
    pub oidc_rp_initiated_logout_always_prompt: bool,
    pub oidc_rp_initiated_logout_accept_expired_tokens: bool,
    /// Revoke the user's tokens for the client that asked for the logout.
    pub oidc_rp_initiated_logout_delete_tokens: bool,
}

impl Default for OAuth2Provider {
    fn default() -> Self {
        let scopes = [
            ("read", "Reading scope"),
            ("write", "Writing scope"),
            ("openid", "OpenID Connect scope"),
            ("profile", "Your name and profile"),
            ("email", "Your email address"),
            ("address", "Your postal address"),
            ("phone", "Your phone number"),
            ("introspection", "Introspect tokens"),
            ("permissions", "Your permissions"),
        ];
        Self {
            access_token_expire_seconds: 36_000,
            authorization_code_expire_seconds: 60,
            id_token_expire_seconds: 36_000,
            refresh_token_expire_seconds: None,
            refresh_token_grace_period_seconds: 0,
            rotate_refresh_token: true,
            refresh_token_reuse_protection: true,
            pkce_required: true,
            pkce_plain_allowed: true,
            scopes: scopes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            default_scopes: vec!["__all__".to_owned()],
            request_approval_prompt: ApprovalPrompt::Force,
            allowed_redirect_uri_schemes: vec!["http".to_owned(), "https".to_owned()],
            clear_expired_tokens_batch_size: 10_000,
            clear_expired_tokens_batch_interval: 0.0,
            device_code_expire_seconds: 600,
            device_flow_interval: 5,
            oidc_enabled: true,
            oidc_rsa_private_key: None,
            oidc_rsa_private_key_file: None,
            oidc_jwks_max_age_seconds: 3600,
            oidc_rp_initiated_logout_enabled: true,
            oidc_rp_initiated_logout_always_prompt: true,
            oidc_rp_initiated_logout_accept_expired_tokens: true,
            oidc_rp_initiated_logout_delete_tokens: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// Absolute lifetime of a login session (Django's SESSION_COOKIE_AGE: two weeks).
    pub expire_seconds: u64,
    pub cookie_name: String,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            expire_seconds: 1_209_600,
            cookie_name: "sessionid".to_owned(),
        }
    }
}

/// Throttling of failed passwords, client secrets and device user codes (see `throttle`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginThrottle {
    /// Failures for one username or client from one IP within `window_seconds` before that
    /// pair is refused (429).
    pub max_failures_per_source: u32,
    /// Failures from one client IP within `window_seconds`, whatever the principal, before it
    /// is refused.
    pub max_failures_per_ip: u32,
    /// Failures for one username or client from every IP within `window_seconds` after which
    /// each attempt for it waits, doubling from 0.25 s up to `max_delay_seconds`: slowed, never
    /// refused, so strangers cannot lock the real user out. (Before 0.2 this key was
    /// `max_failures_per_username` and locked the account; that name is still read.)
    #[serde(alias = "max_failures_per_username")]
    pub slow_down_after: u32,
    pub max_delay_seconds: u64,
    pub window_seconds: u64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            max_failures_per_source: 5,
            max_failures_per_ip: 30,
            slow_down_after: 10,
            max_delay_seconds: 5,
            window_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted form body, in bytes.
    pub form: u64,
    /// Largest accepted JSON body, in bytes.
    pub json: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            form: 64 * 1024,
            json: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub address: IpAddr,
    pub port: u16,
    /// Worker threads of the async runtime; 0 means one per CPU.
    pub workers: usize,
    /// Path of the redb database file, or a `postgres://` URL (several instances on one
    /// PostgreSQL database).
    pub database: PathBuf,
    /// redb page cache in MiB (redb's own default is 1 GiB, too much for an appliance).
    pub database_cache_mb: u64,
    /// Connections each instance keeps to PostgreSQL at most (unused with a redb file).
    pub database_pool_size: usize,
    /// Issuer URL; derived from the request when unset.
    pub issuer: Option<String>,
    /// Concurrent password/secret hash computations; 0 means one per CPU.
    pub max_concurrent_hashes: usize,
    /// A tracing filter: `info`, `debug`, `oxidot=debug,info`, ...
    pub log_level: String,
    /// The scope `/api/hello` (the tutorial's protected API) requires.
    pub protected_resource_scope: String,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`, `-Proto` and `-Host`
    /// are believed: for the client's IP (throttling) and the derived issuer.
    pub trusted_proxies: Vec<String>,
    pub limits: Limits,
    pub connections: Connections,
    pub sessions: Sessions,
    pub login_throttle: LoginThrottle,
    pub oauth2_provider: OAuth2Provider,
    /// Periodic tasks, written to the store at every start (`[<profile>.tasks.<name>]`).
    pub tasks: BTreeMap<String, TaskConfig>,
    pub backup: Backup,
    pub scheduler: SchedulerSettings,
    /// `text` (human-readable, the default) or `json` (one JSON object per line).
    pub log_format: String,
    pub metrics: MetricsSettings,
    /// HTTPS served directly: PEM certificate chain and private key.
    pub tls: Option<TlsSettings>,
    /// A secret (16+ characters) that encrypts private signing keys at rest; unset, they are
    /// stored as plain JWKs in the database (`oxidot check` says so).
    pub key_encryption_key: Option<String>,
    pub key_encryption_key_file: Option<PathBuf>,
    /// Start even when the database file can be read by other users (it holds the password
    /// hashes and, unless `key_encryption_key` is set, the private signing keys).
    pub allow_readable_database: bool,
}

/// What a connection may take: slow or greedy clients are cut off (see `web::listener`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Connections {
    /// Seconds for a request head (and a TLS handshake) to arrive; an idle keep-alive
    /// connection is closed after as long.
    pub header_timeout_seconds: u64,
    /// A request body must arrive at least this fast (after a grace of the header timeout).
    pub min_body_bytes_per_second: u64,
    /// Open connections in all.
    pub max: usize,
    /// Open connections from one client address.
    pub max_per_ip: usize,
    /// Seconds open requests get to finish at shutdown.
    pub shutdown_grace_seconds: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            header_timeout_seconds: 10,
            min_body_bytes_per_second: 1024,
            max: 4096,
            max_per_ip: 256,
            shutdown_grace_seconds: 5,
        }
    }
}

/// `/metrics`: on the main address, on an address of its own, or off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Serve `/metrics` here instead of on the main address (e.g. "127.0.0.1:9100").
    pub address: Option<std::net::SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            address: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub certs: PathBuf,
    pub key: PathBuf,
}

/// Where the `backup` task writes, and how many copies it keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// Default: a `backups` directory beside the database.
    pub directory: Option<PathBuf>,
    /// The newest this many `oxidot-*.redb` copies are kept.
    pub keep: usize,
}

impl Default for Backup {
    fn default() -> Self {
        Self {
            directory: None,
            keep: 7,
        }
    }
}

/// Which instance runs the periodic tasks: the one holding the scheduler's lease (a row in
/// the database, renewed every `poll_seconds`); when it dies another takes the lease over
/// once `lease_seconds` have passed. Each instance also re-reads the tasks every
/// `poll_seconds`, so an edit made through another instance applies within that time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    pub lease_seconds: u64,
    pub poll_seconds: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            lease_seconds: 30,
            poll_seconds: 10,
        }
    }
}

impl Settings {
    /// Where the `backup` task writes.
    pub fn backup_directory(&self) -> PathBuf {
        self.backup.directory.clone().unwrap_or_else(|| {
            self.database
                .parent()
                .map_or_else(|| PathBuf::from("backups"), |dir| dir.join("backups"))
        })
    }
}

/// A periodic task declared in the configuration: `every` + `period`, or `crontab`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The registered task: `clear_tokens` or `debug_task`.
    pub task: String,
    #[serde(default)]
    pub every: Option<u64>,
    /// `seconds`, `minutes`, `hours` or `days`.
    #[serde(default)]
    pub period: Option<String>,
    /// `second minute hour day-of-month month day-of-week`, UTC.
    #[serde(default)]
    pub crontab: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub one_off: bool,
    #[serde(default)]
    pub description: String,
}

fn enabled_by_default() -> bool {
    true
}

impl TaskConfig {
    /// The schedule it declares; the error says what is wrong.
    pub fn schedule(&self) -> Result<crate::store::TaskSchedule, String> {
        use crate::store::TaskSchedule;
        let schedule = match (&self.every, &self.period, &self.crontab) {
            (Some(every), period, None) => TaskSchedule::Interval {
                every: *every,
                period: period.clone().unwrap_or_else(|| "seconds".to_owned()),
            },
            (None, None, Some(expression)) => TaskSchedule::Crontab {
                expression: expression.clone(),
            },
            _ => return Err("give either every (and period) or crontab".to_owned()),
        };
        crate::scheduler::check_schedule(&schedule)?;
        if !crate::scheduler::TASKS.contains(&self.task.as_str()) {
            return Err(format!(
                "unknown task {:?} (known: {})",
                self.task,
                crate::scheduler::TASKS.join(", ")
            ));
        }
        Ok(schedule)
    }
}

impl Settings {
    /// Whether the server is reached over https, so cookies must be `Secure`.
    pub fn public_https(&self) -> bool {
        self.tls.is_some()
            || self
                .issuer
                .as_deref()
                .is_some_and(|issuer| issuer.starts_with("https://"))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            address: IpAddr::from([127, 0, 0, 1]),
            port: 8000,
            workers: 0,
            database: PathBuf::from("oxidot.redb"),
            database_cache_mb: 8,
            database_pool_size: 16,
            issuer: None,
            max_concurrent_hashes: 0,
            log_level: "info".to_owned(),
            protected_resource_scope: "read".to_owned(),
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            connections: Connections::default(),
            sessions: Sessions::default(),
            login_throttle: LoginThrottle::default(),
            oauth2_provider: OAuth2Provider::default(),
            tasks: BTreeMap::from([(
                "clear_tokens".to_owned(),
                TaskConfig {
                    task: "clear_tokens".to_owned(),
                    every: Some(1),
                    period: Some("hours".to_owned()),
                    crontab: None,
                    enabled: true,
                    one_off: false,
                    description: "Delete expired tokens (DOT's cleartokens)".to_owned(),
                },
            )]),
            backup: Backup::default(),
            scheduler: SchedulerSettings::default(),
            log_format: "text".to_owned(),
            metrics: MetricsSettings::default(),
            tls: None,
            key_encryption_key: None,
            key_encryption_key_file: None,
            allow_readable_database: false,
        }
    }
}

/// An IP address or CIDR range (`10.0.0.0/8`, `::1`), as an address and a prefix length.
pub fn parse_network(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.trim().parse().ok()?;
    let bits = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix.trim().parse::<u8>().ok().filter(|p| *p <= bits)?,
        None => bits,
    };
    Some((address, prefix))
}

/// Whether `ip` lies in the network `(address, prefix)`.
pub fn network_contains(network: (IpAddr, u8), ip: IpAddr) -> bool {
    let (address, prefix) = network;
    let (network, ip, bits): (u128, u128, u32) = match (address, ip.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    shift >= bits || (network >> shift) == (ip >> shift)
}

/// Where to read configuration from.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// An explicit file must exist; without one, `Rocket.toml` in the working directory is
    /// read when present.
    pub file: Option<PathBuf>,
    pub profile: String,
}

impl Default for ConfigSource {
    fn default() -> Self {
        Self {
            file: None,
            profile: DEFAULT_PROFILE.to_owned(),
        }
    }
}

/// Settings together with the record of where each value came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub settings: Settings,
    pub profile: String,
    pub file: Option<PathBuf>,
    /// What was ignored, for the log at start and for `oxidot check`.
    pub warnings: Vec<String>,
    figment: Figment,
}

/// `OXIDOT_*` variables that are read elsewhere, not as settings.
const ENV_NOT_SETTINGS: [&str; 4] = ["PROFILE", "CONFIG", "SUPERUSER_PASSWORD", "REQUIRE_BROWSER"];

/// Rocket's own names for two settings, read before ours (an `OXIDOT_*` value wins).
const ROCKET_ENV: &[(&str, &str)] = &[("ROCKET_PORT", "port"), ("ROCKET_ADDRESS", "address")];

/// The top-level setting names (`port`, `oauth2_provider`, …).
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(Settings::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every setting's dotted path (`oauth2_provider.pkce_required`), for suggestions.
fn known_paths() -> Vec<String> {
    let mut flat = Vec::new();
    if let Ok(value) = serde_json::to_value(Settings::default()) {
        flatten_keys("", &value, &mut flat);
    }
    flat
}

fn flatten_keys(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    if let serde_json::Value::Object(fields) = value {
        for (name, inner) in fields {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            // Maps of user-chosen names (scopes, tasks) end the walk.
            if matches!(name.as_str(), "scopes" | "tasks") {
                out.push(path);
            } else if inner.is_object() {
                flatten_keys(&path, inner, out);
            } else {
                out.push(path);
            }
        }
    }
}

/// "did you mean …" for an unknown key `path` (dotted): the same name in another section
/// first (`pkce_required` at the top belongs in `[oauth2_provider]`), else a close spelling
/// among the names allowed where it stands.
pub fn suggestion_for(path: &str, expected: &[&str]) -> Option<String> {
    let name = path.rsplit('.').next().unwrap_or(path);
    let section = path.rsplit_once('.').map(|(section, _)| section);
    let paths = known_paths();
    if let Some(elsewhere) = paths
        .iter()
        .find(|known| known.rsplit('.').next() == Some(name) && known.as_str() != path)
    {
        return Some(match elsewhere.rsplit_once('.') {
            Some((home, _)) => format!("`{name}` belongs in the `[{home}]` section"),
            None => format!(
                "`{name}` belongs at the top level, not in `[{}]`",
                section.unwrap_or("")
            ),
        });
    }
    let closest = expected
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)?;
    Some(format!("did you mean `{}`?", closest.1))
}

/// The environment names of the DOT tutorial, mapped onto our keys.
const SEED_ENV: &[(&str, &str)] = &[
    ("DOT_PKCE", "oauth2_provider.pkce_required"),
    (
        "OIDC_RSA_PRIVATE_KEY",
        "oauth2_provider.oidc_rsa_private_key",
    ),
    (
        "OIDC_RSA_PRIVATE_KEY_FILE",
        "oauth2_provider.oidc_rsa_private_key_file",
    ),
    ("PORT", "port"),
];

/// One environment variable, as its own provider so that errors and `oxidot check` name it.
struct SeedEnvVar {
    var: &'static str,
    key: &'static str,
    value: Value,
}

impl Provider for SeedEnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.var))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let nested = figment::util::nest(self.key, self.value.clone());
        let dict = nested
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("{} is not a key path", self.key)))?;
        Ok(Profile::Global.collect(dict))
    }
}

fn seed_env_var(var: &'static str, key: &'static str, raw: &str) -> Result<Value, ConfigError> {
    let bad = |message: &str| ConfigError::BadValue {
        key: key.to_owned(),
        source_name: format!("environment variable {var}"),
        message: message.to_owned(),
    };
    match var {
        // The tutorial sets DOT_PKCE the Python way ("True"/"False").
        "DOT_PKCE" => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::from(true)),
            "false" | "0" | "no" | "off" => Ok(Value::from(false)),
            _ => Err(bad(&format!("expected true or false, found {raw:?}"))),
        },
        "PORT" | "ROCKET_PORT" => raw
            .trim()
            .parse::<u16>()
            .map(|port| Value::from(u64::from(port)))
            .map_err(|_| bad(&format!("expected a TCP port number, found {raw:?}"))),
        _ => Ok(Value::from(raw.to_owned())),
    }
}

fn builtin_demo_profile() -> Dict {
    let mut dict = Dict::new();
    dict.insert("database".to_owned(), Value::from("oxidot-demo.redb"));
    // The tutorial's Celery beat schedule: every 10 seconds, so the cleanup is seen at work.
    let mut clear_tokens = Dict::new();
    clear_tokens.insert("every".to_owned(), Value::from(10u64));
    clear_tokens.insert("period".to_owned(), Value::from("seconds"));
    let mut tasks = Dict::new();
    tasks.insert("clear_tokens".to_owned(), Value::from(clear_tokens));
    dict.insert("tasks".to_owned(), Value::from(tasks));
    dict
}

impl LoadedConfig {
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        let file = match &source.file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.clone())),
            Some(path) => Some(path.clone()),
            None => {
                let path = PathBuf::from(DEFAULT_CONFIG_FILE);
                path.exists().then_some(path)
            }
        };
        let mut figment = Figment::new()
            .merge(Serialized::defaults(Settings::default()))
            .merge(Serialized::from(builtin_demo_profile(), DEMO_PROFILE));
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path).nested());
        }
        if let Some(path) = &file {
            check_profile(path, &source.profile)?;
        } else if ![DEFAULT_PROFILE, DEMO_PROFILE].contains(&source.profile.as_str()) {
            return Err(ConfigError::UnknownProfile {
                profile: source.profile.clone(),
                where_: format!("(there is no {DEFAULT_CONFIG_FILE} here, nor --config)"),
                available: format!("`{DEFAULT_PROFILE}` and `{DEMO_PROFILE}` (built in)"),
            });
        }
        for (var, key) in ROCKET_ENV {
            if let Ok(raw) = std::env::var(var) {
                let value = seed_env_var(var, key, &raw)?;
                figment = figment.merge(SeedEnvVar { var, key, value });
            }
        }
        let top_level = top_level_keys();
        let top_level_names: Vec<&str> = top_level.iter().map(String::as_str).collect();
        let known = top_level.clone();
        let is_setting = move |key: &str| {
            let first = key.split("__").next().unwrap_or(key).to_ascii_lowercase();
            known.contains(&first)
        };
        let mut warnings = Vec::new();
        for var in std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with(ENV_PREFIX))
        {
            let key = &var[ENV_PREFIX.len()..];
            if !ENV_NOT_SETTINGS.contains(&key) && !is_setting(key) {
                let path = key.to_ascii_lowercase().replace("__", ".");
                let hint = suggestion_for(&path, &top_level_names)
                    .map(|hint| format!(" ({hint})"))
                    .unwrap_or_default();
                warnings.push(format!(
                    "the environment variable {var} names no setting: ignored{hint}"
                ));
            }
        }
        let keep = is_setting.clone();
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .ignore(&ENV_NOT_SETTINGS)
                .filter(move |key| keep(key.as_str()))
                .split("__")
                .global(),
        );
        for (var, key) in SEED_ENV {
            if let Ok(raw) = std::env::var(var) {
                let value = seed_env_var(var, key, &raw)?;
                figment = figment.merge(SeedEnvVar { var, key, value });
            }
        }
        let figment = figment.select(source.profile.as_str());
        let settings: Settings = figment
            .extract()
            .map_err(|error| describe_figment_error(&figment, error))?;
        let loaded = Self {
            settings,
            profile: source.profile.clone(),
            file,
            warnings,
            figment,
        };
        loaded.validate()?;
        Ok(loaded)
    }

    /// Where a key's effective value came from, for messages and `oxidot check`.
    pub fn source_of(&self, key: &str) -> String {
        source_name(&self.figment, key)
    }

    fn bad_value(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            key: key.to_owned(),
            source_name: self.source_of(key),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.settings;
        let p = &s.oauth2_provider;
        if s.port == 0 {
            return Err(self.bad_value("port", "must be between 1 and 65535"));
        }
        if s.database.as_os_str().is_empty() {
            return Err(self.bad_value("database", "must be a file path"));
        }
        if s.scheduler.poll_seconds == 0 {
            return Err(self.bad_value("scheduler.poll_seconds", "must be at least 1"));
        }
        if s.scheduler.lease_seconds < 2 * s.scheduler.poll_seconds {
            return Err(self.bad_value(
                "scheduler.lease_seconds",
                "must be at least twice scheduler.poll_seconds (the lease is renewed every poll)",
            ));
        }
        if s.backup.keep == 0 {
            return Err(self.bad_value("backup.keep", "must be at least 1"));
        }
        if !["text", "json"].contains(&s.log_format.as_str()) {
            return Err(self.bad_value("log_format", "must be \"text\" or \"json\""));
        }
        #[cfg(not(feature = "tls"))]
        if s.tls.is_some() {
            return Err(self.bad_value(
                "tls",
                "this oxidot was built without TLS (cargo feature `tls`)",
            ));
        }
        if let Some(tls) = &s.tls {
            for (key, path) in [("tls.certs", &tls.certs), ("tls.key", &tls.key)] {
                if !path.is_file() {
                    return Err(
                        self.bad_value(key, format!("{} is not a readable file", path.display()))
                    );
                }
            }
        }
        if s.database_pool_size == 0 {
            return Err(self.bad_value("database_pool_size", "must be at least 1"));
        }
        if s.database_cache_mb == 0 {
            return Err(self.bad_value("database_cache_mb", "must be at least 1"));
        }
        for (name, task) in &s.tasks {
            // The admin's bulk delete lives at /admin/periodic-tasks/delete/.
            if name == "delete" {
                return Err(self.bad_value(
                    "tasks.delete",
                    "“delete” is reserved (the admin's delete action): choose another name",
                ));
            }
            task.schedule()
                .map_err(|error| self.bad_value(&format!("tasks.{name}"), error))?;
        }
        if let Some(bad) = s
            .trusted_proxies
            .iter()
            .find(|proxy| parse_network(proxy).is_none())
        {
            return Err(self.bad_value(
                "trusted_proxies",
                format!("{bad:?} is not an IP address or CIDR range"),
            ));
        }
        if !is_log_filter(&s.log_level) {
            return Err(self.bad_value(
                "log_level",
                format!(
                    "“{}” is not a log level: expected one of trace, debug, info, warn, error, \
                     off, or per-module levels such as info,oxidot=debug",
                    s.log_level
                ),
            ));
        }
        if let Some(issuer) = &s.issuer
            && !(issuer.starts_with("https://") || issuer.starts_with("http://"))
        {
            return Err(self.bad_value("issuer", "must be an http(s) URL"));
        }
        if !is_scope_token(&s.protected_resource_scope) {
            return Err(self.bad_value("protected_resource_scope", "must be a scope name"));
        }
        if s.limits.form < 1024 {
            return Err(self.bad_value("limits.form", "must be at least 1024 bytes"));
        }
        if s.sessions.expire_seconds == 0 {
            return Err(self.bad_value("sessions.expire_seconds", "must be positive"));
        }
        if s.sessions.cookie_name.is_empty()
            || !s
                .sessions
                .cookie_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.bad_value(
                "sessions.cookie_name",
                "must be letters, digits, '_' or '-'",
            ));
        }
        if s.login_throttle.window_seconds == 0 {
            return Err(self.bad_value("login_throttle.window_seconds", "must be positive"));
        }
        for (key, value) in [
            (
                "oauth2_provider.access_token_expire_seconds",
                p.access_token_expire_seconds,
            ),
            (
                "oauth2_provider.authorization_code_expire_seconds",
                p.authorization_code_expire_seconds,
            ),
            (
                "oauth2_provider.id_token_expire_seconds",
                p.id_token_expire_seconds,
            ),
            (
                "oauth2_provider.clear_expired_tokens_batch_size",
                p.clear_expired_tokens_batch_size,
            ),
            (
                "oauth2_provider.device_code_expire_seconds",
                p.device_code_expire_seconds,
            ),
            (
                "oauth2_provider.device_flow_interval",
                p.device_flow_interval,
            ),
        ] {
            if value == 0 {
                return Err(self.bad_value(key, "must be positive"));
            }
        }
        if p.refresh_token_expire_seconds == Some(0) {
            return Err(self.bad_value(
                "oauth2_provider.refresh_token_expire_seconds",
                "must be positive (leave it out for refresh tokens that never expire)",
            ));
        }
        if !p.clear_expired_tokens_batch_interval.is_finite()
            || p.clear_expired_tokens_batch_interval < 0.0
        {
            return Err(self.bad_value(
                "oauth2_provider.clear_expired_tokens_batch_interval",
                "must be a non-negative number of seconds",
            ));
        }
        if p.scopes.is_empty() {
            return Err(self.bad_value("oauth2_provider.scopes", "must name at least one scope"));
        }
        if let Some(bad) = p.scopes.keys().find(|scope| !is_scope_token(scope)) {
            return Err(self.bad_value(
                "oauth2_provider.scopes",
                format!("{bad:?} is not a valid scope name (RFC 6749 §3.3)"),
            ));
        }
        for scope in &p.default_scopes {
            if scope != "__all__" && !p.scopes.contains_key(scope) {
                return Err(self.bad_value(
                    "oauth2_provider.default_scopes",
                    format!("{scope:?} is not one of the configured scopes"),
                ));
            }
        }
        if let Some(bad) = p
            .allowed_redirect_uri_schemes
            .iter()
            .find(|scheme| !is_uri_scheme(scheme))
        {
            return Err(self.bad_value(
                "oauth2_provider.allowed_redirect_uri_schemes",
                format!("{bad:?} is not a URI scheme"),
            ));
        }
        if p.oidc_rsa_private_key.is_some() && p.oidc_rsa_private_key_file.is_some() {
            return Err(self.bad_value(
                "oauth2_provider.oidc_rsa_private_key_file",
                "give either the key or the key file, not both",
            ));
        }
        self.key_sealer()?;
        if let Some(pem) = self.oidc_rsa_private_key_pem()? {
            josekit::jws::RS256
                .signer_from_pem(pem.as_bytes())
                .map_err(|_| {
                    let key = if p.oidc_rsa_private_key_file.is_some() {
                        "oauth2_provider.oidc_rsa_private_key_file"
                    } else {
                        "oauth2_provider.oidc_rsa_private_key"
                    };
                    self.bad_value(key, "not an RSA private key in PEM format")
                })?;
        }
        Ok(())
    }

    /// The configured RSA signing key, read from its file when given as one.
    pub fn oidc_rsa_private_key_pem(&self) -> Result<Option<String>, ConfigError> {
        let p = &self.settings.oauth2_provider;
        if let Some(pem) = &p.oidc_rsa_private_key {
            return Ok(Some(pem.clone()));
        }
        match &p.oidc_rsa_private_key_file {
            Some(path) => std::fs::read_to_string(path).map(Some).map_err(|error| {
                self.bad_value(
                    "oauth2_provider.oidc_rsa_private_key_file",
                    format!("cannot read {}: {error}", path.display()),
                )
            }),
            None => Ok(None),
        }
    }

    /// What encrypts private signing keys at rest, when a secret is configured.
    pub fn key_sealer(&self) -> Result<Option<crate::oidc::KeySealer>, ConfigError> {
        let s = &self.settings;
        let (secret, key) = match (&s.key_encryption_key, &s.key_encryption_key_file) {
            (Some(_), Some(_)) => {
                return Err(self.bad_value(
                    "key_encryption_key_file",
                    "give either the secret or the file, not both",
                ));
            }
            (Some(secret), None) => (secret.clone(), "key_encryption_key"),
            (None, Some(path)) => (
                std::fs::read_to_string(path)
                    .map_err(|error| {
                        self.bad_value(
                            "key_encryption_key_file",
                            format!("cannot read {}: {error}", path.display()),
                        )
                    })?
                    .trim()
                    .to_owned(),
                "key_encryption_key_file",
            ),
            (None, None) => return Ok(None),
        };
        crate::oidc::KeySealer::new(&secret)
            .map(Some)
            .map_err(|error| self.bad_value(key, error.to_string()))
    }

    /// Every effective value as `key = value  # source`, secrets redacted.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        let mut rows = Vec::new();
        let value = serde_json::to_value(&self.settings).unwrap_or_default();
        flatten("", &value, &mut rows);
        rows.into_iter()
            .map(|(key, value)| {
                let shown = if is_secret_key(&key) && value != "null" {
                    "\"<redacted>\"".to_owned()
                } else if key == "database" {
                    // A PostgreSQL URL may carry a password.
                    serde_json::from_str::<String>(&value)
                        .ok()
                        .filter(|database| crate::store::postgres::is_postgres_url(database))
                        .map_or(value, |url| {
                            serde_json::Value::String(crate::store::postgres::redacted_url(&url))
                                .to_string()
                        })
                } else {
                    value
                };
                let source = self.source_of(&key);
                (key, shown, source)
            })
            .collect()
    }
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) if !prefix.ends_with("scopes") || prefix.is_empty() => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, inner, out);
            }
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.rsplit('.').next().unwrap_or(key);
    (key.contains("secret")
        || key.contains("private_key")
        || key.contains("password")
        || key == "key_encryption_key")
        && !key.ends_with("_file")
}

fn source_name(figment: &Figment, key: &str) -> String {
    // A key's own metadata, or that of the nearest table that holds it.
    let mut path = key;
    loop {
        if let Some(metadata) = figment.find_metadata(path) {
            return describe_metadata(metadata);
        }
        match path.rfind('.') {
            Some(dot) => path = &path[..dot],
            None => return "built-in default".to_owned(),
        }
    }
}

fn describe_metadata(metadata: &Metadata) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => format!("{} {}", metadata.name, path.display()),
        _ if metadata.name.starts_with("environment variable") => {
            metadata.name.clone().into_owned()
        }
        // Serialized providers are named after the type they serialize.
        _ if metadata.name == std::any::type_name::<Settings>() => "built-in default".to_owned(),
        _ if metadata.name == std::any::type_name::<Dict>() => "built-in demo profile".to_owned(),
        _ => metadata.name.clone().into_owned(),
    }
}

fn describe_figment_error(figment: &Figment, error: figment::Error) -> ConfigError {
    let Some(error) = error.into_iter().next() else {
        return ConfigError::Invalid("unknown error".to_owned());
    };
    let mut key = error.path.join(".");
    let message = match &error.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            key = if key.is_empty() {
                field.clone()
            } else {
                format!("{key}.{field}")
            };
            let hint = suggestion_for(&key, expected)
                .map(|hint| format!("{hint} "))
                .unwrap_or_default();
            format!(
                "unknown key; {hint}(expected one of: {})",
                expected
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        kind => kind.to_string(),
    };
    let source_name = match &error.metadata {
        Some(metadata) if !matches!(error.kind, figment::error::Kind::UnknownField(..)) => {
            describe_metadata(metadata)
        }
        _ => source_name(figment, &key),
    };
    ConfigError::BadValue {
        key: if key.is_empty() {
            "(top level)".to_owned()
        } else {
            key
        },
        source_name,
        message,
    }
}

/// Whether `text` is a log filter: levels, optionally per module (`info,oxidot=debug`).
/// (tracing's own parser takes a bare word as a module name, so `verbose` would pass it and
/// silence everything.)
pub fn is_log_filter(text: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |word: &str| LEVELS.contains(&word.trim().to_ascii_lowercase().as_str());
    !text.trim().is_empty()
        && text
            .split(',')
            .all(|directive| match directive.split_once('=') {
                Some((target, level)) => {
                    !target.trim().is_empty()
                        && target
                            .trim()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                        && is_level(level)
                }
                None => is_level(directive),
            })
}

/// Refuses a profile the settings file does not have (a typo would otherwise run with the
/// defaults), naming those it has.
fn check_profile(path: &std::path::Path, profile: &str) -> Result<(), ConfigError> {
    let profiles = Toml::file_exact(path)
        .nested()
        .data()
        .map_err(|error| ConfigError::Invalid(error.to_string()))?;
    let mut available: Vec<String> = profiles
        .keys()
        .map(|profile| profile.as_str().as_str().to_owned())
        .filter(|name| name != "global")
        .collect();
    for builtin in [DEFAULT_PROFILE, DEMO_PROFILE] {
        if !available.iter().any(|name| name == builtin) {
            available.push(builtin.to_owned());
        }
    }
    if available.iter().any(|name| name == profile) {
        return Ok(());
    }
    available.sort();
    Err(ConfigError::UnknownProfile {
        profile: profile.to_owned(),
        where_: format!("in {}", path.display()),
        available: available
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn is_uri_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn networks_parse_and_contain() {
        let ten = super::parse_network("10.0.0.0/8").unwrap();
        assert!(super::network_contains(ten, "10.1.2.3".parse().unwrap()));
        assert!(!super::network_contains(ten, "11.0.0.1".parse().unwrap()));
        let one = super::parse_network("192.0.2.7").unwrap();
        assert!(super::network_contains(one, "192.0.2.7".parse().unwrap()));
        assert!(!super::network_contains(one, "192.0.2.8".parse().unwrap()));
        let v6 = super::parse_network("2001:db8::/32").unwrap();
        assert!(super::network_contains(v6, "2001:db8::1".parse().unwrap()));
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        assert!(super::network_contains(
            ten,
            "::ffff:10.0.0.1".parse().unwrap()
        ));
        let all = super::parse_network("0.0.0.0/0").unwrap();
        assert!(super::network_contains(all, "203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", ""] {
            assert!(super::parse_network(bad).is_none(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("read"));
        assert!(is_scope_token("https://api.example/x:write"));
        assert!(!is_scope_token(""));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("quote\""));
    }

    #[test]
    fn log_filters_are_levels_or_module_levels() {
        for good in [
            "info",
            "debug",
            "info,oxidot=debug",
            "WARN",
            "oxidot::cleanup=trace",
        ] {
            assert!(is_log_filter(good), "{good}");
        }
        for bad in ["verbose", "", "info,", "oxidot=loud", "=info", "inf o"] {
            assert!(!is_log_filter(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        assert_eq!(
            suggestion_for("pkce_required", &["port", "database"]).as_deref(),
            Some("`pkce_required` belongs in the `[oauth2_provider]` section")
        );
        assert_eq!(
            suggestion_for("databse", &["port", "database"]).as_deref(),
            Some("did you mean `database`?")
        );
        assert_eq!(suggestion_for("zzzzzzzz", &["port", "database"]), None);
    }

    #[test]
    fn secrets_are_recognised_by_key_name() {
        assert!(is_secret_key("oauth2_provider.oidc_rsa_private_key"));
        assert!(!is_secret_key("oauth2_provider.oidc_rsa_private_key_file"));
        assert!(!is_secret_key("port"));
    }

    #[test]
    fn dot_pkce_accepts_python_booleans() {
        let parse = |raw| seed_env_var("DOT_PKCE", "oauth2_provider.pkce_required", raw);
        assert_eq!(parse("False").ok(), Some(Value::from(false)));
        assert_eq!(parse("true").ok(), Some(Value::from(true)));
        assert!(parse("maybe").is_err());
    }
}
