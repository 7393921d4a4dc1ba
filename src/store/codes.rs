//! Units of work on authorization codes and consent: what the authorization endpoint stores
//! when a user approves, and the `authorization_code` grant's exchange.

use async_trait::async_trait;

use super::{AccessToken, Consent, Grant, IdToken, SecretKey, StoreError, StoredToken, Timestamp};
use crate::config::OAuth2Provider;
use crate::rules::CodeRefusal;

/// What an approved authorization request stores, together: the code, the token and the ID
/// token its response type asks for, and the user's consent when they were asked.
#[derive(Debug, Clone, Default)]
pub struct Approval {
    pub code: Option<(SecretKey, Grant)>,
    pub access: Option<(SecretKey, AccessToken)>,
    pub id_token: Option<(SecretKey, IdToken)>,
    /// (user, application, scope approved, when): added to what they approved before.
    pub consent: Option<(u64, u64, String, Timestamp)>,
}

/// A code presented at the token endpoint, its tokens minted in advance.
#[derive(Debug, Clone)]
pub struct CodeExchange {
    pub code: SecretKey,
    /// The authenticated client's application id.
    pub client: u64,
    pub redirect_uri: Option<String>,
    pub verifier: Option<String>,
    pub now: Timestamp,
    pub access: (SecretKey, String),
    pub refresh: (SecretKey, String),
    /// The `jti` of the ID token to record when the grant is an OpenID one (OIDC on).
    pub id_token_jti: Option<String>,
}

/// What a user holds and granted (`/o/authorized_tokens/`): their access and refresh tokens
/// as stored (live or not: the caller judges) and their consents by application id.
#[derive(Debug, Clone, Default)]
pub struct UserGrants {
    pub tokens: Vec<StoredToken>,
    pub consents: Vec<(u64, Consent)>,
}

#[async_trait]
pub trait CodeStorage: Send + Sync {
    /// Everything `user` holds and granted, read together.
    async fn grants_of_user(&self, user: u64) -> Result<UserGrants, StoreError>;

    /// What `user` has approved for `application`.
    async fn consent(&self, user: u64, application: u64) -> Result<Option<Consent>, StoreError>;

    /// A user withdraws an application's access (`/o/authorized_tokens/`): every token they
    /// hold for it is revoked and their consent forgotten, together. Returns the tokens
    /// revoked.
    async fn withdraw_consent(
        &self,
        user: u64,
        application: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Stores an approval's code, tokens and consent in one transaction.
    async fn approve(&self, approval: Approval) -> Result<(), StoreError>;

    /// The code exchange: judges the code (`rules::judge_code_exchange`), marks it used and
    /// issues an access and a refresh token in the code's family (with an ID token record and
    /// the family's OpenID session when `id_token_jti` is given and the scope is OpenID), in one
    /// transaction, so a code is exchanged once however many requests present it. A replay
    /// revokes the family, committed though the exchange is refused. Gives the grant back.
    async fn exchange_code(
        &self,
        exchange: CodeExchange,
        provider: &OAuth2Provider,
    ) -> Result<Result<Grant, CodeRefusal>, StoreError>;
}
