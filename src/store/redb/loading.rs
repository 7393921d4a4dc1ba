//! A load into the redb file: each step one (deferred) write transaction, every write
//! journaled (`load_journal`), the journal emptied when the load finishes and walked back when
//! it is abandoned or dropped — or when the file opens after a crash in the middle of one.

use super::{Prior, Store, WriteTx};
use crate::store::{
    AccessToken, Application, ContentType, Group, IdKind, Load, LoadError, LoadStep, LoadTx,
    Loading, Record, RefreshToken, SecretKey, StoreError, User,
};

/// Journal rows undone per transaction when a load rolls back.
const UNDO_PER_CHUNK: usize = 10_000;

struct FileLoad {
    store: Store,
    /// Finished or abandoned: nothing left to undo when it is dropped.
    ended: bool,
}

impl Loading for Store {
    fn begin_load(&self) -> Result<Box<dyn Load>, LoadError> {
        // The journal's first row says a load runs: a second load (or one a crash left behind)
        // is found by the same check in the same transaction.
        self.write_or_refuse_blocking::<LoadError, _, _>(|tx| {
            if tx.load_in_progress()? {
                return Err(LoadError::Busy);
            }
            tx.journal(&Prior::LoadStarted)?;
            Ok(())
        })?;
        Ok(Box::new(FileLoad {
            store: self.clone(),
            ended: false,
        }))
    }
}

impl Load for FileLoad {
    fn step(&mut self, mut step: LoadStep) -> Result<(), LoadError> {
        // Deferred: the steps become durable with `finish`; a crash before it rolls them back.
        self.store
            .write_deferred_blocking::<LoadError, _, _>(move |tx| step(&mut Journaled(tx)))
    }

    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        self.store.write_blocking(|tx| tx.finish_load())?;
        self.ended = true;
        Ok(())
    }

    fn abandon(mut self: Box<Self>) -> Result<(), StoreError> {
        roll_back(&self.store)?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for FileLoad {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Dropped in the middle (its thread panicked, or it failed to finish): undone now, on
        // a thread of its own (a drop may happen on the async executor, where waiting for the
        // writer is not allowed), rather than when the file is next opened — so later loads
        // in this process are not refused meanwhile.
        let store = self.store.clone();
        std::thread::spawn(move || {
            if let Err(error) = roll_back(&store) {
                tracing::error!(
                    "an unfinished loaddata could not be rolled back now ({error}); it will be \
                     when the database is next opened"
                );
            }
        });
    }
}

/// Puts back everything the load wrote, a chunk of the journal per transaction.
fn roll_back(store: &Store) -> Result<(), StoreError> {
    while store.write_blocking(|tx| tx.roll_back_load(UNDO_PER_CHUNK))? {}
    Ok(())
}

/// A step's transaction, every write journaled first.
struct Journaled<'a, 'tx>(&'a mut WriteTx<'tx>);

impl LoadTx for Journaled<'_, '_> {
    fn user(&mut self, id: u64) -> Result<Option<User>, StoreError> {
        self.0.user(id)
    }

    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        self.0.user_by_username(username)
    }

    fn group(&mut self, id: u64) -> Result<Option<Group>, StoreError> {
        self.0.group(id)
    }

    fn group_id_by_name(&mut self, name: &str) -> Result<Option<u64>, StoreError> {
        self.0.group_id_by_name(name)
    }

    fn application(&mut self, id: u64) -> Result<Option<Application>, StoreError> {
        self.0.application(id)
    }

    fn content_type(&mut self, pk: u64) -> Result<Option<ContentType>, StoreError> {
        self.0.content_type(pk)
    }

    fn access_token(&mut self, key: &SecretKey) -> Result<Option<AccessToken>, StoreError> {
        self.0.access_token(key)
    }

    fn refresh_token(&mut self, key: &SecretKey) -> Result<Option<RefreshToken>, StoreError> {
        self.0.refresh_token(key)
    }

    fn next_id(&mut self, kind: IdKind) -> Result<u64, StoreError> {
        match kind {
            IdKind::User => self.0.next_user_id(),
            IdKind::Group => self.0.next_group_id(),
            IdKind::Application => self.0.fresh_application_id(),
        }
    }

    fn put(&mut self, record: Record) -> Result<(), StoreError> {
        let tx = &mut *self.0;
        match record {
            Record::ContentType(pk, record) => tx.journaled_put_content_type(pk, &record),
            Record::Permission(pk, record) => tx.journaled_put_permission(pk, &record),
            Record::Group(group) => tx.journaled_put_group(&group),
            Record::User(user) => tx.journaled_put_user(&user),
            Record::Application(application) => tx.journaled_put_application(&application),
            Record::Access(key, token) => tx.journaled_put_access_token(&key, &token),
            Record::Refresh(key, token) => tx.journaled_put_refresh_token(&key, &token),
            Record::Id(key, token) => tx.journaled_put_id_token(&key, &token),
            Record::Grant(key, grant) => tx.journaled_put_grant(&key, &grant),
            Record::Session(..)
            | Record::Family(..)
            | Record::Consent { .. }
            | Record::Device(..)
            | Record::Task(..)
            | Record::Key(..) => Err(StoreError::Unsupported(
                "a load writes users, groups, permissions, applications and tokens only",
            )),
        }
    }

    fn stage_access_pk(
        &mut self,
        pk: u64,
        key: &SecretKey,
    ) -> Result<Option<SecretKey>, StoreError> {
        self.0.stage_access_pk(pk, key)
    }

    fn staged_access_token(
        &mut self,
        pk: u64,
        refresh: &SecretKey,
    ) -> Result<Option<(SecretKey, AccessToken)>, StoreError> {
        let Some(key) = self.0.staged_access_key(pk, refresh)? else {
            return Ok(None);
        };
        Ok(self.0.access_token(&key)?.map(|token| (key, token)))
    }
}
