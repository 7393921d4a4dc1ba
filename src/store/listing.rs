//! Units of work behind the admin's token lists: one page of a token table, newest first,
//! filtered by user, application and state; one record; revoking selected rows.

use async_trait::async_trait;

use super::{
    AccessToken, DeviceDecision, DeviceGrant, Grant, IdToken, RefreshToken, SecretKey, StoreError,
    Timestamp,
};
use crate::config::OAuth2Provider;

/// The tables the admin lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTable {
    AccessTokens,
    RefreshTokens,
    Grants,
    IdTokens,
    DeviceGrants,
}

/// A row of one of those tables.
#[derive(Debug, Clone, PartialEq)]
pub enum ListedRecord {
    Access(AccessToken),
    Refresh(RefreshToken),
    Grant(Grant),
    Id(IdToken),
    Device(DeviceGrant),
}

impl ListedRecord {
    /// The user it speaks for (a device grant: whoever approved it).
    pub fn user(&self) -> Option<u64> {
        match self {
            ListedRecord::Access(token) => token.user,
            ListedRecord::Refresh(token) => token.user,
            ListedRecord::Grant(grant) => Some(grant.user),
            ListedRecord::Id(token) => token.user,
            ListedRecord::Device(grant) => match grant.decision {
                DeviceDecision::Approved { user, .. } => Some(user),
                _ => None,
            },
        }
    }

    pub fn application(&self) -> u64 {
        match self {
            ListedRecord::Access(token) => token.application,
            ListedRecord::Refresh(token) => token.application,
            ListedRecord::Grant(grant) => grant.application,
            ListedRecord::Id(token) => token.application,
            ListedRecord::Device(grant) => grant.application,
        }
    }

    pub fn scope(&self) -> &str {
        match self {
            ListedRecord::Access(token) => &token.scope,
            ListedRecord::Refresh(token) => &token.scope,
            ListedRecord::Grant(grant) => &grant.scope,
            ListedRecord::Id(token) => &token.scope,
            ListedRecord::Device(grant) => &grant.scope,
        }
    }

    pub fn created(&self) -> Timestamp {
        match self {
            ListedRecord::Access(token) => token.created,
            ListedRecord::Refresh(token) => token.created,
            ListedRecord::Grant(grant) => grant.created,
            ListedRecord::Id(token) => token.created,
            ListedRecord::Device(grant) => grant.created,
        }
    }

    /// When it stops working (a refresh token: by today's setting; none when it never does).
    pub fn expires(&self, provider: &OAuth2Provider) -> Option<Timestamp> {
        match self {
            ListedRecord::Access(token) => Some(token.expires),
            ListedRecord::Refresh(token) => crate::rules::refresh_token_expires_at(token, provider),
            ListedRecord::Grant(grant) => Some(grant.expires),
            ListedRecord::Id(token) => Some(token.expires),
            ListedRecord::Device(grant) => Some(grant.expires),
        }
    }

    /// The end of a token's visible value, for the admin (never the whole token).
    pub fn tail(&self) -> &str {
        match self {
            ListedRecord::Access(token) => &token.tail,
            ListedRecord::Refresh(token) => &token.tail,
            _ => "",
        }
    }

    /// Where it stands at `now`: `revoked`, `used`, `denied`, `expired` or `live`.
    pub fn state(&self, now: Timestamp, provider: &OAuth2Provider) -> &'static str {
        let spent = match self {
            ListedRecord::Refresh(token) => token.revoked.map(|_| "revoked"),
            ListedRecord::Grant(grant) => grant.used.map(|_| "used"),
            ListedRecord::Device(grant) => {
                (grant.decision == DeviceDecision::Denied).then_some("denied")
            }
            _ => None,
        };
        if let Some(spent) = spent {
            spent
        } else if self.expires(provider).is_some_and(|at| at <= now) {
            "expired"
        } else {
            "live"
        }
    }
}

/// Which rows a page keeps.
#[derive(Debug, Clone)]
pub struct TokenQuery {
    pub user: Option<u64>,
    pub application: Option<u64>,
    /// One of `ListedRecord::state`'s words, judged at `now`.
    pub state: Option<String>,
    pub now: Timestamp,
    pub provider: OAuth2Provider,
}

impl TokenQuery {
    /// Every row, states judged at `now` with `provider`'s settings.
    pub fn at(now: Timestamp, provider: OAuth2Provider) -> Self {
        Self {
            user: None,
            application: None,
            state: None,
            now,
            provider,
        }
    }

    pub fn keeps(&self, record: &ListedRecord) -> bool {
        self.user.is_none_or(|user| record.user() == Some(user))
            && self
                .application
                .is_none_or(|application| record.application() == application)
            && self
                .state
                .as_deref()
                .is_none_or(|state| record.state(self.now, &self.provider) == state)
    }
}

/// One page of a token table, newest first.
#[derive(Debug, Clone, Default)]
pub struct TokenRows {
    pub rows: Vec<(SecretKey, ListedRecord)>,
    /// Where the next page starts (exclusive), when rows may remain.
    pub next: Option<SecretKey>,
    /// Rows looked at, matching or not.
    pub scanned: usize,
}

#[async_trait]
pub trait TokenListing: Send + Sync {
    /// Up to `limit` rows of `table` that `query` keeps, newest first, from before `before`,
    /// looking at no more than `scan_limit` rows.
    async fn token_rows(
        &self,
        table: TokenTable,
        query: &TokenQuery,
        before: Option<SecretKey>,
        limit: usize,
        scan_limit: usize,
    ) -> Result<TokenRows, StoreError>;

    async fn token_row(
        &self,
        table: TokenTable,
        key: &SecretKey,
    ) -> Result<Option<ListedRecord>, StoreError>;

    /// Revokes the rows an admin selected, each as its kind is revoked: an access token is
    /// deleted with its refresh token revoked; a refresh token revokes its family; an unused
    /// code is deleted; an ID token is deleted; a pending or approved device grant is denied.
    /// Returns how many were live.
    async fn revoke_rows(
        &self,
        table: TokenTable,
        keys: Vec<SecretKey>,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
}
