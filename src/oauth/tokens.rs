//! The token endpoint's grants, introspection (RFC 7662), revocation (RFC 7009) and bearer-token
//! checks for protected resources (RFC 6750).
//!
//! Every change that hands out or takes back a token is one write job, so it is durable before
//! the answer and concurrent requests on one token are serialised by the writer: of two
//! refreshes of one token, exactly one rotates it.

use std::sync::Arc;

use serde::Serialize;

use crate::accounts::{AccountError, Accounts};
use crate::clock::Clock;
use crate::config::{OAuth2Provider, Settings};
use crate::oauth::scope::{has_scope, is_subset, resolve_scope};
use crate::oauth::{
    BearerError, ClientAuthenticator, IdTokenContext, IdTokenSigner, OAuthError, PresentedClient,
    is_openid,
};
use crate::params::Params;
use crate::random;
use crate::rules;
use crate::store::{
    AccessToken, Application, ClientType, FamilyId, GrantType, IdToken, ReadTx, RefreshToken,
    SecretKey, Store, StoreError, Timestamp,
};
use crate::throttle::Throttle;

/// The token response, fields in DOT's order.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: &'static str,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// An RFC 7662 answer: `{"active": false}` or the token's details.
#[derive(Debug, Clone, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            username: None,
            exp: None,
            iat: None,
            sub: None,
            token_type: None,
            iss: None,
            aud: None,
        }
    }
}

/// What a fresh token looks like before it is stored.
pub(super) struct Minted {
    pub(super) value: String,
    pub(super) key: SecretKey,
    pub(super) tail: String,
}

/// A new token or code issued at `now`, in the ordered layout that keeps a batch's writes on
/// adjacent B-tree pages.
pub(super) fn mint(now: Timestamp) -> Result<Minted, OAuthError> {
    let value = random::ordered_token(now.0)?;
    let key = SecretKey::of_token(&value);
    let tail = value[value.len() - 4..].to_owned();
    Ok(Minted { value, key, tail })
}

/// The records of a new access token (and refresh token) in `family`, issued at `now`.
#[allow(clippy::too_many_arguments)]
pub(super) fn token_records(
    provider: &OAuth2Provider,
    now: Timestamp,
    application: u64,
    user: Option<u64>,
    scope: &str,
    family: FamilyId,
    access: (&SecretKey, &str),
    refresh: Option<(&SecretKey, &str)>,
) -> (AccessToken, Option<RefreshToken>) {
    let access_record = AccessToken {
        user,
        application,
        scope: scope.to_owned(),
        expires: now.plus_seconds(provider.access_token_expire_seconds),
        created: now,
        refresh_token: refresh.map(|(key, _)| key.0),
        family: Some(family),
        tail: access.1.to_owned(),
    };
    let refresh_record = refresh.map(|(_, tail)| RefreshToken {
        user,
        application,
        scope: scope.to_owned(),
        created: now,
        revoked: None,
        access_token: Some(access.0.0),
        family,
        tail: tail.to_owned(),
    });
    (access_record, refresh_record)
}

/// The record of an issued ID token (DOT keeps them; the cleanup deletes them once expired).
pub(super) fn id_token_row(
    lifetime: u64,
    jti: &str,
    user: u64,
    application: u64,
    scope: &str,
    now: Timestamp,
) -> (SecretKey, IdToken) {
    let record = IdToken {
        user: Some(user),
        application,
        jti: jti.to_owned(),
        scope: scope.to_owned(),
        expires: now.plus_seconds(lifetime),
        created: now,
    };
    (SecretKey::of_token(jti), record)
}

pub(super) fn new_family() -> Result<FamilyId, OAuthError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|error| OAuthError::Server(error.to_string()))?;
    Ok(FamilyId(id))
}

pub struct OAuth {
    pub(super) settings: Arc<Settings>,
    pub(super) store: Store,
    clients: ClientAuthenticator,
    /// Failed client authentications, per client id and per IP, like failed logins.
    client_failures: Throttle,
    /// Wrong user codes typed on the device page, per user and IP.
    pub(super) device_code_failures: Throttle,
    accounts: Arc<Accounts>,
    pub(super) clock: Clock,
    /// Signs ID tokens; none when OpenID Connect is off (`openid` is then a plain scope).
    pub(super) id_tokens: Option<Arc<dyn IdTokenSigner>>,
}

impl OAuth {
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        clients: ClientAuthenticator,
        accounts: Arc<Accounts>,
        clock: Clock,
        id_tokens: Option<Arc<dyn IdTokenSigner>>,
    ) -> Self {
        Self {
            client_failures: Throttle::new(settings.login_throttle.clone(), clock.clone()),
            device_code_failures: Throttle::new(settings.login_throttle.clone(), clock.clone()),
            settings,
            store,
            clients,
            accounts,
            clock,
            id_tokens,
        }
    }

    /// The signer, when `scope` asks for an ID token and OpenID Connect is on.
    pub(super) fn id_token_signer(&self, scope: &str) -> Option<&Arc<dyn IdTokenSigner>> {
        self.id_tokens.as_ref().filter(|_| is_openid(scope))
    }

    /// Why `application` cannot be given an ID token for `scope`, if it cannot.
    pub fn id_token_refusal(&self, application: &Application, scope: &str) -> Option<String> {
        self.id_token_signer(scope)
            .and_then(|signer| signer.refusal(application))
    }

    pub(super) fn now(&self) -> Timestamp {
        Timestamp::from_datetime(self.clock.now())
    }

    /// Authenticates the client a request presents; a request naming none is refused.
    pub async fn authenticate_client(
        &self,
        presented: Option<PresentedClient>,
        client_ip: Option<&str>,
    ) -> Result<Application, OAuthError> {
        let presented = presented.ok_or_else(|| OAuthError::InvalidClient {
            description: "client authentication is required".to_owned(),
            used_basic: false,
        })?;
        if let Err(retry_after) = self
            .client_failures
            .admit(&presented.client_id, client_ip)
            .await
        {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let result = self.clients.authenticate(&self.store, &presented).await;
        match &result {
            Err(OAuthError::InvalidClient { .. }) => {
                self.client_failures
                    .record_failure(&presented.client_id, client_ip);
                tracing::info!(
                    client = presented.client_id.as_str(),
                    ip = client_ip.unwrap_or("unknown"),
                    "client authentication failed"
                );
            }
            Ok(_) => self
                .client_failures
                .record_success(&presented.client_id, client_ip),
            Err(_) => {}
        }
        result
    }

    /// `POST /o/token/`.
    pub async fn token(
        &self,
        presented: Option<PresentedClient>,
        params: &Params,
        client_ip: Option<&str>,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = params
            .non_empty("grant_type")?
            .ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".to_owned()))?;
        let grant = match grant_type {
            "authorization_code" => {
                let application = self.authenticate_client(presented, client_ip).await?;
                // Hybrid-flow clients exchange their codes too (DOT's rule).
                if !application.grant_types.iter().any(|grant| {
                    matches!(
                        grant,
                        GrantType::AuthorizationCode | GrantType::OpenidHybrid
                    )
                }) {
                    return Err(OAuthError::UnauthorizedClient(
                        "this client may not use the authorization_code grant".to_owned(),
                    ));
                }
                return self.exchange_code(&application, params, issuer).await;
            }
            "urn:ietf:params:oauth:grant-type:device_code" => {
                let application = self.authenticate_client(presented, client_ip).await?;
                return self.poll_device(&application, params).await;
            }
            "client_credentials" => GrantType::ClientCredentials,
            "password" => GrantType::Password,
            "refresh_token" => {
                let application = self.authenticate_client(presented, client_ip).await?;
                return self.refresh(&application, params, issuer).await;
            }
            other => {
                return Err(OAuthError::UnsupportedGrantType(format!(
                    "grant_type {other:?} is not supported"
                )));
            }
        };
        let application = self.authenticate_client(presented, client_ip).await?;
        if !application.grant_types.contains(&grant) {
            return Err(OAuthError::UnauthorizedClient(format!(
                "this client may not use the {grant_type} grant"
            )));
        }
        let scope = resolve_scope(params.single("scope")?, &self.settings.oauth2_provider)?;
        match grant {
            GrantType::ClientCredentials => {
                if application.client_type != ClientType::Confidential {
                    return Err(OAuthError::UnauthorizedClient(
                        "client_credentials needs a confidential client".to_owned(),
                    ));
                }
                self.issue(&application, None, scope, false).await
            }
            _ => {
                let username = params.non_empty("username")?;
                let password = params.non_empty("password")?;
                let (Some(username), Some(password)) = (username, password) else {
                    return Err(OAuthError::InvalidRequest(
                        "username and password are required".to_owned(),
                    ));
                };
                let user = match self
                    .accounts
                    .check_credentials(username, password, client_ip)
                    .await
                {
                    Ok(user) => user,
                    Err(AccountError::InvalidCredentials) => {
                        return Err(OAuthError::InvalidGrant(
                            "invalid username or password".to_owned(),
                        ));
                    }
                    Err(AccountError::Throttled { retry_after }) => {
                        return Err(OAuthError::TooManyAttempts { retry_after });
                    }
                    Err(other) => return Err(OAuthError::Server(other.to_string())),
                };
                self.issue(&application, Some(user.id), scope, true).await
            }
        }
    }

    pub(super) fn response(
        &self,
        access: Minted,
        refresh: Option<String>,
        scope: String,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.value,
            expires_in: self.settings.oauth2_provider.access_token_expire_seconds,
            token_type: "Bearer",
            scope,
            refresh_token: refresh,
            id_token: None,
        }
    }

    /// Issues an access token (and a refresh token when asked) in a new family.
    async fn issue(
        &self,
        application: &Application,
        user: Option<u64>,
        scope: String,
        with_refresh: bool,
    ) -> Result<TokenResponse, OAuthError> {
        let family = new_family()?;
        let now = self.now();
        let access = mint(now)?;
        let refresh = if with_refresh { Some(mint(now)?) } else { None };
        let (mut access_record, refresh_record) = token_records(
            &self.settings.oauth2_provider,
            now,
            application.id,
            user,
            &scope,
            family,
            (&access.key, &access.tail),
            refresh
                .as_ref()
                .map(|minted| (&minted.key, minted.tail.as_str())),
        );
        if refresh.is_none() {
            // A lone token (client credentials) has no grant to revoke it with: indexing it by
            // family would cost a write per token for nothing.
            access_record.family = None;
        }
        let access_key = access.key;
        let refresh_key = refresh.as_ref().map(|minted| minted.key);
        self.store
            .write(move |tx| {
                tx.put_access_token(&access_key, &access_record)?;
                if let (Some(key), Some(record)) = (&refresh_key, &refresh_record) {
                    tx.put_refresh_token(key, record)?;
                }
                Ok(())
            })
            .await?;
        Ok(self.response(access, refresh.map(|minted| minted.value), scope))
    }

    /// The `refresh_token` grant: rotation, grace period, reuse detection, scope narrowing,
    /// all in one transaction. A reuse that revokes the family commits that revocation even
    /// though the request answers `invalid_grant`.
    async fn refresh(
        &self,
        application: &Application,
        params: &Params,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params
            .non_empty("refresh_token")?
            .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".to_owned()))?;
        let requested_scope = params.non_empty("scope")?.map(str::to_owned);
        let provider = self.settings.oauth2_provider.clone();
        let now = self.now();
        let old_key = SecretKey::of_token(presented);
        let access = mint(now)?;
        let refresh = mint(now)?;
        let application_id = application.id;
        let client_id = application.client_id.clone();
        let response_access = access.value.clone();
        let response_refresh = refresh.value.clone();
        let jti = random::ordered_token(now.0)?;
        let row_jti = jti.clone();
        let wants_id_token = self.id_tokens.is_some();
        let outcome = self
            .store
            .write(move |tx| {
                let Some(mut old) = tx.refresh_token(&old_key)? else {
                    return Ok(Err(OAuthError::InvalidGrant(
                        "the refresh token is invalid".to_owned(),
                    )));
                };
                if old.application != application_id {
                    return Ok(Err(OAuthError::InvalidGrant(
                        "the refresh token was issued to another client".to_owned(),
                    )));
                }
                if rules::refresh_token_expired(&old, &provider, now) {
                    return Ok(Err(OAuthError::InvalidGrant(
                        "the refresh token has expired".to_owned(),
                    )));
                }
                let holder = match old.user {
                    Some(id) => tx.user(id)?,
                    None => None,
                };
                if !rules::holder_may_act(old.user, holder.as_ref()) {
                    return Ok(Err(OAuthError::InvalidGrant(
                        "the refresh token is invalid".to_owned(),
                    )));
                }
                if let Some(revoked) = old.revoked
                    && !rules::within_refresh_grace(
                        revoked,
                        now,
                        provider.refresh_token_grace_period_seconds,
                    )
                {
                    if provider.refresh_token_reuse_protection {
                        let revoked = tx.revoke_family(old.family, now)?;
                        tracing::warn!(
                            client = client_id.as_str(),
                            revoked,
                            "refresh token reused: its token family is revoked"
                        );
                    }
                    return Ok(Err(OAuthError::InvalidGrant(
                        "the refresh token has been used or revoked".to_owned(),
                    )));
                }
                let scope = match &requested_scope {
                    Some(requested) if !is_subset(requested, &old.scope) => {
                        return Ok(Err(OAuthError::InvalidScope(
                            "a refresh may only narrow the scope".to_owned(),
                        )));
                    }
                    Some(requested) => requested.clone(),
                    None => old.scope.clone(),
                };
                if let Some(previous) = old.access_token.take() {
                    tx.delete_access_token(&SecretKey(previous))?;
                }
                let rotate = provider.rotate_refresh_token;
                let access_record = AccessToken {
                    user: old.user,
                    application: application_id,
                    scope: scope.clone(),
                    expires: now.plus_seconds(provider.access_token_expire_seconds),
                    created: now,
                    refresh_token: Some(if rotate { refresh.key.0 } else { old_key.0 }),
                    family: Some(old.family),
                    tail: access.tail.clone(),
                };
                tx.put_access_token(&access.key, &access_record)?;
                if rotate {
                    if old.revoked.is_none() {
                        old.revoked = Some(now);
                    }
                    tx.put_refresh_token(&old_key, &old)?;
                    let new_refresh = RefreshToken {
                        user: old.user,
                        application: application_id,
                        scope: old.scope.clone(),
                        created: now,
                        revoked: None,
                        access_token: Some(access.key.0),
                        family: old.family,
                        tail: refresh.tail.clone(),
                    };
                    tx.put_refresh_token(&refresh.key, &new_refresh)?;
                } else {
                    old.access_token = Some(access.key.0);
                    tx.put_refresh_token(&old_key, &old)?;
                }
                // OIDC Core §12.2: a refresh of an OpenID grant brings a new ID token, for the
                // original authentication.
                let session = match old.user {
                    Some(user) if wants_id_token && is_openid(&scope) => {
                        let session = tx.family_session(old.family)?;
                        if session.is_some() {
                            let (key, record) = id_token_row(
                                provider.id_token_expire_seconds,
                                &row_jti,
                                user,
                                application_id,
                                &scope,
                                now,
                            );
                            tx.put_id_token(&key, &record)?;
                        }
                        session.map(|session| (user, session))
                    }
                    _ => None,
                };
                Ok(Ok((scope, session)))
            })
            .await?;
        let (scope, session) = outcome?;
        let id_token = match (session, self.id_token_signer(&scope)) {
            (Some((user, session)), Some(signer)) => Some(signer.sign(
                issuer,
                &IdTokenContext {
                    application: application.clone(),
                    user,
                    scope: scope.clone(),
                    nonce: None,
                    auth_time: session.auth_time,
                    sid: session.sid,
                    claims: session.claims,
                    access_token: Some(response_access.clone()),
                    code: None,
                    issued: now,
                    jti,
                },
            )?),
            _ => None,
        };
        Ok(TokenResponse {
            id_token,
            access_token: response_access,
            expires_in: self.settings.oauth2_provider.access_token_expire_seconds,
            token_type: "Bearer",
            scope,
            refresh_token: Some(if self.settings.oauth2_provider.rotate_refresh_token {
                response_refresh
            } else {
                presented.to_owned()
            }),
        })
    }

    /// A live access token and its application, for protected resources.
    pub fn bearer(&self, token: Option<&str>) -> Result<(AccessToken, Application), BearerError> {
        self.bearer_then(token, |_, _, _| Ok(()))
            .map(|(access, application, ())| (access, application))
    }

    /// A live access token and its application, and what `then` reads in the same snapshot
    /// (protected resources that need more than the token: userinfo).
    pub fn bearer_then<T>(
        &self,
        token: Option<&str>,
        then: impl FnOnce(&ReadTx, &AccessToken, &Application) -> Result<T, StoreError>,
    ) -> Result<(AccessToken, Application, T), BearerError> {
        let token = token.ok_or(BearerError::Missing)?;
        let key = SecretKey::of_token(token);
        let now = self.now();
        self.store
            .read(|tx| {
                let Some(access) = tx.access_token(&key)? else {
                    return Ok(None);
                };
                if !rules::access_token_unexpired(&access, now) || !holder_may_act(tx, access.user)?
                {
                    return Ok(None);
                }
                let Some(application) = tx.application(access.application)? else {
                    return Ok(None);
                };
                let found = then(tx, &access, &application)?;
                Ok(Some((access, application, found)))
            })?
            .ok_or(BearerError::InvalidToken)
    }

    /// A live access token holding `scope`.
    pub fn bearer_with_scope(
        &self,
        token: Option<&str>,
        scope: &str,
    ) -> Result<(AccessToken, Application), BearerError> {
        let (access, application) = self.bearer(token)?;
        if !has_scope(&access.scope, scope) {
            return Err(BearerError::InsufficientScope(scope.to_owned()));
        }
        Ok((access, application))
    }

    /// Whether `caller` may introspect tokens: only a confidential client, which proved its
    /// secret (or holds a token issued to it). A public client proves nothing, so letting it
    /// introspect would tell anyone who knows a token whose it is and what it may do.
    pub fn may_introspect(&self, caller: &Application) -> Result<(), OAuthError> {
        if caller.client_type == ClientType::Confidential {
            Ok(())
        } else {
            Err(OAuthError::InvalidClient {
                description: "introspection is for confidential clients".to_owned(),
                used_basic: false,
            })
        }
    }

    /// `/o/introspect/`: the caller has already been authorised.
    pub fn introspect(&self, token: &str, issuer: &str) -> Result<Introspection, OAuthError> {
        let key = SecretKey::of_token(token);
        let now = self.now();
        let provider = &self.settings.oauth2_provider;
        let answer = self.store.read(|tx| {
            if let Some(access) = tx.access_token(&key)? {
                if !rules::access_token_unexpired(&access, now) || !holder_may_act(tx, access.user)?
                {
                    return Ok(Introspection::inactive());
                }
                return describe(tx, access.application, access.user, |info| Introspection {
                    scope: Some(access.scope.clone()),
                    exp: Some(access.expires.unix_seconds()),
                    iat: Some(access.created.unix_seconds()),
                    token_type: Some("Bearer"),
                    ..info
                });
            }
            if let Some(refresh) = tx.refresh_token(&key)? {
                if !rules::refresh_token_unrevoked_and_unexpired(&refresh, provider, now)
                    || !holder_may_act(tx, refresh.user)?
                {
                    return Ok(Introspection::inactive());
                }
                return describe(tx, refresh.application, refresh.user, |info| {
                    Introspection {
                        scope: Some(refresh.scope.clone()),
                        exp: rules::refresh_token_expires_at(&refresh, provider)
                            .map(Timestamp::unix_seconds),
                        iat: Some(refresh.created.unix_seconds()),
                        token_type: Some("refresh_token"),
                        ..info
                    }
                });
            }
            Ok(Introspection::inactive())
        })?;
        Ok(Introspection {
            iss: answer.active.then(|| issuer.to_owned()),
            ..answer
        })
    }

    /// `/o/revoke_token/` (RFC 7009): revoking either token of a pair revokes both; revoking a
    /// refresh token revokes every token issued from the same grant. Unknown tokens are fine.
    pub async fn revoke(
        &self,
        application: &Application,
        params: &Params,
    ) -> Result<(), OAuthError> {
        let token = params
            .non_empty("token")?
            .ok_or_else(|| OAuthError::InvalidRequest("token is required".to_owned()))?;
        // The hint only orders the search (RFC 7009 §2.1); any value is accepted.
        let _hint = params.single("token_type_hint")?;
        let key = SecretKey::of_token(token);
        let application_id = application.id;
        let now = self.now();
        self.store
            .write(move |tx| {
                if let Some(access) = tx.access_token(&key)? {
                    if access.application != application_id {
                        return Ok(Err(OAuthError::UnauthorizedClient(
                            "the token was issued to another client".to_owned(),
                        )));
                    }
                    tx.revoke_access_token(&key, now)?;
                    return Ok(Ok(()));
                }
                if let Some(refresh) = tx.refresh_token(&key)? {
                    if refresh.application != application_id {
                        return Ok(Err(OAuthError::UnauthorizedClient(
                            "the token was issued to another client".to_owned(),
                        )));
                    }
                    tx.revoke_family(refresh.family, now)?;
                }
                Ok(Ok(()))
            })
            .await?
    }
}

/// Whether the user a token speaks for (if any) may still act: read in the same snapshot as
/// the token.
pub(super) fn holder_may_act(
    tx: &crate::store::ReadTx,
    user: Option<u64>,
) -> Result<bool, crate::store::StoreError> {
    let Some(id) = user else {
        return Ok(true);
    };
    Ok(rules::holder_may_act(user, tx.user(id)?.as_ref()))
}

/// The parts of an introspection answer that come from the client and the user.
fn describe(
    tx: &crate::store::ReadTx,
    application: u64,
    user: Option<u64>,
    fill: impl FnOnce(Introspection) -> Introspection,
) -> Result<Introspection, crate::store::StoreError> {
    let client_id = tx.application(application)?.map(|app| app.client_id);
    let username = match user {
        Some(id) => tx.user(id)?.map(|user| user.username),
        None => None,
    };
    Ok(fill(Introspection {
        active: true,
        aud: client_id.clone(),
        client_id,
        username,
        sub: user.map(|id| id.to_string()),
        ..Introspection::inactive()
    }))
}
