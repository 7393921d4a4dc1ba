//! Undo for `loaddata`: a large load commits in chunks (so memory stays bounded and a running
//! server keeps issuing tokens between them), yet stays all or nothing. Every record a load
//! writes first has what it replaces — or that there was nothing — appended to a journal, in
//! the same transaction as the write. A load that fails walks the journal backwards and puts
//! each record back; one that succeeds empties it. A journal found at open belongs to a load a
//! crash interrupted, and is rolled back then.
//!
//! While a load runs, two staging tables pair DOT's refresh tokens with their access tokens
//! (DOT refers to them by its own pks, which oxidot does not keep).

use super::*;

const LOAD_JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("load_journal");
/// DOT access-token pk → the key the load stored it under.
const LOAD_ACCESS_BY_PK: TableDefinition<u64, [u8; 32]> = TableDefinition::new("load_access_by_pk");
/// DOT access-token pk → a refresh token that named it before it was loaded.
const LOAD_REFRESH_WAITING: TableDefinition<u64, [u8; 32]> =
    TableDefinition::new("load_refresh_waiting");

/// A record as it was before a load wrote it (`None`: there was none).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub enum Prior {
    User(u64, Option<User>),
    Group(u64, Option<Group>),
    Application(u64, Option<Application>),
    Permission(u64, Option<PermissionRecord>),
    ContentType(u64, Option<ContentType>),
    AccessToken([u8; 32], Option<AccessToken>),
    RefreshToken([u8; 32], Option<RefreshToken>),
    Grant([u8; 32], Option<Grant>),
    IdToken([u8; 32], Option<IdToken>),
    /// The journal's first row: a load began (nothing to put back).
    LoadStarted,
}

impl WriteTx<'_> {
    /// Whether a load is in progress (or was interrupted).
    pub(super) fn load_in_progress(&mut self) -> Result<bool, StoreError> {
        self.close_journal();
        Ok(!self.txn.open_table(LOAD_JOURNAL)?.is_empty()?)
    }

    /// Appends what a record was before this load writes it. The journal stays open for the
    /// transaction, with its next sequence number (a chunk appends thousands of rows).
    pub(super) fn journal(&mut self, prior: &Prior) -> Result<(), StoreError> {
        if self.open.journal.is_none() {
            let table = self.txn.open_table(LOAD_JOURNAL)?;
            let next = table.last()?.map_or(0, |(seq, _)| seq.value() + 1);
            self.open.journal = Some((table, next));
        }
        let Some((journal, next)) = self.open.journal.as_mut() else {
            return Err(StoreError::Storage(
                "the load journal is not open".to_owned(),
            ));
        };
        journal.insert(*next, encode(prior)?.as_slice())?;
        *next += 1;
        Ok(())
    }

    /// Closes the journal table this transaction holds open (before another use of it).
    fn close_journal(&mut self) {
        self.open.journal = None;
    }

    /// Journals the current state of a record, then lets `write` change it.
    pub(super) fn journaled_put_user(&mut self, user: &User) -> Result<(), StoreError> {
        let prior = self.user(user.id)?;
        self.journal(&Prior::User(user.id, prior))?;
        self.put_user(user)
    }

    pub(super) fn journaled_put_group(&mut self, group: &Group) -> Result<(), StoreError> {
        let prior = self.group(group.id)?;
        self.journal(&Prior::Group(group.id, prior))?;
        self.put_group(group)
    }

    pub(super) fn journaled_put_application(
        &mut self,
        application: &Application,
    ) -> Result<(), StoreError> {
        let prior = self.application(application.id)?;
        self.journal(&Prior::Application(application.id, prior))?;
        self.put_application(application)
    }

    pub(super) fn journaled_put_permission(
        &mut self,
        pk: u64,
        record: &PermissionRecord,
    ) -> Result<(), StoreError> {
        let prior = self.record(PERMISSIONS, pk)?;
        self.journal(&Prior::Permission(pk, prior))?;
        self.put_permission(pk, record)
    }

    pub(super) fn journaled_put_content_type(
        &mut self,
        pk: u64,
        record: &ContentType,
    ) -> Result<(), StoreError> {
        let prior = self.content_type(pk)?;
        self.journal(&Prior::ContentType(pk, prior))?;
        self.put_content_type(pk, record)
    }

    /// Replaces (or adds) an access token, indexes included.
    pub(super) fn journaled_put_access_token(
        &mut self,
        key: &SecretKey,
        token: &AccessToken,
    ) -> Result<(), StoreError> {
        let prior = self.access_token(key)?;
        let existed = prior.is_some();
        self.journal(&Prior::AccessToken(key.0, prior))?;
        if existed {
            self.delete_access_token(key)?;
        }
        self.put_access_token(key, token)
    }

    pub(super) fn journaled_put_refresh_token(
        &mut self,
        key: &SecretKey,
        token: &RefreshToken,
    ) -> Result<(), StoreError> {
        let prior = self.refresh_token(key)?;
        let existed = prior.is_some();
        self.journal(&Prior::RefreshToken(key.0, prior))?;
        if existed {
            self.delete_refresh_token(key)?;
        }
        self.put_refresh_token(key, token)
    }

    pub(super) fn journaled_put_grant(
        &mut self,
        key: &SecretKey,
        grant: &Grant,
    ) -> Result<(), StoreError> {
        let prior = self.grant(key)?;
        let existed = prior.is_some();
        self.journal(&Prior::Grant(key.0, prior))?;
        if existed {
            self.delete_grant(key)?;
        }
        self.put_grant(key, grant)
    }

    pub(super) fn journaled_put_id_token(
        &mut self,
        key: &SecretKey,
        token: &IdToken,
    ) -> Result<(), StoreError> {
        let prior = self.record(ID_TOKENS, key.0)?;
        let existed = prior.is_some();
        self.journal(&Prior::IdToken(key.0, prior))?;
        if existed {
            self.delete_id_token(key)?;
        }
        self.put_id_token(key, token)
    }

    /// Remembers where a DOT access token (by its pk) went; the refresh token that waited
    /// for it, if one did.
    pub(super) fn stage_access_pk(
        &mut self,
        pk: u64,
        key: &SecretKey,
    ) -> Result<Option<SecretKey>, StoreError> {
        self.txn.open_table(LOAD_ACCESS_BY_PK)?.insert(pk, key.0)?;
        let waiting = self
            .txn
            .open_table(LOAD_REFRESH_WAITING)?
            .remove(pk)?
            .map(|key| SecretKey(key.value()));
        Ok(waiting)
    }

    /// The key of the access token a DOT pk named earlier in this load; when it has not come
    /// yet, `refresh` is filed to be paired when it does.
    pub(super) fn staged_access_key(
        &mut self,
        pk: u64,
        refresh: &SecretKey,
    ) -> Result<Option<SecretKey>, StoreError> {
        let found = self
            .txn
            .open_table(LOAD_ACCESS_BY_PK)?
            .get(pk)?
            .map(|key| SecretKey(key.value()));
        if found.is_none() {
            self.txn
                .open_table(LOAD_REFRESH_WAITING)?
                .insert(pk, refresh.0)?;
        }
        Ok(found)
    }

    /// Puts back up to `limit` journaled records, newest first; whether some remain.
    pub(super) fn roll_back_load(&mut self, limit: usize) -> Result<bool, StoreError> {
        self.close_journal();
        for _ in 0..limit {
            let last = {
                let mut journal = self.txn.open_table(LOAD_JOURNAL)?;
                let popped = journal.pop_last()?;
                popped
                    .map(|(_, value)| decode::<Prior>(value.value()))
                    .transpose()?
            };
            let Some(prior) = last else {
                self.clear_staging()?;
                return Ok(false);
            };
            self.restore(prior)?;
        }
        Ok(!self.txn.open_table(LOAD_JOURNAL)?.is_empty()?)
    }

    /// Ends a load that succeeded: the journal and staging tables are emptied.
    pub(super) fn finish_load(&mut self) -> Result<(), StoreError> {
        self.close_journal();
        self.txn.delete_table(LOAD_JOURNAL)?;
        self.txn.open_table(LOAD_JOURNAL)?;
        self.clear_staging()
    }

    fn clear_staging(&mut self) -> Result<(), StoreError> {
        self.txn.delete_table(LOAD_ACCESS_BY_PK)?;
        self.txn.delete_table(LOAD_REFRESH_WAITING)?;
        self.txn.open_table(LOAD_ACCESS_BY_PK)?;
        self.txn.open_table(LOAD_REFRESH_WAITING)?;
        Ok(())
    }

    fn restore(&mut self, prior: Prior) -> Result<(), StoreError> {
        match prior {
            Prior::LoadStarted => {}
            Prior::User(id, previous) => match previous {
                Some(user) => self.put_user(&user)?,
                None => self.delete_user(id)?,
            },
            Prior::Group(id, previous) => match previous {
                Some(group) => self.put_group(&group)?,
                None => self.delete_group(id)?,
            },
            Prior::Application(id, previous) => match previous {
                Some(application) => self.put_application(&application)?,
                None => {
                    self.delete_application(id)?;
                }
            },
            Prior::Permission(pk, previous) => match previous {
                Some(record) => self.put_permission(pk, &record)?,
                None => {
                    self.txn.open_table(PERMISSIONS)?.remove(pk)?;
                }
            },
            Prior::ContentType(pk, previous) => match previous {
                Some(record) => self.put_content_type(pk, &record)?,
                None => {
                    self.txn.open_table(CONTENT_TYPES)?.remove(pk)?;
                }
            },
            Prior::AccessToken(key, previous) => {
                let key = SecretKey(key);
                self.delete_access_token(&key)?;
                if let Some(token) = previous {
                    self.put_access_token(&key, &token)?;
                }
            }
            Prior::RefreshToken(key, previous) => {
                let key = SecretKey(key);
                self.delete_refresh_token(&key)?;
                if let Some(token) = previous {
                    self.put_refresh_token(&key, &token)?;
                }
            }
            Prior::Grant(key, previous) => {
                let key = SecretKey(key);
                self.delete_grant(&key)?;
                if let Some(grant) = previous {
                    self.put_grant(&key, &grant)?;
                }
            }
            Prior::IdToken(key, previous) => {
                let key = SecretKey(key);
                self.delete_id_token(&key)?;
                if let Some(token) = previous {
                    self.put_id_token(&key, &token)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the user's record and name (nothing else: see `delete_user_with_all_theirs`).
    pub(super) fn delete_user(&mut self, id: u64) -> Result<(), StoreError> {
        let removed: Option<User> = {
            let mut users = self.txn.open_table(USERS)?;
            let removed = users.remove(id)?;
            removed.map(|value| decode(value.value())).transpose()?
        };
        if let Some(user) = removed {
            self.txn
                .open_table(USERNAMES)?
                .remove(user.username.as_str())?;
        }
        Ok(())
    }

    /// Removes the group's record and name (nothing else: see `delete_group_everywhere`).
    pub(super) fn delete_group(&mut self, id: u64) -> Result<(), StoreError> {
        let removed: Option<Group> = {
            let mut groups = self.txn.open_table(GROUPS)?;
            let removed = groups.remove(id)?;
            removed.map(|value| decode(value.value())).transpose()?
        };
        if let Some(group) = removed {
            self.txn
                .open_table(GROUP_NAMES)?
                .remove(group.name.as_str())?;
        }
        Ok(())
    }
}

/// Creates the tables (schema open).
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(LOAD_JOURNAL)?;
    txn.open_table(LOAD_ACCESS_BY_PK)?;
    txn.open_table(LOAD_REFRESH_WAITING)?;
    Ok(())
}

/// Rolls back a load a crash interrupted (its journal is still there); whether there was one.
/// Runs at open, before the writer starts, so it uses transactions of its own.
pub(super) fn recover(db: &Database) -> Result<bool, StoreError> {
    const UNDO_PER_TRANSACTION: usize = 10_000;
    let mut found = false;
    loop {
        let txn = super::writer::begin(db, true)?;
        let more = {
            let mut tx = WriteTx::new(&txn);
            if !found && !tx.load_in_progress()? {
                drop(tx);
                txn.abort()?;
                return Ok(false);
            }
            found = true;
            tx.roll_back_load(UNDO_PER_TRANSACTION)?
        };
        txn.commit()?;
        if !more {
            return Ok(true);
        }
    }
}

/// Copies the journal and staging tables into a backup.
pub(super) fn copy_tables(
    copier: &mut super::backup::Copier<'_>,
    snapshot: &redb::ReadTransaction,
) -> Result<(), StoreError> {
    copier.copy_table(snapshot, LOAD_JOURNAL)?;
    copier.copy_table(snapshot, LOAD_ACCESS_BY_PK)?;
    copier.copy_table(snapshot, LOAD_REFRESH_WAITING)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, name: &str) -> User {
        User::sample(id, name)
    }

    fn token(user: u64, scope: &str) -> AccessToken {
        AccessToken {
            user: Some(user),
            application: 1,
            scope: scope.to_owned(),
            expires: Timestamp(1_000_000),
            created: Timestamp(0),
            refresh_token: None,
            family: None,
            tail: String::new(),
        }
    }

    /// Everything a load could have touched, as text.
    fn state(store: &Store) -> String {
        store
            .read(|tx| {
                Ok(format!(
                    "{:?} {:?} {:?} {:?} {:?}",
                    tx.users()?,
                    tx.user_by_username("renamed")?,
                    tx.access_token(&SecretKey([1; 32]))?,
                    tx.access_token(&SecretKey([2; 32]))?,
                    tx.token_keys_of_user(7)?,
                ))
            })
            .unwrap()
    }

    #[test]
    fn a_rolled_back_load_leaves_every_record_and_index_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("j.redb"), 1 << 20).unwrap();
        store
            .write_blocking(|tx| {
                tx.put_user(&user(7, "alice"))?;
                tx.put_access_token(&SecretKey([1; 32]), &token(7, "read"))
            })
            .unwrap();
        let before = state(&store);
        // A load replaces alice, replaces a token, adds one, across two transactions.
        store
            .write_blocking(|tx| {
                tx.journaled_put_user(&user(7, "renamed"))?;
                tx.journaled_put_access_token(&SecretKey([1; 32]), &token(7, "write"))
            })
            .unwrap();
        store
            .write_blocking(|tx| {
                tx.journaled_put_access_token(&SecretKey([2; 32]), &token(7, "new"))?;
                tx.load_in_progress()
            })
            .map(|in_progress| assert!(in_progress))
            .unwrap();
        assert_ne!(state(&store), before);
        // Undone a row at a time, newest first.
        while store.write_blocking(|tx| tx.roll_back_load(1)).unwrap() {}
        assert_eq!(state(&store), before);
        assert!(!store.write_blocking(|tx| tx.load_in_progress()).unwrap());
    }

    #[test]
    fn a_load_interrupted_by_a_crash_is_rolled_back_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let before = {
            let (store, _) = Store::open(&path, 1 << 20).unwrap();
            store
                .write_blocking(|tx| tx.put_user(&user(7, "alice")))
                .unwrap();
            let before = state(&store);
            store
                .write_blocking(|tx| {
                    tx.journaled_put_access_token(&SecretKey([2; 32]), &token(7, "new"))
                })
                .unwrap();
            store.close().unwrap();
            before
        };
        let (store, report) = Store::open(&path, 1 << 20).unwrap();
        assert!(report.interrupted_load_rolled_back);
        assert_eq!(state(&store), before);
    }
}
