//! Units of work on the directory the admin console edits: users and groups (Django's
//! `auth` app), with what goes with them when they change or go.

use async_trait::async_trait;

use super::{Group, PermissionRecord, StoreError, Timestamp, User, UserPage, UserQuery};

/// What saving an edited user did besides storing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserSaved {
    /// Tokens revoked and sessions ended because the user stopped being active.
    pub revoked: u64,
    pub sessions_ended: u64,
}

#[async_trait]
pub trait DirectoryStorage: Send + Sync {
    /// Every user, by id.
    async fn users(&self) -> Result<Vec<User>, StoreError>;

    /// One page of the admin's user list: searched, ordered and counted by the rules of
    /// `UserQuery`, without reading every user where the backend can avoid it.
    async fn user_page(&self, query: &UserQuery) -> Result<UserPage, StoreError>;

    /// The usernames of the users `ids` names that exist (one read, however many): what a
    /// list of applications shows as owners, without reading every user.
    async fn usernames(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, String>, StoreError>;

    /// Saves an edited user (same id). A user who stops being active (`rules::deactivated`)
    /// loses every session and token in the same transaction. None when the user was deleted
    /// meanwhile (nothing stored); `StoreError::Duplicate` when the username is taken.
    async fn save_user(&self, user: User, now: Timestamp) -> Result<Option<UserSaved>, StoreError>;

    /// Deletes a user with their sessions, tokens, consents and the applications they own;
    /// whether there was one. Their id is never given again.
    async fn delete_user(&self, id: u64, now: Timestamp) -> Result<bool, StoreError>;

    /// Every group, by id.
    async fn groups(&self) -> Result<Vec<Group>, StoreError>;

    async fn group(&self, id: u64) -> Result<Option<Group>, StoreError>;

    /// Stores a new group with an id the database gives; `group.id` is ignored.
    /// `StoreError::Duplicate` when the name is taken.
    async fn create_group(&self, group: Group) -> Result<Group, StoreError>;

    /// Saves an edited group (same id); false when it was deleted meanwhile.
    /// `StoreError::Duplicate` when the name is taken.
    async fn save_group(&self, group: Group) -> Result<bool, StoreError>;

    /// Deletes a group; its members stay, without it. Whether there was one.
    async fn delete_group(&self, id: u64) -> Result<bool, StoreError>;

    /// Every loaded Django permission row, by pk.
    async fn permissions(&self) -> Result<Vec<(u64, PermissionRecord)>, StoreError>;
}
