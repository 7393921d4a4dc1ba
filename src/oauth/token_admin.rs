//! Token administration: what the admin console's token lists ask of storage (pages, one
//! record, revoking selected rows). The rules of each row's state are `ListedRecord`'s.

use std::collections::{BTreeMap, BTreeSet};

use super::OAuth;
use crate::rules;
use crate::store::{
    Application, ListedRecord, SecretKey, StoreError, StoredToken, TokenQuery, TokenRows,
    TokenTable,
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

/// An application a user granted something to (`/o/authorized_tokens/`): the scopes of their
/// live tokens and consents for it, and how many live tokens they hold.
#[derive(Debug, Clone)]
pub struct AuthorizedApplication {
    pub application: Application,
    /// Space-separated, sorted.
    pub scope: String,
    pub tokens: u64,
}

impl OAuth {
    /// What `user` granted, per application still registered. A token counts while it works
    /// (a refresh token by the refresh grant's own rule, so one it refuses is not listed).
    pub async fn authorized_applications(
        &self,
        user: u64,
    ) -> Result<Vec<AuthorizedApplication>, StoreError> {
        let now = self.now();
        let provider = &self.settings.oauth2_provider;
        let grants = self.store.grants_of_user(user).await?;
        let mut by_application: BTreeMap<u64, (BTreeSet<String>, u64)> = BTreeMap::new();
        let words = |scope: &str| {
            scope
                .split(' ')
                .filter(|word| !word.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        for token in grants.tokens {
            let live = match token {
                StoredToken::Access(token) => rules::access_token_unexpired(&token, now)
                    .then_some((token.application, token.scope)),
                StoredToken::Refresh(token) => {
                    rules::refresh_token_unrevoked_and_unexpired(&token, provider, now)
                        .then_some((token.application, token.scope))
                }
            };
            if let Some((application, scope)) = live {
                let entry = by_application.entry(application).or_default();
                entry.0.extend(words(&scope));
                entry.1 += 1;
            }
        }
        for (application, consent) in grants.consents {
            let entry = by_application.entry(application).or_default();
            entry.0.extend(words(&consent.scope));
        }
        let mut authorized = Vec::with_capacity(by_application.len());
        for (id, (scopes, tokens)) in by_application {
            if let Some(application) = self.store.application(id).await? {
                authorized.push(AuthorizedApplication {
                    application,
                    scope: scopes.into_iter().collect::<Vec<_>>().join(" "),
                    tokens,
                });
            }
        }
        Ok(authorized)
    }
}
