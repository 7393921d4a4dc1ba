//! The CLI commands that read or write the database. Each runs against the file directly, or,
//! when a server holds the file, inside that server through its control socket — the same
//! code either way.

use serde::{Deserialize, Serialize};

use crate::accounts::{self, AccountError};
use crate::fixtures::{self, FixtureError, FixtureFile, Format};
use crate::passwords::Hasher;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    LoadData {
        files: Vec<FixtureFile>,
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
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

pub async fn execute(
    store: &Store,
    hasher: &Hasher,
    command: Command,
) -> Result<String, CommandError> {
    match command {
        Command::LoadData { files } => {
            // Parsing hashes plain client secrets (argon2): keep it off the async executor.
            let prepared = tokio::task::spawn_blocking(move || fixtures::prepare(&files))
                .await
                .map_err(|error| CommandError::Other(error.to_string()))??;
            let report = fixtures::install(store, prepared).await?;
            Ok(report.to_string())
        }
        Command::DumpData { models, format } => {
            let models = fixtures::select_models(&models).map_err(CommandError::Other)?;
            Ok(fixtures::dump(store, &models, format)?)
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
            accounts::change_password(store, hasher, username.clone(), password).await?;
            Ok(format!(
                "Password changed successfully for user {username:?}."
            ))
        }
        Command::Status => status(store),
    }
}

fn status(store: &Store) -> Result<String, CommandError> {
    let (schema, users, applications, sessions) = store.read(|tx| {
        Ok((
            tx.schema_version()?,
            tx.user_count()?,
            tx.applications()?.len(),
            tx.session_count()?,
        ))
    })?;
    Ok(format!(
        "database {}: schema version {schema}, {users} user(s), {applications} application(s), \
         {sessions} session(s), {} bytes",
        store.path().display(),
        store.file_size()
    ))
}
