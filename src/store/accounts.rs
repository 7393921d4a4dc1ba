//! Units of work on accounts: users as the login page, the password grant and the password
//! forms see them, and the login sessions behind session cookies.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::{Group, Permission, PermissionRecord, SecretKey, Session, StoreError, Timestamp, User};

/// What a staff user's permissions are made of: their groups, and the loaded Django
/// permission rows that their own and their groups' permission pks name.
#[derive(Debug, Clone, Default)]
pub struct PermissionSources {
    pub groups: Vec<Group>,
    pub permissions: Vec<(u64, PermissionRecord)>,
}

/// The permission pks `user` and its `groups` name (permissions given by natural key need no
/// row).
pub fn permission_pks(user: &User, groups: &[Group]) -> BTreeSet<u64> {
    user.user_permissions
        .iter()
        .chain(groups.iter().flat_map(|group| group.permissions.iter()))
        .filter_map(|permission| match permission {
            Permission::Pk(pk) => Some(*pk),
            Permission::Natural(_) => None,
        })
        .collect()
}

#[async_trait]
pub trait AccountStorage: Send + Sync {
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    async fn user_by_id(&self, id: u64) -> Result<Option<User>, StoreError>;

    /// The groups `user` belongs to (for the permissions claim).
    async fn groups_of(&self, user: &User) -> Result<Vec<Group>, StoreError>;

    /// Creates an account from `user` with an id the database gives (above every id ever
    /// used, so a deleted user's leftovers never meet a new one); `user.id` is ignored.
    /// `StoreError::Duplicate` when the username is taken.
    async fn create_user(&self, user: User) -> Result<User, StoreError>;

    /// Replaces a password hash that still is `old_hash` (a login's rehash must not undo a
    /// password change made meanwhile). The user as stored afterwards; None when deleted.
    async fn upgrade_password(
        &self,
        user: u64,
        old_hash: String,
        new_hash: String,
    ) -> Result<Option<User>, StoreError>;

    /// Sets the password hash of `username` and ends the user's sessions but `keep` (Django
    /// logs the other sessions out). False when there is no such user (nothing changes).
    async fn set_password(
        &self,
        username: &str,
        hash: String,
        keep: Option<SecretKey>,
    ) -> Result<bool, StoreError>;

    /// A login: stores the session under `key` and records `session.created` as the user's
    /// last login, together. None when the user was deleted meanwhile (nothing stored).
    async fn open_session(
        &self,
        key: SecretKey,
        session: Session,
    ) -> Result<Option<User>, StoreError>;

    /// The session behind `key` with its user, when `rules::session_user_live` says both are.
    async fn live_session(
        &self,
        key: &SecretKey,
        now: Timestamp,
    ) -> Result<Option<(Session, User)>, StoreError>;

    /// Ends a session (logout); whether there was one.
    async fn end_session(&self, key: &SecretKey) -> Result<bool, StoreError>;

    /// What `user`'s admin permissions are made of (see `permissions::Granted`).
    async fn permission_sources(&self, user: &User) -> Result<PermissionSources, StoreError>;
}
