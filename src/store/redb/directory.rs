//! The directory units of work (users and groups) on redb.

use async_trait::async_trait;

use super::Store;
use crate::rules;
use crate::store::{
    DirectoryStorage, Group, PermissionRecord, StoreError, Timestamp, User, UserPage, UserQuery,
    UserSaved,
};

#[async_trait]
impl DirectoryStorage for Store {
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|tx| tx.users())
    }

    async fn user_page(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        // A file is one machine's: every user is read from its memory-mapped pages and
        // ranked as it goes (only each match's key is kept), then the page's users are read.
        self.read(|tx| {
            let mut ranking = query.ranking();
            tx.each_user(|user| ranking.add(&user))?;
            let ranked = ranking.finish();
            let mut users = Vec::with_capacity(ranked.ids.len());
            for id in &ranked.ids {
                users.extend(tx.user(*id)?);
            }
            Ok(UserPage {
                users,
                page: ranked.page,
                matching: ranked.matching,
                total: ranked.total,
            })
        })
    }

    async fn usernames(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, String>, StoreError> {
        self.read(|tx| {
            let mut found = std::collections::HashMap::with_capacity(ids.len());
            for id in ids {
                if let Some(user) = tx.user(*id)? {
                    found.insert(user.id, user.username);
                }
            }
            Ok(found)
        })
    }

    async fn save_user(&self, user: User, now: Timestamp) -> Result<Option<UserSaved>, StoreError> {
        self.write(move |tx| {
            let Some(previous) = tx.user(user.id)? else {
                return Ok(None);
            };
            tx.put_user(&user)?;
            let mut saved = UserSaved::default();
            if rules::deactivated(Some(&previous), &user) {
                saved.revoked = tx.revoke_tokens_of(user.id, None, now)?;
                saved.sessions_ended = tx.end_sessions_of_user(user.id, None)?;
            }
            Ok(Some(saved))
        })
        .await
    }

    async fn delete_user(&self, id: u64, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |tx| tx.delete_user_with_all_theirs(id, now))
            .await
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.read(|tx| tx.groups())
    }

    async fn group(&self, id: u64) -> Result<Option<Group>, StoreError> {
        self.read(|tx| tx.group(id))
    }

    async fn create_group(&self, group: Group) -> Result<Group, StoreError> {
        self.write(move |tx| {
            let created = Group {
                id: tx.next_group_id()?,
                ..group.clone()
            };
            tx.put_group(&created)?;
            Ok(created)
        })
        .await
    }

    async fn save_group(&self, group: Group) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if tx.group(group.id)?.is_none() {
                return Ok(false);
            }
            tx.put_group(&group)?;
            Ok(true)
        })
        .await
    }

    async fn delete_group(&self, id: u64) -> Result<bool, StoreError> {
        self.write(move |tx| tx.delete_group_everywhere(id)).await
    }

    async fn permissions(&self) -> Result<Vec<(u64, PermissionRecord)>, StoreError> {
        self.read(|tx| tx.permissions_by_pk())
    }
}
