//! The account units of work on redb: reads in one snapshot, changes as jobs of the single
//! writer.

use async_trait::async_trait;

use super::Store;
use crate::rules;
use crate::store::{
    AccountStorage, Group, PermissionSources, SecretKey, Session, StoreError, Timestamp, User,
    permission_pks,
};

#[async_trait]
impl AccountStorage for Store {
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.read(|tx| tx.user_by_username(username))
    }

    async fn user_by_id(&self, id: u64) -> Result<Option<User>, StoreError> {
        self.read(|tx| tx.user(id))
    }

    async fn groups_of(&self, user: &User) -> Result<Vec<Group>, StoreError> {
        self.read(|tx| tx.groups_of(user))
    }

    async fn create_user(&self, user: User) -> Result<User, StoreError> {
        self.write(move |tx| {
            let created = User {
                id: tx.next_user_id()?,
                ..user.clone()
            };
            // `put_user` refuses a taken username (`Duplicate`); the job then commits nothing.
            tx.put_user(&created)?;
            Ok(created)
        })
        .await
    }

    async fn upgrade_password(
        &self,
        user: u64,
        old_hash: String,
        new_hash: String,
    ) -> Result<Option<User>, StoreError> {
        self.write(move |tx| {
            let Some(mut stored) = tx.user(user)? else {
                return Ok(None);
            };
            if stored.password == old_hash {
                stored.password.clone_from(&new_hash);
                tx.put_user(&stored)?;
            }
            Ok(Some(stored))
        })
        .await
    }

    async fn set_password(
        &self,
        username: &str,
        hash: String,
        keep: Option<SecretKey>,
    ) -> Result<bool, StoreError> {
        let username = username.to_owned();
        self.write(move |tx| {
            let Some(mut user) = tx.user_by_username(&username)? else {
                return Ok(false);
            };
            user.password.clone_from(&hash);
            tx.put_user(&user)?;
            tx.end_sessions_of_user(user.id, keep.as_ref())?;
            Ok(true)
        })
        .await
    }

    async fn open_session(
        &self,
        key: SecretKey,
        session: Session,
    ) -> Result<Option<User>, StoreError> {
        self.write(move |tx| {
            let Some(mut user) = tx.user(session.user_id)? else {
                return Ok(None);
            };
            user.last_login = Some(session.created);
            tx.put_user(&user)?;
            tx.put_session(&key, &session)?;
            Ok(Some(user))
        })
        .await
    }

    async fn live_session(
        &self,
        key: &SecretKey,
        now: Timestamp,
    ) -> Result<Option<(Session, User)>, StoreError> {
        self.read(|tx| {
            let Some(session) = tx.session(key)? else {
                return Ok(None);
            };
            let user = tx.user(session.user_id)?;
            Ok(user
                .filter(|user| rules::session_user_live(&session, Some(user), now))
                .map(|user| (session, user)))
        })
    }

    async fn end_session(&self, key: &SecretKey) -> Result<bool, StoreError> {
        let key = *key;
        self.write(move |tx| tx.delete_session(&key)).await
    }

    async fn permission_sources(&self, user: &User) -> Result<PermissionSources, StoreError> {
        self.read(|tx| {
            let groups = tx.groups_of(user)?;
            let pks = permission_pks(user, &groups);
            let mut permissions = Vec::with_capacity(pks.len());
            for pk in pks {
                if let Some(record) = tx.permission(pk)? {
                    permissions.push((pk, record));
                }
            }
            Ok(PermissionSources {
                groups,
                permissions,
            })
        })
    }
}
