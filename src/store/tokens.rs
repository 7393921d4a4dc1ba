//! Units of work on tokens: what the token endpoint, introspection, revocation and protected
//! resources ask of storage. Each is one transaction in its backend; the decisions inside are
//! `crate::rules` functions, so every backend decides alike.

use async_trait::async_trait;

use super::{
    AccessToken, Application, FailureQuery, FamilyId, OidcSession, RefreshToken, SecretKey,
    StoreError, Timestamp, User,
};

/// A client read for its authentication: its application (if the client id names one) and
/// its throttle's recent failures, per key (`ApplicationStorage::client_for_authentication`).
pub type ClientRead = (Option<Application>, Vec<Vec<Timestamp>>);
use crate::config::OAuth2Provider;
use crate::rules::RefreshRefusal;

/// A token record as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredToken {
    Access(AccessToken),
    Refresh(RefreshToken),
}

/// A token found by its key, with its application and the user it speaks for, read together
/// (one snapshot; one round trip where the backend is remote).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundToken {
    pub token: StoredToken,
    /// None when the application was deleted.
    pub application: Option<Application>,
    /// None for a token without a user, or whose user was deleted.
    pub user: Option<User>,
}

/// Tokens issued together, in one family.
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub access: (SecretKey, AccessToken),
    pub refresh: Option<(SecretKey, RefreshToken)>,
}

/// A refresh grant's request, its new tokens minted in advance (a unit of work does nothing
/// but storage).
#[derive(Debug, Clone)]
pub struct RefreshRequest {
    pub presented: SecretKey,
    /// The authenticated client's application id.
    pub client: u64,
    pub requested_scope: Option<String>,
    pub now: Timestamp,
    /// The new access token's key and the tail shown in the admin.
    pub access: (SecretKey, String),
    /// The new refresh token's (used when rotating).
    pub refresh: (SecretKey, String),
    /// The `jti` of an ID token to record when the grant is an OpenID one (OIDC on).
    pub id_token_jti: Option<String>,
}

/// What a granted refresh gives back for the response.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub scope: String,
    /// The user and original authentication, when an ID token is due (OIDC Core §12.2).
    pub session: Option<(u64, OidcSession)>,
}

/// Revocation of a token another client holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotTheClients;

#[async_trait]
pub trait TokenStorage: Send + Sync {
    /// Stores a new access token (and refresh token), durable before it returns.
    async fn issue_tokens(&self, tokens: NewTokens) -> Result<(), StoreError>;

    /// The refresh grant: judges the presented token (`rules::judge_refresh`) and writes what
    /// `rules::refresh_records` says, all in one transaction, so of concurrent refreshes of
    /// one token exactly one rotates it. A reuse under reuse protection revokes the token's
    /// family, committed even though the grant is refused.
    async fn rotate_refresh_token(
        &self,
        request: RefreshRequest,
        provider: &OAuth2Provider,
    ) -> Result<Result<Refreshed, RefreshRefusal>, StoreError>;

    /// The access or refresh token stored under `key`, with its application and user.
    async fn find_token(&self, key: &SecretKey) -> Result<Option<FoundToken>, StoreError>;

    /// Introspection's reads together (one round trip where the backend is remote): the
    /// client that asks, as `client_for_authentication` reads it, and the token it asks
    /// about, as `find_token` finds it. The token is only described once the client is
    /// authenticated; reading it either way keeps its existence out of the timing.
    async fn client_and_token(
        &self,
        client_id: &str,
        failures: FailureQuery<'_>,
        key: &SecretKey,
    ) -> Result<(ClientRead, Option<FoundToken>), StoreError>;

    /// Revokes every token `user` holds for `application`, or for every application when
    /// none is given: their grant families and their lone tokens (RP-initiated logout).
    /// Returns how many were live.
    async fn revoke_tokens_of_user(
        &self,
        user: u64,
        application: Option<u64>,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// The OpenID authentication a family of tokens came from (userinfo's `claims` request,
    /// ID tokens on refresh), if it came from one.
    async fn family_session(&self, family: FamilyId) -> Result<Option<OidcSession>, StoreError>;

    /// RFC 7009 for client `client`: an access token is revoked with its refresh token, a
    /// refresh token with its whole family. Unknown keys are fine.
    async fn revoke_token(
        &self,
        key: &SecretKey,
        client: u64,
        now: Timestamp,
    ) -> Result<Result<(), NotTheClients>, StoreError>;
}
