//! Token administration: what the admin console's token lists ask of storage (pages, one
//! record, revoking selected rows). The rules of each row's state are `ListedRecord`'s.

use super::OAuth;
use crate::store::{
    ListedRecord, SecretKey, StoreError, TokenListing, TokenQuery, TokenRows, TokenTable,
};

impl OAuth {
    /// A query over every row, states judged now with today's settings.
    pub fn token_query(&self) -> TokenQuery {
        TokenQuery::at(self.now(), self.settings.oauth2_provider.clone())
    }

    /// Up to `limit` rows of `table` that `query` keeps, newest first, from before `before`,
    /// looking at no more than `scan_limit` rows.
    pub async fn token_rows(
        &self,
        table: TokenTable,
        query: &TokenQuery,
        before: Option<SecretKey>,
        limit: usize,
        scan_limit: usize,
    ) -> Result<TokenRows, StoreError> {
        self.store
            .token_rows(table, query, before, limit, scan_limit)
            .await
    }

    pub async fn token_row(
        &self,
        table: TokenTable,
        key: &SecretKey,
    ) -> Result<Option<ListedRecord>, StoreError> {
        self.store.token_row(table, key).await
    }

    /// Revokes selected rows (each as its kind is revoked); how many were live.
    pub async fn revoke_rows(
        &self,
        table: TokenTable,
        keys: Vec<SecretKey>,
    ) -> Result<u64, StoreError> {
        self.store.revoke_rows(table, keys, self.now()).await
    }
}
