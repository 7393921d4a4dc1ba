//! Users and their login sessions: authentication (with throttling, password upgrades and a
//! dummy verification for unknown users), sessions, and the account commands of the CLI.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use subtle::ConstantTimeEq;

use std::collections::HashMap;

use crate::passwords::{Hasher, PasswordError};
use crate::permissions::{Granted, NaturalKey};
use crate::random::{self, RandomError};
use crate::store::{
    AccountStorage, ApplicationStorage, Group, Permission, PermissionRecord, SecretKey, Session,
    SharedStorage, StoreError, Timestamp, User, UserPage, UserQuery, UserSaved,
};
use crate::throttle::{Refused, Throttle};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("too many failed login attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    #[error("wrong username or password")]
    InvalidCredentials,
    /// A value refused, and the form field it came from (`username`, `email`, `password`).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no user named {0:?}")]
    UnknownUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A session that has just been created: the cookie value goes to the browser, once.
pub struct NewSession {
    pub cookie_value: String,
    pub session: Session,
    pub user: User,
}

pub struct Accounts {
    store: SharedStorage,
    hasher: Hasher,
    throttle: Throttle,
    clock: Clock,
    session_lifetime: u64,
}

impl Accounts {
    pub fn new(
        store: SharedStorage,
        hasher: Hasher,
        settings: &Settings,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            throttle: Throttle::new(
                "login",
                settings.login_throttle.clone(),
                clock.clone(),
                store.clone(),
            ),
            store,
            hasher,
            clock,
            session_lifetime: settings.sessions.expire_seconds,
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Checks a username and password, throttled per username and client IP. Inactive users,
    /// unknown users and wrong passwords all answer `InvalidCredentials` and cost the same hash
    /// work. A Django hash that matched is upgraded to argon2id. Used by the login page and the
    /// OAuth password grant alike.
    pub async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<&str>,
    ) -> Result<User, AccountError> {
        let admitted = match self.throttle.admit(username, client_ip).await {
            Ok(admitted) => admitted,
            Err(Refused::TooMany { retry_after }) => {
                tracing::info!(
                    username,
                    ip = client_ip.unwrap_or("unknown"),
                    "login refused: too many failures"
                );
                return Err(AccountError::Throttled { retry_after });
            }
            Err(Refused::Store(error)) => return Err(error.into()),
        };
        let user = self.store.user_by_username(username).await?;
        let stored_hash = user.as_ref().map(|user| user.password.clone());
        let verification = self.hasher.verify(password.to_owned(), stored_hash).await?;
        let Some(user) = user.filter(|user| verification.matches && user.is_active) else {
            // An inactive account counts like a wrong password: otherwise the throttle's
            // silence would confirm a guessed password. The line names the username and
            // IP (for fail2ban-style tools), never the password.
            self.throttle.record_failure(username, client_ip).await?;
            tracing::info!(
                username,
                ip = client_ip.unwrap_or("unknown"),
                "login failed: wrong username or password"
            );
            return Err(AccountError::InvalidCredentials);
        };
        self.throttle
            .record_success(username, client_ip, admitted)
            .await?;
        if !verification.needs_upgrade {
            return Ok(user);
        }
        let upgraded = self.hasher.hash(password.to_owned()).await?;
        // A user deleted since the check: the credentials no longer name anyone.
        self.store
            .upgrade_password(user.id, user.password.clone(), upgraded)
            .await?
            .ok_or(AccountError::InvalidCredentials)
    }

    /// Checks a username and password and opens a session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<&str>,
    ) -> Result<NewSession, AccountError> {
        let user = self
            .check_credentials(username, password, client_ip)
            .await?;
        let now = Timestamp::from_datetime(self.clock.now());
        let cookie_value = random::token(32)?;
        let session = Session {
            user_id: user.id,
            auth_time: now,
            created: now,
            expires_at: now.plus_seconds(self.session_lifetime),
            sid: random::token(16)?,
        };
        let user = self
            .store
            .open_session(SecretKey::of(&cookie_value), session.clone())
            .await?
            .ok_or(AccountError::InvalidCredentials)?;
        tracing::info!(user = user.username.as_str(), "login succeeded");
        Ok(NewSession {
            cookie_value,
            session,
            user,
        })
    }

    /// The live session behind a cookie value and its (active) user.
    pub async fn session_user(
        &self,
        cookie_value: &str,
    ) -> Result<Option<(Session, User)>, StoreError> {
        let now = Timestamp::from_datetime(self.clock.now());
        self.store
            .live_session(&SecretKey::of(cookie_value), now)
            .await
    }

    pub async fn logout(&self, cookie_value: &str) -> Result<(), StoreError> {
        self.store.end_session(&SecretKey::of(cookie_value)).await?;
        Ok(())
    }

    pub async fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.store.user_by_id(id).await
    }

    pub async fn user_named(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.store.user_by_username(username).await
    }

    /// One page of the user list (the admin's), searched and sorted in the store.
    pub async fn user_page(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        self.store.user_page(query).await
    }

    /// The usernames of those of `ids` that exist.
    pub async fn usernames(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, String>, StoreError> {
        self.store.usernames(ids).await
    }

    /// Creates an active account with Django's rules (see `create_user`).
    pub async fn create_user(&self, new: NewUser) -> Result<User, AccountError> {
        let now = Timestamp::from_datetime(self.clock.now());
        create_user(&*self.store, &self.hasher, new, now).await
    }

    /// Sets a password (see `change_password`).
    pub async fn change_password(
        &self,
        username: String,
        password: String,
        keep: Option<SecretKey>,
    ) -> Result<(), AccountError> {
        change_password(&*self.store, &self.hasher, username, password, keep).await
    }

    /// Saves `user` as an admin edited it. A user who stops being active loses every session
    /// and token at once, in the same transaction (their tokens also stop working at every
    /// check, so a deactivation that came another way, such as `loaddata`, locks them out
    /// too). Groups the user is put in must exist.
    pub async fn save_user(&self, user: User) -> Result<(), AccountError> {
        for group in &user.groups {
            if self.store.group(*group).await?.is_none() {
                return Err(AccountError::Invalid {
                    field: "groups",
                    message: "A chosen group does not exist.".to_owned(),
                });
            }
        }
        let now = Timestamp::from_datetime(self.clock.now());
        let username = user.username.clone();
        match self.store.save_user(user, now).await {
            Ok(Some(saved)) => {
                if saved != UserSaved::default() {
                    tracing::info!(
                        user = %username,
                        revoked = saved.revoked,
                        sessions = saved.sessions_ended,
                        "user deactivated: tokens revoked and sessions ended"
                    );
                }
                Ok(())
            }
            Ok(None) => Err(AccountError::UnknownUser(username)),
            Err(StoreError::Duplicate { .. }) => Err(AccountError::Invalid {
                field: "username",
                message: "A user with that username already exists.".to_owned(),
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a user with their sessions, tokens, consents and owned applications.
    pub async fn delete_user(&self, id: u64) -> Result<bool, StoreError> {
        let now = Timestamp::from_datetime(self.clock.now());
        self.store.delete_user(id, now).await
    }

    /// Every group, by id.
    pub async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.store.groups().await
    }

    pub async fn group(&self, id: u64) -> Result<Option<Group>, StoreError> {
        self.store.group(id).await
    }

    /// Creates a group (its id from the database); a taken name is refused.
    pub async fn create_group(
        &self,
        name: String,
        permissions: Vec<Permission>,
    ) -> Result<Group, AccountError> {
        let group = Group {
            id: 0,
            name,
            permissions,
        };
        self.store
            .create_group(group)
            .await
            .map_err(group_name_taken)
    }

    /// Saves an edited group; false when it was deleted meanwhile.
    pub async fn save_group(&self, group: Group) -> Result<bool, AccountError> {
        self.store.save_group(group).await.map_err(group_name_taken)
    }

    /// Deletes a group; its members stay, without it.
    pub async fn delete_group(&self, id: u64) -> Result<bool, StoreError> {
        self.store.delete_group(id).await
    }

    /// Every loaded Django permission row, by pk.
    pub async fn permissions(&self) -> Result<Vec<(u64, PermissionRecord)>, StoreError> {
        self.store.permissions().await
    }

    /// What `user` may do in the admin: their own and their groups' permissions, primary
    /// keys resolved through the loaded `auth.permission` rows.
    pub async fn granted(&self, user: &User) -> Result<Granted, StoreError> {
        if user.is_superuser || !user.is_active {
            return Ok(Granted::of(user, &[], &|_| None));
        }
        let sources = self.store.permission_sources(user).await?;
        let known: HashMap<u64, NaturalKey> = sources
            .permissions
            .into_iter()
            .map(|(pk, record)| (pk, (record.codename, record.app_label, record.model)))
            .collect();
        Ok(Granted::of(user, &sources.groups, &|pk| {
            known.get(&pk).cloned()
        }))
    }
}

fn group_name_taken(error: StoreError) -> AccountError {
    match error {
        StoreError::Duplicate { value, .. } => AccountError::Invalid {
            field: "name",
            message: format!("a group named {value:?} already exists"),
        },
        other => other.into(),
    }
}

/// Django's username rule: 1–150 of letters, digits and `@ . + - _`.
pub fn validate_username(username: &str) -> Result<(), AccountError> {
    let valid = !username.is_empty()
        && username.chars().count() <= 150
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c));
    if valid {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field: "username",
            message: "a username is 1 to 150 letters, digits and @ . + - _".to_owned(),
        })
    }
}

/// A subset of Django's default password validators.
pub fn validate_password(username: &str, password: &str) -> Result<(), AccountError> {
    let problem = if password.chars().count() < 8 {
        Some("This password is too short. It must contain at least 8 characters.")
    } else if password.chars().all(|c| c.is_ascii_digit()) {
        Some("This password is entirely numeric.")
    } else if password.eq_ignore_ascii_case(username) {
        Some("The password is too similar to the username.")
    } else {
        None
    };
    match problem {
        Some(message) => Err(AccountError::Invalid {
            field: "password",
            message: message.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Who a new account is: its name, email, password, and rank.
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

pub async fn create_superuser(
    store: &(impl AccountStorage + ?Sized),
    hasher: &Hasher,
    username: String,
    email: String,
    password: String,
) -> Result<User, AccountError> {
    let now = Timestamp::from_datetime(time::OffsetDateTime::now_utc());
    create_user(
        store,
        hasher,
        NewUser {
            username,
            email,
            password,
            is_staff: true,
            is_superuser: true,
        },
        now,
    )
    .await
}

/// Creates an active account with Django's username, password and email rules.
pub async fn create_user(
    store: &(impl AccountStorage + ?Sized),
    hasher: &Hasher,
    new: NewUser,
    now: Timestamp,
) -> Result<User, AccountError> {
    let NewUser {
        username,
        email,
        password,
        is_staff,
        is_superuser,
    } = new;
    validate_username(&username)?;
    validate_password(&username, &password)?;
    if !email.is_empty() && !email.contains('@') {
        return Err(AccountError::Invalid {
            field: "email",
            message: format!("“{email}” is not an email address"),
        });
    }
    let taken = || AccountError::Invalid {
        field: "username",
        message: "A user with that username already exists.".to_owned(),
    };
    if store.user_by_username(&username).await?.is_some() {
        return Err(taken());
    }
    let password = hasher.hash(password).await?;
    let new = User {
        id: 0,
        username,
        password,
        first_name: String::new(),
        last_name: String::new(),
        email,
        is_active: true,
        is_staff,
        is_superuser,
        last_login: None,
        date_joined: now,
        groups: Vec::new(),
        user_permissions: Vec::new(),
    };
    match store.create_user(new).await {
        // Taken meanwhile (another form, another instance).
        Err(StoreError::Duplicate { .. }) => Err(taken()),
        created => Ok(created?),
    }
}

/// Sets a password and ends the user's other sessions (Django's behaviour): every session but
/// `keep`, the one of a user changing their own password.
pub async fn change_password(
    store: &(impl AccountStorage + ?Sized),
    hasher: &Hasher,
    username: String,
    password: String,
    keep: Option<SecretKey>,
) -> Result<(), AccountError> {
    validate_password(&username, &password)?;
    if store.user_by_username(&username).await?.is_none() {
        return Err(AccountError::UnknownUser(username));
    }
    let hash = hasher.hash(password).await?;
    if store.set_password(&username, hash, keep).await? {
        Ok(())
    } else {
        Err(AccountError::UnknownUser(username))
    }
}

/// Whether the demo's published credentials work here (a public server must not have them).
pub async fn demo_credentials_present<S>(store: &S, hasher: &Hasher) -> Result<bool, AccountError>
where
    S: AccountStorage + ApplicationStorage + ?Sized,
{
    let admin = store.user_by_username("admin").await?;
    let client = store.application_by_client_id("hash1").await?;
    if let Some(admin) = admin {
        let check = hasher
            .verify("admin123".to_owned(), Some(admin.password))
            .await?;
        if check.matches {
            return Ok(true);
        }
    }
    if let Some(client) = client {
        if !client.hash_client_secret {
            return Ok(bool::from(client.client_secret.as_bytes().ct_eq(b"hashed")));
        }
        let check = hasher
            .verify("hashed".to_owned(), Some(client.client_secret))
            .await?;
        return Ok(check.matches);
    }
    Ok(false)
}
