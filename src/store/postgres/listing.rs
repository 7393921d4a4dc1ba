//! The admin's token lists in SQL: pages by key (keys are time-ordered, so newest first is
//! `ORDER BY key DESC`) with the user and application filters pushed down; the state, which
//! depends on the time and the settings, is judged here (`TokenQuery::keeps`).

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::tokens::{put_refresh_token, revoke_family, secret_key};
use super::{PgStore, json, pg_id, record};
use crate::store::{
    AccessToken, DeviceDecision, DeviceGrant, Grant, IdToken, ListedRecord, RefreshToken,
    SecretKey, StoreError, Timestamp, TokenListing, TokenQuery, TokenRows, TokenTable,
};

/// Rows fetched per query while filling a page.
const CHUNK: usize = 500;

/// The table, and whether it has a `user_id` column (a device grant's user is in its record).
fn table_of(table: TokenTable) -> (&'static str, bool) {
    match table {
        TokenTable::AccessTokens => ("oxidot_access_tokens", true),
        TokenTable::RefreshTokens => ("oxidot_refresh_tokens", true),
        TokenTable::Grants => ("oxidot_grants", true),
        TokenTable::IdTokens => ("oxidot_id_tokens", true),
        TokenTable::DeviceGrants => ("oxidot_device_grants", false),
    }
}

fn listed(
    table: TokenTable,
    row: &tokio_postgres::Row,
) -> Result<Option<ListedRecord>, StoreError> {
    Ok(match table {
        TokenTable::AccessTokens => record::<AccessToken>(row, 1)?.map(ListedRecord::Access),
        TokenTable::RefreshTokens => record::<RefreshToken>(row, 1)?.map(ListedRecord::Refresh),
        TokenTable::Grants => record::<Grant>(row, 1)?.map(ListedRecord::Grant),
        TokenTable::IdTokens => record::<IdToken>(row, 1)?.map(ListedRecord::Id),
        TokenTable::DeviceGrants => record::<DeviceGrant>(row, 1)?.map(ListedRecord::Device),
    })
}

async fn revoke_row(
    client: &Transaction<'_>,
    table: TokenTable,
    key: &SecretKey,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let key_bytes = key.0.as_slice();
    match table {
        TokenTable::AccessTokens => {
            let Some(row) = client
                .query_opt(
                    "DELETE FROM oxidot_access_tokens WHERE key = $1 RETURNING key, record",
                    &[&key_bytes],
                )
                .await?
            else {
                return Ok(false);
            };
            // Its refresh token goes with it (the pair is one grant's).
            if let Some(ListedRecord::Access(access)) = listed(table, &row)?
                && let Some(paired) = access.refresh_token.map(SecretKey)
                && let Some(row) = client
                    .query_opt(
                        "SELECT key, record FROM oxidot_refresh_tokens WHERE key = $1 FOR UPDATE",
                        &[&paired.0.as_slice()],
                    )
                    .await?
                && let Some(mut refresh) = record::<RefreshToken>(&row, 1)?
                && refresh.revoked.is_none()
            {
                refresh.revoked = Some(now);
                refresh.access_token = None;
                put_refresh_token(client, &secret_key(row.get(0))?, &refresh).await?;
            }
            Ok(true)
        }
        TokenTable::RefreshTokens => {
            let row = client
                .query_opt(
                    "SELECT key, record FROM oxidot_refresh_tokens WHERE key = $1 FOR UPDATE",
                    &[&key_bytes],
                )
                .await?;
            match row
                .map(|row| record::<RefreshToken>(&row, 1))
                .transpose()?
                .flatten()
            {
                Some(token) if token.revoked.is_none() => {
                    Ok(revoke_family(client, token.family, now).await? > 0)
                }
                _ => Ok(false),
            }
        }
        TokenTable::Grants => {
            let row = client
                .query_opt(
                    "SELECT key, record FROM oxidot_grants WHERE key = $1 FOR UPDATE",
                    &[&key_bytes],
                )
                .await?;
            match row
                .map(|row| record::<Grant>(&row, 1))
                .transpose()?
                .flatten()
            {
                Some(grant) if grant.used.is_none() => {
                    client
                        .execute("DELETE FROM oxidot_grants WHERE key = $1", &[&key_bytes])
                        .await?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        TokenTable::IdTokens => Ok(client
            .execute("DELETE FROM oxidot_id_tokens WHERE key = $1", &[&key_bytes])
            .await?
            > 0),
        TokenTable::DeviceGrants => {
            let row = client
                .query_opt(
                    "SELECT key, record FROM oxidot_device_grants WHERE key = $1 FOR UPDATE",
                    &[&key_bytes],
                )
                .await?;
            match row
                .map(|row| record::<DeviceGrant>(&row, 1))
                .transpose()?
                .flatten()
            {
                Some(mut grant) if grant.decision != DeviceDecision::Denied => {
                    grant.decision = DeviceDecision::Denied;
                    client
                        .execute(
                            "UPDATE oxidot_device_grants SET record = $2 WHERE key = $1",
                            &[&key_bytes, &json(&grant)],
                        )
                        .await?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
    }
}

#[async_trait]
impl TokenListing for PgStore {
    async fn token_rows(
        &self,
        table: TokenTable,
        query: &TokenQuery,
        before: Option<SecretKey>,
        limit: usize,
        scan_limit: usize,
    ) -> Result<TokenRows, StoreError> {
        let (name, has_user) = table_of(table);
        // The table name is one of this module's constants, never input.
        // A device grant's user is in its record (`TokenQuery::keeps` judges it); `$3` is
        // still named so that every table's statement takes the same parameters.
        let user_filter = if has_user {
            "AND ($3::BIGINT IS NULL OR user_id = $3)"
        } else {
            "AND ($3::BIGINT IS NULL OR TRUE)"
        };
        let sql = format!(
            "SELECT key, record FROM {name}
             WHERE ($1::BYTEA IS NULL OR key < $1)
               AND ($2::BIGINT IS NULL OR application = $2) {user_filter}
             ORDER BY key DESC LIMIT $4"
        );
        let application = query.application.map(pg_id).transpose()?;
        let user = query.user.map(pg_id).transpose()?;
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await?;
        let mut page = TokenRows::default();
        let mut cursor = before;
        loop {
            let want = CHUNK.min(scan_limit.saturating_sub(page.scanned)).max(1);
            let rows = client
                .query(
                    &statement,
                    &[
                        &cursor.as_ref().map(|key| key.0.as_slice()),
                        &application,
                        &user,
                        &i64::try_from(want).unwrap_or(i64::MAX),
                    ],
                )
                .await?;
            let exhausted = rows.len() < want;
            for row in &rows {
                let key = secret_key(row.get(0))?;
                page.scanned += 1;
                if let Some(found) = listed(table, row)?
                    && query.keeps(&found)
                {
                    page.rows.push((key, found));
                }
                cursor = Some(key);
                if page.rows.len() == limit || page.scanned == scan_limit {
                    page.next = Some(key);
                    return Ok(page);
                }
            }
            if exhausted {
                return Ok(page);
            }
        }
    }

    async fn token_row(
        &self,
        table: TokenTable,
        key: &SecretKey,
    ) -> Result<Option<ListedRecord>, StoreError> {
        let (name, _) = table_of(table);
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT key, record FROM {name} WHERE key = $1"),
                &[&key.0.as_slice()],
            )
            .await?;
        match row {
            Some(row) => listed(table, &row),
            None => Ok(None),
        }
    }

    async fn revoke_rows(
        &self,
        table: TokenTable,
        keys: Vec<SecretKey>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let mut revoked = 0;
        for key in &keys {
            revoked += u64::from(revoke_row(&transaction, table, key, now).await?);
        }
        transaction.commit().await?;
        Ok(revoked)
    }
}
