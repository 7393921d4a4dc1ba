//! OAuth applications (clients): DOT's rules for registering and editing them (`form`), and
//! the service that saves them — for the admin console and `/o/applications/` alike. Nothing
//! here knows HTTP.

mod form;

use std::sync::Arc;

pub use form::*;

use crate::clock::Clock;
use crate::config::Settings;
use crate::passwords::{Hasher, PasswordError};
use crate::random::{self, RandomError};
use crate::store::{Application, ClientType, Replaced, SharedStorage, StoreError, Timestamp};

/// A saved application, and its new secret when one was made (shown once, never stored plain
/// when hashed).
pub struct Saved {
    pub application: Application,
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    #[error("there is no such application")]
    NotFound,
    #[error("a public client has no secret")]
    PublicClient,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Tries of a secret regeneration that keeps meeting another save.
const REPLACE_ATTEMPTS: usize = 3;

pub struct Applications {
    store: SharedStorage,
    hasher: Hasher,
    settings: Arc<Settings>,
    clock: Clock,
}

impl Applications {
    pub fn new(
        store: SharedStorage,
        hasher: Hasher,
        settings: Arc<Settings>,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            hasher,
            settings,
            clock,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(self.clock.now())
    }

    pub async fn get(&self, id: u64) -> Result<Option<Application>, StoreError> {
        self.store.application(id).await
    }

    pub async fn by_client_id(&self, client_id: &str) -> Result<Option<Application>, StoreError> {
        self.store.application_by_client_id(client_id).await
    }

    /// Every application, by id.
    pub async fn all(&self) -> Result<Vec<Application>, StoreError> {
        self.store.applications().await
    }

    /// The applications `owner` registered.
    pub async fn owned_by(&self, owner: u64) -> Result<Vec<Application>, StoreError> {
        let mut all = self.all().await?;
        all.retain(|application| application.user == Some(owner));
        Ok(all)
    }

    /// Deletes an application and everything issued to it; whether there was one.
    pub async fn delete(&self, id: u64) -> Result<bool, StoreError> {
        self.store.delete_application(id).await
    }

    /// A new secret: the text to show, and what to store.
    async fn new_secret(&self, hashed: bool) -> Result<(String, String), ApplicationError> {
        let secret = random::alphanumeric(CLIENT_SECRET_LENGTH)?;
        let stored = if hashed {
            self.hasher.hash(secret.clone()).await?
        } else {
            secret.clone()
        };
        Ok((secret, stored))
    }

    /// Registers an application from a form (`owner` as the form decided it); a refusal is
    /// for the form.
    pub async fn register(
        &self,
        form: &ApplicationForm,
        registrar: Registrar,
        owner: Option<u64>,
    ) -> Result<Result<Saved, Refusal>, ApplicationError> {
        let valid = match form.validate(&self.settings.oauth2_provider, registrar, None) {
            Ok(valid) => valid,
            Err(refused) => return Ok(Err(refused)),
        };
        let secret = if valid.client_type == ClientType::Confidential {
            Some(self.new_secret(valid.hash_client_secret).await?)
        } else {
            None
        };
        let generated_id = random::alphanumeric(CLIENT_ID_LENGTH)?;
        let mut application = valid.into_application(None, 0, generated_id, owner, self.now());
        if let Some((_, stored)) = &secret {
            application.client_secret.clone_from(stored);
        }
        match self.store.register_application(application).await {
            Ok(application) => Ok(Ok(Saved {
                application,
                secret: secret.map(|(shown, _)| shown),
            })),
            Err(StoreError::Duplicate { .. }) => Ok(Err(client_id_taken())),
            Err(error) => Err(error.into()),
        }
    }

    /// Saves a form's edits to application `id` (`owner` as the form decided it).
    pub async fn update(
        &self,
        id: u64,
        form: &ApplicationForm,
        registrar: Registrar,
        owner: Option<u64>,
    ) -> Result<Result<Saved, Refusal>, ApplicationError> {
        let Some(current) = self.get(id).await? else {
            return Err(ApplicationError::NotFound);
        };
        let valid = match form.validate(&self.settings.oauth2_provider, registrar, Some(&current)) {
            Ok(valid) => valid,
            Err(refused) => return Ok(Err(refused)),
        };
        // A hashed secret cannot be turned back into the plain one: stopping the hashing, or
        // becoming confidential without a secret, makes a new secret (shown once).
        let needs_new = valid.client_type == ClientType::Confidential
            && (current.client_secret.is_empty()
                || (current.hash_client_secret && !valid.hash_client_secret));
        let secret = if needs_new {
            Some(self.new_secret(valid.hash_client_secret).await?)
        } else if !current.hash_client_secret
            && valid.hash_client_secret
            && !current.client_secret.is_empty()
        {
            let hashed = self.hasher.hash(current.client_secret.clone()).await?;
            Some((String::new(), hashed))
        } else {
            None
        };
        // The whole record is compared, not only the secret: the trust flags an owner's edit
        // keeps must be the ones staff set last.
        let mut application =
            valid.into_application(Some(current.clone()), id, String::new(), owner, self.now());
        if let Some((_, stored)) = &secret {
            application.client_secret.clone_from(stored);
        }
        match self.store.replace_application(&current, &application).await {
            Ok(Replaced::Done) => Ok(Ok(Saved {
                application,
                secret: secret
                    .map(|(shown, _)| shown)
                    .filter(|shown| !shown.is_empty()),
            })),
            Ok(Replaced::Changed) => Ok(Err(Refusal::general(
                "The application changed meanwhile: load it again.",
            ))),
            Ok(Replaced::Gone) => Err(ApplicationError::NotFound),
            Err(StoreError::Duplicate { .. }) => Ok(Err(client_id_taken())),
            Err(error) => Err(error.into()),
        }
    }

    /// Replaces the secret of application `id`; the new one is returned to be shown once.
    pub async fn regenerate_secret(&self, id: u64) -> Result<Saved, ApplicationError> {
        for _ in 0..REPLACE_ATTEMPTS {
            let Some(current) = self.get(id).await? else {
                return Err(ApplicationError::NotFound);
            };
            if current.client_type != ClientType::Confidential {
                return Err(ApplicationError::PublicClient);
            }
            let (shown, stored) = self.new_secret(current.hash_client_secret).await?;
            let application = Application {
                client_secret: stored,
                updated: self.now(),
                ..current.clone()
            };
            match self
                .store
                .replace_application(&current, &application)
                .await?
            {
                Replaced::Done => {
                    return Ok(Saved {
                        application,
                        secret: Some(shown),
                    });
                }
                Replaced::Gone => return Err(ApplicationError::NotFound),
                // Saved meanwhile (another edit): make the secret for the new record.
                Replaced::Changed => {}
            }
        }
        Err(StoreError::Storage(
            "the application kept changing while its secret was replaced".to_owned(),
        )
        .into())
    }
}

/// The only unique field an application has is its client id.
fn client_id_taken() -> Refusal {
    Refusal::of(
        "client_id",
        "An application with this client id already exists: choose another, or leave the \
         field empty to generate one.",
    )
}
