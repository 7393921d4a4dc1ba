//! Failed attempts in SQL, shared by every instance (see `store::failures`). A check reads the
//! newest failures of its keys in one round trip; a failure inserts its rows and drops the
//! scope's expired ones in another.

use async_trait::async_trait;

use super::PgStore;
use crate::store::{Application, FailureKey, FailureLog, StoreError, Timestamp};

/// What a failure query reads besides the failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AlsoRead {
    Nothing,
    /// The application whose client id is the parameter after the keys' (`n` = -1, its
    /// record in the third column): a client authentication's two reads in one statement.
    Application,
    /// That, and the token whose key is the next parameter (`n` = -2 an access token, -3 a
    /// refresh token; the token's, its application's and its user's records in the third,
    /// fourth and fifth columns): introspection's three reads in one statement.
    ApplicationAndToken,
}

/// The newest failures of each of `keys` keys after a time, in one statement: for key `n`,
/// `(SELECT n, at … WHERE key = $(3+2n) … LIMIT $(4+2n))`, joined by `UNION ALL` (`$1` the
/// scope, `$2` the time), with what `also` names. Its text is the same for every check with as
/// many keys, so it is prepared once per connection. Every row has five columns: `n`, `at`
/// and three records.
pub(super) fn recent_failures_sql(keys: usize, also: AlsoRead) -> String {
    let mut branches: Vec<String> = (0..keys)
        .map(|n| {
            format!(
                "(SELECT {n}::INT AS n, at, NULL::JSONB AS record, NULL::JSONB AS second, \
                 NULL::JSONB AS third FROM oxidot_failures \
                 WHERE scope = $1 AND key = ${} AND at > $2 ORDER BY at DESC LIMIT ${})",
                3 + 2 * n,
                4 + 2 * n
            )
        })
        .collect();
    if also != AlsoRead::Nothing {
        branches.push(format!(
            "(SELECT -1::INT, NULL::BIGINT, record, NULL::JSONB, NULL::JSONB \
             FROM oxidot_applications WHERE client_id = ${})",
            3 + 2 * keys
        ));
    }
    if also == AlsoRead::ApplicationAndToken {
        let key = 4 + 2 * keys;
        for (n, table) in [(-2, "oxidot_access_tokens"), (-3, "oxidot_refresh_tokens")] {
            branches.push(format!(
                "(SELECT {n}::INT, NULL::BIGINT, t.record, a.record, u.record FROM {table} t \
                 LEFT JOIN oxidot_applications a ON a.id = t.application \
                 LEFT JOIN oxidot_users u ON u.id = t.user_id WHERE t.key = ${key})"
            ));
        }
    }
    branches.join(" UNION ALL ")
}

/// The failure query's rows: each key's times, oldest first, and the application's record
/// when a row carries one.
pub(super) fn failures_from_rows(
    rows: &[tokio_postgres::Row],
    keys: usize,
) -> Result<(Vec<Vec<Timestamp>>, Option<Application>), StoreError> {
    let mut recent = vec![Vec::new(); keys];
    let mut application = None;
    for row in rows {
        let n: i32 = row.get(0);
        if n < 0 {
            // The application's row; a token's rows are read by the caller.
            if n == -1 {
                application = super::record(row, 2)?;
            }
            continue;
        }
        let at: i64 = row.get(1);
        if let Some(times) = usize::try_from(n).ok().and_then(|n| recent.get_mut(n)) {
            times.push(Timestamp(at));
        }
    }
    for times in &mut recent {
        times.sort_unstable();
    }
    Ok((recent, application))
}

fn keep(key: &FailureKey) -> i64 {
    i64::try_from(key.keep).unwrap_or(i64::MAX)
}

#[async_trait]
impl FailureLog for PgStore {
    async fn recent_failures(
        &self,
        scope: &str,
        keys: &[FailureKey],
        since: Timestamp,
    ) -> Result<Vec<Vec<Timestamp>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = recent_failures_sql(keys.len(), AlsoRead::Nothing);
        let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
        let keeps: Vec<i64> = keys.iter().map(keep).collect();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&scope, &since.0];
        for (name, keep) in names.iter().zip(&keeps) {
            params.push(name);
            params.push(keep);
        }
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &params).await?;
        Ok(failures_from_rows(&rows, keys.len())?.0)
    }

    async fn record_failure(
        &self,
        scope: &str,
        keys: &[FailureKey],
        at: Timestamp,
        expired_before: Timestamp,
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|error| StoreError::Storage(error.to_string()))?;
        let nonce = i64::from_le_bytes(nonce);
        let client = self.client().await?;
        // Expired failures go first, in the same statement (one round trip).
        let statement = client
            .prepare_cached(
                "WITH expired AS (
                     DELETE FROM oxidot_failures WHERE scope = $1 AND at <= $4
                 )
                 INSERT INTO oxidot_failures (scope, key, at, nonce)
                 SELECT $1, name, $3, $5 FROM UNNEST($2::TEXT[]) AS name
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        client
            .execute(
                &statement,
                &[&scope, &names, &at.0, &expired_before.0, &nonce],
            )
            .await?;
        Ok(())
    }

    async fn forget_failures(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM oxidot_failures WHERE scope = $1 AND key = $2")
            .await?;
        client.execute(&statement, &[&scope, &key]).await?;
        Ok(())
    }
}
