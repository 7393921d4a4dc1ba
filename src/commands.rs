//! The CLI commands that read or write the database. Each runs against the file directly, or,
//! when a server holds the file, inside that server through its control socket — the same
//! code either way.

use serde::{Deserialize, Serialize};

use crate::accounts::{self, AccountError};
use crate::cleanup;
use crate::clock::Clock;
use crate::config::{OAuth2Provider, Settings};
use crate::fixtures::{self, FixtureError, Format, Source};
use crate::oidc::{KeyAdmin, KeyError, KeyRing};
use crate::passwords::Hasher;
use crate::store::{Algorithm, SharedStorage, StoreError, Timestamp};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    LoadData {
        files: Vec<Source>,
    },
    DumpData {
        models: Vec<String>,
        format: Format,
    },
    CreateSuperuser {
        username: String,
        email: String,
        password: String,
    },
    ChangePassword {
        username: String,
        password: String,
    },
    Status,
    Keys {
        action: KeysAction,
    },
    ClearTokens,
    Backup {
        destination: std::path::PathBuf,
    },
}

/// `oxidot keys …`: the ID token signing keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum KeysAction {
    List,
    Generate {
        algorithm: String,
    },
    Rotate {
        algorithm: String,
        #[serde(default)]
        immediately: bool,
    },
    Retire {
        kid: String,
    },
}

/// What a command runs with: the storage, the redb file's path when the database is one (a
/// fixture sent over the control socket is spooled beside it), and in a running server its
/// live key ring (reloaded after a key command, so the change applies at once).
pub struct CommandContext {
    pub storage: SharedStorage,
    pub file: Option<std::path::PathBuf>,
    pub hasher: Hasher,
    pub provider: OAuth2Provider,
    pub id_token_lifetime: u64,
    pub jwks_max_age: u64,
    pub keys: Option<KeyRing>,
    /// Seals private signing keys at rest (from `key_encryption_key`).
    pub sealer: Option<crate::oidc::KeySealer>,
    pub clock: Clock,
    /// How long a run's lease on its task lasts unrenewed (`scheduler.lease_seconds`).
    pub task_lease_seconds: u64,
}

impl CommandContext {
    pub fn new(
        storage: SharedStorage,
        file: Option<std::path::PathBuf>,
        hasher: Hasher,
        settings: &Settings,
        clock: Clock,
    ) -> Self {
        Self {
            storage,
            file,
            hasher,
            provider: settings.oauth2_provider.clone(),
            id_token_lifetime: settings.oauth2_provider.id_token_expire_seconds,
            jwks_max_age: settings.oauth2_provider.oidc_jwks_max_age_seconds,
            keys: None,
            sealer: None,
            clock,
            task_lease_seconds: settings.scheduler.lease_seconds,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{0}")]
    Other(String),
}

pub async fn execute(context: &CommandContext, command: Command) -> Result<String, CommandError> {
    let store = &*context.storage;
    let hasher = &context.hasher;
    match command {
        Command::LoadData { files } => {
            let report = fixtures::load(context.storage.clone(), files).await?;
            Ok(report.to_string())
        }
        Command::DumpData { models, format } => {
            let models = fixtures::select_models(&models).map_err(CommandError::Other)?;
            Ok(fixtures::dump(store, &models, format).await?)
        }
        Command::CreateSuperuser {
            username,
            email,
            password,
        } => {
            let user = accounts::create_superuser(store, hasher, username, email, password).await?;
            Ok(format!(
                "Superuser {:?} created (pk {}).",
                user.username, user.id
            ))
        }
        Command::ChangePassword { username, password } => {
            accounts::change_password(store, hasher, username.clone(), password, None).await?;
            Ok(format!(
                "Password changed successfully for user {username:?}."
            ))
        }
        Command::Status => {
            status(&crate::status::StoreStatus::new(
                context.storage.clone(),
                context.provider.clone(),
                context.clock.clone(),
            ))
            .await
        }
        Command::Keys { action } => keys(context, action).await,
        Command::Backup { destination } => {
            let now = Timestamp::from_datetime(context.clock.now());
            Ok(crate::backups::backup(store, &destination, now).await?)
        }
        Command::ClearTokens => {
            // The scheduled cleanup's lease: never beside a run on a server (or another CLI).
            let holder = format!("cli:{}", crate::scheduler::instance_name());
            let Some(lease) = crate::scheduler::TaskLease::claim(
                store,
                &context.clock,
                &holder,
                "clear_tokens",
                context.task_lease_seconds,
                None,
            )
            .await?
            else {
                return Err(CommandError::Other(
                    "a cleanup is running now (on a server, or another cleartokens): nothing \
                     was done; run this again when it has ended"
                        .to_owned(),
                ));
            };
            let cleanup = cleanup::clear_expired(store, &context.provider, &context.clock, &lease);
            let report = lease.hold(cleanup).await;
            lease.release().await;
            let report = report?;
            let mut output = report.lines().join("\n");
            output.push_str(&format!("\n({} ms)\n", report.elapsed_millis));
            Ok(output)
        }
    }
}

fn key_algorithm(name: &str) -> Result<Algorithm, CommandError> {
    Algorithm::parse(name)
        .filter(|algorithm| crate::oidc::keys::KEY_ALGORITHMS.contains(algorithm))
        .ok_or_else(|| {
            CommandError::Other(format!(
                "{name:?} is not a key algorithm: RS256, ES256 or EdDSA (HS256 signs with each \
                 client's secret)"
            ))
        })
}

async fn keys(context: &CommandContext, action: KeysAction) -> Result<String, CommandError> {
    let admin = KeyAdmin {
        store: &*context.storage,
        id_token_lifetime: context.id_token_lifetime,
        jwks_max_age: context.jwks_max_age,
        sealer: context.sealer.as_ref(),
    };
    let now = Timestamp::from_datetime(context.clock.now());
    let output = match action {
        KeysAction::List => return Ok(admin.list(now).await?),
        KeysAction::Generate { algorithm } => {
            admin.generate(key_algorithm(&algorithm)?, now).await?
        }
        KeysAction::Rotate {
            algorithm,
            immediately,
        } => {
            admin
                .rotate(key_algorithm(&algorithm)?, immediately, now)
                .await?
        }
        KeysAction::Retire { kid } => admin.retire(&kid, now).await?,
    };
    if let Some(ring) = &context.keys {
        ring.reload().await?;
    }
    Ok(output)
}

async fn status(store: &crate::status::StoreStatus) -> Result<String, CommandError> {
    let described = store.describe().await?;
    let totals = store.totals().await?;
    Ok(format!(
        "database {}: schema version {}, {} user(s), {} application(s), {} session(s), {} bytes",
        described.location,
        described.schema_version,
        totals.users,
        totals.applications,
        totals.sessions,
        described.bytes
    ))
}
