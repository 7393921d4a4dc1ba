//! The token endpoint's grants, introspection (RFC 7662), revocation (RFC 7009) and bearer-token
//! checks for protected resources (RFC 6750).
//!
//! Every change that hands out or takes back a token is one unit of work of the storage traits
//! (one transaction in its backend), so it is durable before the answer and concurrent
//! requests on one token are serialised by the backend: of two refreshes of one token, exactly
//! one rotates it.

use std::sync::Arc;

use serde::Serialize;

use crate::accounts::{AccountError, Accounts};
use crate::clock::Clock;
use crate::config::Settings;
use crate::oauth::scope::{has_scope, resolve_scope};
use crate::oauth::{
    BearerError, ClientAuthenticator, IdTokenContext, IdTokenSigner, OAuthError, PresentedClient,
    is_openid,
};
use crate::params::Params;
use crate::random;
use crate::rules;
use crate::rules::RefreshRefusal;
use crate::store::{
    AccessToken, Application, ClientRead, ClientType, FailureQuery, FamilyId, FoundToken,
    GrantType, NewTokens, NotTheClients, RefreshRequest, Refreshed, SecretKey, SharedStorage,
    StoredToken, Timestamp, User,
};
use crate::throttle::{Attempt, Refused, Throttle};

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

pub(super) fn new_family() -> Result<FamilyId, OAuthError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|error| OAuthError::Server(error.to_string()))?;
    Ok(FamilyId(id))
}

pub struct OAuth {
    pub(super) settings: Arc<Settings>,
    pub(super) store: SharedStorage,
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

/// The client a request presents; one naming none is refused.
fn required_client(presented: Option<PresentedClient>) -> Result<PresentedClient, OAuthError> {
    presented.ok_or_else(|| OAuthError::InvalidClient {
        description: "client authentication is required".to_owned(),
        used_basic: false,
    })
}

impl OAuth {
    pub fn new(
        settings: Arc<Settings>,
        store: SharedStorage,
        clients: ClientAuthenticator,
        accounts: Arc<Accounts>,
        clock: Clock,
        id_tokens: Option<Arc<dyn IdTokenSigner>>,
    ) -> Self {
        Self {
            client_failures: Throttle::new(
                "client",
                settings.login_throttle.clone(),
                clock.clone(),
                store.clone(),
            ),
            device_code_failures: Throttle::new(
                "device_code",
                settings.login_throttle.clone(),
                clock.clone(),
                store.clone(),
            ),
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
        let presented = required_client(presented)?;
        // The client and its throttle's failures, read together (one round trip).
        let attempt = self
            .client_failures
            .attempt(&presented.client_id, client_ip);
        let read = self
            .store
            .client_for_authentication(&presented.client_id, self.failure_query(&attempt))
            .await?;
        self.decide_client(&presented, client_ip, &attempt, read)
            .await
    }

    /// The failures a client authentication's throttle reads.
    fn failure_query<'a>(&self, attempt: &'a Attempt) -> FailureQuery<'a> {
        FailureQuery {
            scope: self.client_failures.scope(),
            keys: &attempt.keys,
            since: attempt.since,
        }
    }

    /// A client authentication decided on what was read for it: the throttle first, then the
    /// secret (or its absence, for a public client); the outcome is counted.
    async fn decide_client(
        &self,
        presented: &PresentedClient,
        client_ip: Option<&str>,
        attempt: &Attempt,
        (application, recent): ClientRead,
    ) -> Result<Application, OAuthError> {
        let admitted = match self.client_failures.judge(attempt, &recent).await {
            Ok(admitted) => admitted,
            Err(Refused::TooMany { retry_after }) => {
                return Err(OAuthError::TooManyAttempts { retry_after });
            }
            Err(Refused::Store(error)) => return Err(error.into()),
        };
        let result = self
            .clients
            .authenticate(&*self.store, application, presented)
            .await;
        match &result {
            Err(OAuthError::InvalidClient { .. }) => {
                self.client_failures
                    .record_failure(&presented.client_id, client_ip)
                    .await?;
                tracing::info!(
                    client = presented.client_id.as_str(),
                    ip = client_ip.unwrap_or("unknown"),
                    "client authentication failed"
                );
            }
            Ok(_) => {
                self.client_failures
                    .record_success(&presented.client_id, client_ip, admitted)
                    .await?;
            }
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
                    Err(AccountError::Store(error)) => return Err(error.into()),
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
        let (mut access_record, refresh_record) = rules::issued_tokens(
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
        self.store
            .issue_tokens(NewTokens {
                access: (access.key, access_record),
                refresh: refresh
                    .as_ref()
                    .map(|minted| minted.key)
                    .zip(refresh_record),
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
        let provider = &self.settings.oauth2_provider;
        let now = self.now();
        let access = mint(now)?;
        let refresh = mint(now)?;
        let jti = random::ordered_token(now.0)?;
        let request = RefreshRequest {
            presented: SecretKey::of_token(presented),
            client: application.id,
            requested_scope: params.non_empty("scope")?.map(str::to_owned),
            now,
            access: (access.key, access.tail),
            refresh: (refresh.key, refresh.tail),
            id_token_jti: self.id_tokens.is_some().then(|| jti.clone()),
        };
        let Refreshed { scope, session } = self
            .store
            .rotate_refresh_token(request, provider)
            .await?
            .map_err(|refusal| {
                if let RefreshRefusal::Reused { family_revoked } = refusal
                    && provider.refresh_token_reuse_protection
                {
                    tracing::warn!(
                        client = application.client_id.as_str(),
                        revoked = family_revoked,
                        "refresh token reused: its token family is revoked"
                    );
                }
                refresh_refused(refusal)
            })?;
        let response_access = access.value;
        let response_refresh = refresh.value;
        let id_token = match (session, self.id_token_signer(&scope)) {
            (Some((user, session)), Some(signer)) => Some(
                signer
                    .sign(
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
                    )
                    .await?,
            ),
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
    pub async fn bearer(
        &self,
        token: Option<&str>,
    ) -> Result<(AccessToken, Application), BearerError> {
        let (access, application, _) = self.bearer_with_holder(token).await?;
        Ok((access, application))
    }

    /// A live access token, its application and the user it speaks for (none for a client's
    /// own token), read together (userinfo).
    pub async fn bearer_with_holder(
        &self,
        token: Option<&str>,
    ) -> Result<(AccessToken, Application, Option<User>), BearerError> {
        let token = token.ok_or(BearerError::Missing)?;
        let now = self.now();
        let found = self.store.find_token(&SecretKey::of_token(token)).await?;
        match found {
            Some(FoundToken {
                token: StoredToken::Access(access),
                application: Some(application),
                user,
            }) if rules::access_token_live(&access, user.as_ref(), now) => {
                Ok((access, application, user))
            }
            _ => Err(BearerError::InvalidToken),
        }
    }

    /// A live access token holding `scope`.
    pub async fn bearer_with_scope(
        &self,
        token: Option<&str>,
        scope: &str,
    ) -> Result<(AccessToken, Application), BearerError> {
        let (access, application) = self.bearer(token).await?;
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
    pub async fn introspect(&self, token: &str, issuer: &str) -> Result<Introspection, OAuthError> {
        let found = self.store.find_token(&SecretKey::of_token(token)).await?;
        Ok(self.describe(found, issuer))
    }

    /// `/o/introspect/` asked by a client that authenticates itself: the client and the
    /// token are read together (one round trip on PostgreSQL), and the token is described
    /// only to a confidential client that authenticated.
    pub async fn introspect_as_client(
        &self,
        presented: Option<PresentedClient>,
        client_ip: Option<&str>,
        token: &str,
        issuer: &str,
    ) -> Result<Introspection, OAuthError> {
        let presented = required_client(presented)?;
        let attempt = self
            .client_failures
            .attempt(&presented.client_id, client_ip);
        let (read, found) = self
            .store
            .client_and_token(
                &presented.client_id,
                self.failure_query(&attempt),
                &SecretKey::of_token(token),
            )
            .await?;
        let caller = self
            .decide_client(&presented, client_ip, &attempt, read)
            .await?;
        self.may_introspect(&caller)?;
        Ok(self.describe(found, issuer))
    }

    /// What introspection says of a token found (or not) by its key.
    fn describe(&self, found: Option<FoundToken>, issuer: &str) -> Introspection {
        let now = self.now();
        let provider = &self.settings.oauth2_provider;
        let Some(found) = found else {
            return Introspection::inactive();
        };
        let (live, holder, details) = match &found.token {
            StoredToken::Access(access) => (
                rules::access_token_live(access, found.user.as_ref(), now),
                access.user,
                Introspection {
                    scope: Some(access.scope.clone()),
                    exp: Some(access.expires.unix_seconds()),
                    iat: Some(access.created.unix_seconds()),
                    token_type: Some("Bearer"),
                    ..Introspection::inactive()
                },
            ),
            StoredToken::Refresh(refresh) => (
                rules::refresh_token_unrevoked_and_unexpired(refresh, provider, now)
                    && rules::holder_may_act(refresh.user, found.user.as_ref()),
                refresh.user,
                Introspection {
                    scope: Some(refresh.scope.clone()),
                    exp: rules::refresh_token_expires_at(refresh, provider)
                        .map(Timestamp::unix_seconds),
                    iat: Some(refresh.created.unix_seconds()),
                    token_type: Some("refresh_token"),
                    ..Introspection::inactive()
                },
            ),
        };
        if !live {
            return Introspection::inactive();
        }
        // A token whose application was deleted is still described, without a client id.
        let client_id = found.application.map(|app| app.client_id);
        Introspection {
            active: true,
            aud: client_id.clone(),
            client_id,
            username: found.user.map(|user| user.username),
            sub: holder.map(|id| id.to_string()),
            iss: Some(issuer.to_owned()),
            ..details
        }
    }

    /// Revokes every token `user` holds for `application` (RP-initiated logout); how many
    /// were live.
    pub async fn revoke_tokens_of_user(
        &self,
        user: u64,
        application: u64,
    ) -> Result<u64, OAuthError> {
        Ok(self
            .store
            .revoke_tokens_of_user(user, Some(application), self.now())
            .await?)
    }

    /// A user withdraws what they granted an application: its tokens are revoked and the
    /// consent forgotten (the next authorization asks again). Returns the tokens revoked.
    pub async fn withdraw_consent(&self, user: u64, application: u64) -> Result<u64, OAuthError> {
        Ok(self
            .store
            .withdraw_consent(user, application, self.now())
            .await?)
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
        let now = self.now();
        self.store
            .revoke_token(&SecretKey::of_token(token), application.id, now)
            .await?
            .map_err(|NotTheClients| {
                OAuthError::UnauthorizedClient("the token was issued to another client".to_owned())
            })
    }
}

/// The token endpoint's answer to a refused refresh.
fn refresh_refused(refusal: RefreshRefusal) -> OAuthError {
    let description = match refusal {
        RefreshRefusal::Unknown => "the refresh token is invalid",
        RefreshRefusal::OtherClient => "the refresh token was issued to another client",
        RefreshRefusal::Expired => "the refresh token has expired",
        RefreshRefusal::Reused { .. } => "the refresh token has been used or revoked",
        RefreshRefusal::ScopeWidened => {
            return OAuthError::InvalidScope("a refresh may only narrow the scope".to_owned());
        }
    };
    OAuthError::InvalidGrant(description.to_owned())
}
