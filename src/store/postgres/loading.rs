//! A load into PostgreSQL: one transaction from `begin_load` to `finish`, on one connection
//! taken out of the pool for it. Other instances keep serving what was there before and see
//! the whole load when it commits; a load that fails, or whose process dies, leaves nothing.
//!
//! The transaction holds the `loaddata` row of `oxidot_locks` (`FOR UPDATE NOWAIT`), so a
//! second load, from any instance, is told one is in progress rather than interleaving with
//! it. Ids given to records are counted against the id marks only at the end, so the marks'
//! rows (which every new user, group or application locks) are held for an instant, not for
//! the whole load — unless the load itself gives new ids.
//!
//! Token records, and where DOT's access-token pks went, are sent in batches (pipelined: one
//! round trip for many statements) before a read that needs them and at the end of each
//! step; everything else is written at once, so a name held by another record is reported
//! against the record that claims it. A dump in DOT's order (access tokens before their
//! refresh tokens) thus costs one round trip per refresh token and none per access token.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::accounts::{next_id, raise_id_mark};
use super::transfer::{id_of_record, put_record};
use super::{PgStore, begin, pg_id, record, rolled_back};
use crate::store::{
    AccessToken, Application, ContentType, Group, IdKind, Load, LoadError, LoadStep, LoadTx,
    Loading, Record, RefreshToken, SecretKey, StoreError, User,
};

const LOCK_LOAD: &str = "SELECT name FROM oxidot_locks WHERE name = 'loaddata' FOR UPDATE NOWAIT";
const STAGE_ACCESS_PK: &str = "INSERT INTO oxidot_load_access_by_pk (pk, key) VALUES ($1, $2)
    ON CONFLICT (pk) DO UPDATE SET key = $2";
const TAKE_WAITING_REFRESH: &str =
    "DELETE FROM oxidot_load_refresh_waiting WHERE pk = $1 RETURNING key";
/// The access token a pk was staged for, with its record (NULL when it is not stored).
const STAGED_ACCESS_TOKEN: &str = "SELECT s.key, t.record FROM oxidot_load_access_by_pk s
    LEFT JOIN oxidot_access_tokens t ON t.key = s.key WHERE s.pk = $1";
const WAIT_FOR_ACCESS: &str = "INSERT INTO oxidot_load_refresh_waiting (pk, key) VALUES ($1, $2)
    ON CONFLICT (pk) DO UPDATE SET key = $2";
/// What a finished load leaves: no staging rows (they were only this transaction's).
const CLEAR_STAGING: &str =
    "DELETE FROM oxidot_load_access_by_pk; DELETE FROM oxidot_load_refresh_waiting";

struct PgLoad {
    /// `None` once finished or abandoned.
    client: Option<deadpool_postgres::Client>,
    runtime: Handle,
    /// The highest id of each kind the load stored, raised into the marks at the end.
    marks: HashMap<&'static str, u64>,
    /// Refresh tokens filed to wait for their access token and not yet taken: while none
    /// waits, staging an access token's pk asks the database nothing.
    waiting: u64,
}

impl Loading for PgStore {
    fn begin_load(&self) -> Result<Box<dyn Load>, LoadError> {
        let runtime = Handle::try_current().map_err(|_| {
            StoreError::Storage("a load runs on a thread of the async runtime".to_owned())
        })?;
        let client = runtime.block_on(self.client())?;
        runtime.block_on(begin_load(&client))?;
        Ok(Box::new(PgLoad {
            client: Some(client),
            runtime,
            marks: HashMap::new(),
            waiting: 0,
        }))
    }
}

/// BEGIN and the load's lock, or `Busy` when another transaction holds it.
async fn begin_load(client: &deadpool_postgres::Client) -> Result<(), LoadError> {
    begin(client).await?;
    match client.query_opt(LOCK_LOAD, &[]).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(rolled_back(
            client,
            StoreError::Corrupt("the loaddata row of oxidot_locks is missing".to_owned()),
        )
        .await
        .into()),
        Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            rolled_back(client, StoreError::from(error)).await;
            Err(LoadError::Busy)
        }
        Err(error) => Err(rolled_back(client, error.into()).await.into()),
    }
}

impl PgLoad {
    fn client(&self) -> Result<&deadpool_postgres::Client, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Storage("the load has ended".to_owned()))
    }
}

impl Load for PgLoad {
    fn step(&mut self, mut step: LoadStep) -> Result<(), LoadError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| StoreError::Storage("the load has ended".to_owned()))?;
        let mut tx = PgLoadTx {
            client,
            runtime: &self.runtime,
            pending: Vec::new(),
            pending_at: HashMap::new(),
            marks: &mut self.marks,
            waiting: &mut self.waiting,
        };
        step(&mut tx)?;
        tx.flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        let marks = std::mem::take(&mut self.marks);
        let client = self.client()?;
        let finished = self.runtime.block_on(async {
            let ended = async {
                for (kind, id) in marks {
                    raise_id_mark(client, kind, id).await?;
                }
                client.batch_execute(CLEAR_STAGING).await?;
                client.batch_execute("COMMIT").await?;
                Ok(())
            };
            match ended.await {
                Ok(()) => Ok(()),
                Err(error) => Err(rolled_back(client, error).await),
            }
        });
        // Ended either way: the connection goes back to the pool outside any transaction.
        self.client.take();
        finished
    }

    fn abandon(mut self: Box<Self>) -> Result<(), StoreError> {
        let client = self.client()?;
        let rolled = self.runtime.block_on(client.batch_execute("ROLLBACK"));
        if rolled.is_ok() {
            self.client.take();
        }
        // Otherwise `drop` closes the connection, which ends the transaction as well.
        rolled.map_err(StoreError::from)
    }
}

impl Drop for PgLoad {
    fn drop(&mut self) {
        // Still in its transaction: the connection is closed rather than pooled, and the
        // server rolls the transaction back.
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// A write a step has not sent yet. Not boxed: a step holds a few thousand at most, and most
/// are `Put`s.
#[allow(clippy::large_enum_variant)]
enum Pending {
    Put(Record),
    /// Where DOT's access-token pk went.
    Stage {
        pk: i64,
        key: [u8; 32],
    },
}

/// What a pending write is the latest of: a second write of one replaces the first (the
/// statements of one batch may run in any order).
#[derive(PartialEq, Eq, Hash)]
enum PendingKey {
    Token([u8; 32]),
    Stage(i64),
}

/// Sends one pending write.
async fn send(client: &deadpool_postgres::Client, pending: &Pending) -> Result<(), StoreError> {
    match pending {
        Pending::Put(record) => put_record(client, record).await,
        Pending::Stage { pk, key } => {
            let statement = client.prepare_cached(STAGE_ACCESS_PK).await?;
            client.execute(&statement, &[pk, &key.as_slice()]).await?;
            Ok(())
        }
    }
}

/// One step's reads and writes on the load's connection.
struct PgLoadTx<'a> {
    client: &'a deadpool_postgres::Client,
    runtime: &'a Handle,
    pending: Vec<Pending>,
    pending_at: HashMap<PendingKey, usize>,
    marks: &'a mut HashMap<&'static str, u64>,
    waiting: &'a mut u64,
}

impl PgLoadTx<'_> {
    /// Sends the pending writes, all at once.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_at.clear();
        let client = self.client;
        self.runtime
            .block_on(futures_util::future::try_join_all(
                pending.iter().map(|write| send(client, write)),
            ))
            .map(drop)
    }

    /// Flushes first when `key`'s write is pending, so a read sees what the load wrote.
    fn flush_if_pending(&mut self, key: PendingKey) -> Result<(), StoreError> {
        if self.pending_at.contains_key(&key) {
            self.flush()?;
        }
        Ok(())
    }

    fn hold(&mut self, key: PendingKey, write: Pending) {
        match self.pending_at.get(&key) {
            Some(&at) => self.pending[at] = write,
            None => {
                self.pending_at.insert(key, self.pending.len());
                self.pending.push(write);
            }
        }
    }

    /// The record of the one row `sql` finds, if any.
    fn one<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await?;
            match self.client.query_opt(&statement, params).await? {
                Some(row) => record(&row, 0),
                None => Ok(None),
            }
        })
    }

    /// Runs one statement that returns nothing.
    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await?;
            self.client.execute(&statement, params).await?;
            Ok(())
        })
    }

    /// The row one statement finds, if any.
    fn row(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await?;
            Ok(self.client.query_opt(&statement, params).await?)
        })
    }
}

/// The staged token key in a row's first column.
fn staged_key(row: &tokio_postgres::Row) -> Result<SecretKey, StoreError> {
    let bytes: Vec<u8> = row
        .try_get(0)
        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
    let key = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt("a staged token key is not 32 bytes".to_owned()))?;
    Ok(SecretKey(key))
}

/// The key of a token record (the batched kinds), if it is one.
fn token_key(record: &Record) -> Option<[u8; 32]> {
    match record {
        Record::Access(key, _)
        | Record::Refresh(key, _)
        | Record::Id(key, _)
        | Record::Grant(key, _) => Some(key.0),
        _ => None,
    }
}

impl LoadTx for PgLoadTx<'_> {
    fn user(&mut self, id: u64) -> Result<Option<User>, StoreError> {
        self.one(
            "SELECT record FROM oxidot_users WHERE id = $1",
            &[&pg_id(id)?],
        )
    }

    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        self.one(
            "SELECT record FROM oxidot_users WHERE username = $1",
            &[&username],
        )
    }

    fn group(&mut self, id: u64) -> Result<Option<Group>, StoreError> {
        self.one(
            "SELECT record FROM oxidot_groups WHERE id = $1",
            &[&pg_id(id)?],
        )
    }

    fn group_id_by_name(&mut self, name: &str) -> Result<Option<u64>, StoreError> {
        let group: Option<Group> =
            self.one("SELECT record FROM oxidot_groups WHERE name = $1", &[&name])?;
        Ok(group.map(|group| group.id))
    }

    fn application(&mut self, id: u64) -> Result<Option<Application>, StoreError> {
        self.one(
            "SELECT record FROM oxidot_applications WHERE id = $1",
            &[&pg_id(id)?],
        )
    }

    fn content_type(&mut self, pk: u64) -> Result<Option<ContentType>, StoreError> {
        self.one(
            "SELECT record FROM oxidot_content_types WHERE pk = $1",
            &[&pg_id(pk)?],
        )
    }

    fn access_token(&mut self, key: &SecretKey) -> Result<Option<AccessToken>, StoreError> {
        self.flush_if_pending(PendingKey::Token(key.0))?;
        self.one(
            "SELECT record FROM oxidot_access_tokens WHERE key = $1",
            &[&key.0.as_slice()],
        )
    }

    fn refresh_token(&mut self, key: &SecretKey) -> Result<Option<RefreshToken>, StoreError> {
        self.flush_if_pending(PendingKey::Token(key.0))?;
        self.one(
            "SELECT record FROM oxidot_refresh_tokens WHERE key = $1",
            &[&key.0.as_slice()],
        )
    }

    fn next_id(&mut self, kind: IdKind) -> Result<u64, StoreError> {
        let (kind, table) = match kind {
            IdKind::User => ("user", "oxidot_users"),
            IdKind::Group => ("group", "oxidot_groups"),
            IdKind::Application => ("application", "oxidot_applications"),
        };
        self.runtime.block_on(next_id(self.client, kind, table))
    }

    fn put(&mut self, record: Record) -> Result<(), StoreError> {
        if let Some((kind, id)) = id_of_record(&record) {
            let mark = self.marks.entry(kind).or_default();
            *mark = (*mark).max(id);
        }
        match token_key(&record) {
            Some(key) => {
                self.hold(PendingKey::Token(key), Pending::Put(record));
                Ok(())
            }
            None => self.runtime.block_on(put_record(self.client, &record)),
        }
    }

    fn stage_access_pk(
        &mut self,
        pk: u64,
        key: &SecretKey,
    ) -> Result<Option<SecretKey>, StoreError> {
        let pk = pg_id(pk)?;
        self.hold(PendingKey::Stage(pk), Pending::Stage { pk, key: key.0 });
        if *self.waiting == 0 {
            return Ok(None);
        }
        let taken = self
            .row(TAKE_WAITING_REFRESH, &[&pk])?
            .map(|row| staged_key(&row))
            .transpose()?;
        if taken.is_some() {
            *self.waiting -= 1;
        }
        Ok(taken)
    }

    fn staged_access_token(
        &mut self,
        pk: u64,
        refresh: &SecretKey,
    ) -> Result<Option<(SecretKey, AccessToken)>, StoreError> {
        let pk = pg_id(pk)?;
        self.flush_if_pending(PendingKey::Stage(pk))?;
        let Some(row) = self.row(STAGED_ACCESS_TOKEN, &[&pk])? else {
            self.execute(WAIT_FOR_ACCESS, &[&pk, &refresh.0.as_slice()])?;
            *self.waiting += 1;
            return Ok(None);
        };
        let key = staged_key(&row)?;
        if self.pending_at.contains_key(&PendingKey::Token(key.0)) {
            // A newer version of the access token is pending: read that one.
            return Ok(self.access_token(&key)?.map(|token| (key, token)));
        }
        Ok(record::<AccessToken>(&row, 1)?.map(|token| (key, token)))
    }
}
