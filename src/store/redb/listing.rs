//! The admin's token lists on redb: pages of a token table in one read snapshot, revocations
//! as one job of the writer.

use async_trait::async_trait;

use super::{ReadTx, Store};
use crate::store::{
    AccessToken, DeviceDecision, DeviceGrant, Grant, IdToken, ListedRecord, RefreshToken,
    SecretKey, StoreError, Timestamp, TokenListing, TokenQuery, TokenRows, TokenTable,
};

/// One page of `table` as `ListedRecord`s, kept by `query`.
fn page(
    tx: &ReadTx,
    table: TokenTable,
    query: &TokenQuery,
    before: Option<SecretKey>,
    limit: usize,
    scan_limit: usize,
) -> Result<TokenRows, StoreError> {
    fn typed<T: serde::de::DeserializeOwned + Clone>(
        tx: &ReadTx,
        table: TokenTable,
        query: &TokenQuery,
        before: Option<SecretKey>,
        (limit, scan_limit): (usize, usize),
        listed: fn(T) -> ListedRecord,
    ) -> Result<TokenRows, StoreError> {
        let page = tx.token_page::<T>(table, before, limit, scan_limit, |record| {
            query.keeps(&listed(record.clone()))
        })?;
        Ok(TokenRows {
            rows: page
                .rows
                .into_iter()
                .map(|(key, record)| (key, listed(record)))
                .collect(),
            next: page.next,
            scanned: page.scanned,
        })
    }
    let sizes = (limit, scan_limit);
    match table {
        TokenTable::AccessTokens => {
            typed::<AccessToken>(tx, table, query, before, sizes, ListedRecord::Access)
        }
        TokenTable::RefreshTokens => {
            typed::<RefreshToken>(tx, table, query, before, sizes, ListedRecord::Refresh)
        }
        TokenTable::Grants => typed::<Grant>(tx, table, query, before, sizes, ListedRecord::Grant),
        TokenTable::IdTokens => typed::<IdToken>(tx, table, query, before, sizes, ListedRecord::Id),
        TokenTable::DeviceGrants => {
            typed::<DeviceGrant>(tx, table, query, before, sizes, ListedRecord::Device)
        }
    }
}

#[async_trait]
impl TokenListing for Store {
    async fn token_rows(
        &self,
        table: TokenTable,
        query: &TokenQuery,
        before: Option<SecretKey>,
        limit: usize,
        scan_limit: usize,
    ) -> Result<TokenRows, StoreError> {
        self.read(|tx| page(tx, table, query, before, limit, scan_limit))
    }

    async fn token_row(
        &self,
        table: TokenTable,
        key: &SecretKey,
    ) -> Result<Option<ListedRecord>, StoreError> {
        self.read(|tx| {
            Ok(match table {
                TokenTable::AccessTokens => tx.token_record(table, key)?.map(ListedRecord::Access),
                TokenTable::RefreshTokens => {
                    tx.token_record(table, key)?.map(ListedRecord::Refresh)
                }
                TokenTable::Grants => tx.token_record(table, key)?.map(ListedRecord::Grant),
                TokenTable::IdTokens => tx.token_record(table, key)?.map(ListedRecord::Id),
                TokenTable::DeviceGrants => tx.token_record(table, key)?.map(ListedRecord::Device),
            })
        })
    }

    async fn revoke_rows(
        &self,
        table: TokenTable,
        keys: Vec<SecretKey>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let mut revoked = 0;
            for key in &keys {
                let live = match table {
                    TokenTable::AccessTokens => tx.revoke_access_token(key, now)?.is_some(),
                    TokenTable::RefreshTokens => match tx.refresh_token(key)? {
                        Some(token) if token.revoked.is_none() => {
                            tx.revoke_family(token.family, now)? > 0
                        }
                        _ => false,
                    },
                    TokenTable::Grants => match tx.grant(key)? {
                        Some(grant) if grant.used.is_none() => tx.delete_grant(key)?,
                        _ => false,
                    },
                    TokenTable::IdTokens => tx.delete_id_token(key)?,
                    TokenTable::DeviceGrants => match tx.device_grant(key)? {
                        Some(mut grant) if grant.decision != DeviceDecision::Denied => {
                            grant.decision = DeviceDecision::Denied;
                            tx.put_device_grant(key, &grant)?;
                            true
                        }
                        _ => false,
                    },
                };
                revoked += u64::from(live);
            }
            Ok(revoked)
        })
        .await
    }
}
