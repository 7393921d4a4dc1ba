//! The authorization code: consent, issuing the code, and exchanging it at the token endpoint
//! (single use, bound to client, redirect URI and PKCE verifier; a replay revokes what the code
//! produced).

use crate::oauth::authorize::{AuthorizationRequest, AuthorizationResponse, AuthorizeFailure};
use crate::oauth::scope::is_subset;
use crate::oauth::tokens::{OAuth, mint, new_family};
use crate::oauth::{IdTokenContext, OAuthError, TokenResponse};
use crate::params::Params;
use crate::random;
use crate::rules::{self, CodeRefusal};
use crate::store::{Application, Approval, CodeExchange, Grant, IdToken, OidcSession, SecretKey};

impl OAuth {
    /// Validates an authorization request (from the query of a GET or the form of the consent
    /// POST) against its client.
    pub async fn validate_authorization(
        &self,
        params: &Params,
    ) -> Result<AuthorizationRequest, AuthorizeFailure> {
        crate::oauth::authorize::validate(&*self.store, &self.settings.oauth2_provider, params)
            .await
    }

    /// Whether the user must be asked: never for `skip_authorization` apps; not under
    /// `approval_prompt=auto` (request or setting) when they approved these scopes before;
    /// always under `prompt=consent`.
    pub async fn needs_consent(
        &self,
        request: &AuthorizationRequest,
        user: u64,
    ) -> Result<bool, OAuthError> {
        if request.has_prompt("consent") {
            return Ok(true);
        }
        if request.application.skip_authorization {
            return Ok(false);
        }
        let auto = match request.approval_prompt.as_deref() {
            Some("auto") => true,
            Some("force") => false,
            _ => {
                self.settings.oauth2_provider.request_approval_prompt
                    == crate::config::ApprovalPrompt::Auto
            }
        };
        if !auto {
            return Ok(true);
        }
        let consent = self.store.consent(user, request.application.id).await?;
        Ok(!consent.is_some_and(|consent| is_subset(&request.scope, &consent.scope)))
    }

    /// Answers an approved request with what its response type asks for — a code, an access
    /// token, an ID token — all stored in one transaction, with the user's approval when they
    /// were asked.
    pub async fn approve(
        &self,
        request: &AuthorizationRequest,
        user: u64,
        session: &OidcSession,
        consented: bool,
        issuer: &str,
    ) -> Result<AuthorizationResponse, OAuthError> {
        let now = self.now();
        let provider = &self.settings.oauth2_provider;
        let family = new_family()?;
        let code = request.response.code.then(|| mint(now)).transpose()?;
        let access = request.response.token.then(|| mint(now)).transpose()?;
        let id_token_signer = request
            .response
            .id_token
            .then(|| self.id_token_signer(&request.scope))
            .flatten()
            .cloned();
        let jti = random::ordered_token(now.0)?;
        let grant = code.as_ref().map(|code| {
            let grant = Grant {
                user,
                application: request.application.id,
                redirect_uri: request
                    .redirect_uri_given
                    .then(|| request.redirect_uri.clone()),
                scope: request.scope.clone(),
                code_challenge: request.code_challenge.clone(),
                code_challenge_method: request.code_challenge_method.clone(),
                nonce: request.nonce.clone(),
                auth_time: session.auth_time,
                created: now,
                expires: now.plus_seconds(provider.authorization_code_expire_seconds),
                used: None,
                family,
                sid: session.sid.clone(),
                claims: request.claims.clone(),
            };
            (code.key, grant)
        });
        let access_record = access.as_ref().map(|access| {
            let (record, _) = rules::issued_tokens(
                provider,
                now,
                request.application.id,
                Some(user),
                &request.scope,
                family,
                (&access.key, &access.tail),
                None,
            );
            (access.key, record)
        });
        let id_token_row = id_token_signer.as_ref().map(|_| {
            IdToken::issued(
                provider.id_token_expire_seconds,
                &jti,
                user,
                request.application.id,
                &request.scope,
                now,
            )
        });
        self.store
            .approve(Approval {
                code: grant,
                access: access_record,
                id_token: id_token_row,
                consent: consented
                    .then(|| (user, request.application.id, request.scope.clone(), now)),
            })
            .await?;
        let id_token = match &id_token_signer {
            Some(signer) => Some(
                signer
                    .sign(
                        issuer,
                        &IdTokenContext {
                            application: request.application.clone(),
                            user,
                            scope: request.scope.clone(),
                            nonce: request.nonce.clone(),
                            auth_time: session.auth_time,
                            sid: session.sid.clone(),
                            claims: request.claims.clone(),
                            access_token: access.as_ref().map(|access| access.value.clone()),
                            code: code.as_ref().map(|code| code.value.clone()),
                            issued: now,
                            jti,
                        },
                    )
                    .await?,
            ),
            None => None,
        };
        let expires_in = provider.access_token_expire_seconds.to_string();
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(code) = &code {
            params.push(("code", &code.value));
        }
        if let Some(access) = &access {
            params.extend([
                ("access_token", access.value.as_str()),
                ("token_type", "Bearer"),
                ("expires_in", expires_in.as_str()),
                ("scope", request.scope.as_str()),
            ]);
        }
        if let Some(id_token) = &id_token {
            params.push(("id_token", id_token));
        }
        Ok(request.success_response(params))
    }

    /// The `authorization_code` grant.
    pub(super) async fn exchange_code(
        &self,
        application: &Application,
        params: &Params,
        issuer: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params
            .non_empty("code")?
            .ok_or_else(|| OAuthError::InvalidRequest("code is required".to_owned()))?;
        let redirect_uri = params.non_empty("redirect_uri")?.map(str::to_owned);
        let verifier = params.non_empty("code_verifier")?.map(str::to_owned);
        let now = self.now();
        let access = mint(now)?;
        let refresh = mint(now)?;
        let jti = random::ordered_token(now.0)?;
        let exchange = CodeExchange {
            code: SecretKey::of_token(code),
            client: application.id,
            redirect_uri,
            verifier,
            now,
            access: (access.key, access.tail.clone()),
            refresh: (refresh.key, refresh.tail.clone()),
            id_token_jti: self.id_tokens.is_some().then(|| jti.clone()),
        };
        let grant = self
            .store
            .exchange_code(exchange, &self.settings.oauth2_provider)
            .await?
            .map_err(|refusal| {
                if let CodeRefusal::Replayed { family_revoked } = refusal {
                    tracing::warn!(
                        client = application.client_id.as_str(),
                        revoked = family_revoked,
                        "authorization code replayed: tokens issued from it are revoked"
                    );
                }
                code_refused(refusal)
            })?;
        let id_token = match self.id_token_signer(&grant.scope) {
            Some(signer) => Some(
                signer
                    .sign(
                        issuer,
                        &IdTokenContext {
                            application: application.clone(),
                            user: grant.user,
                            scope: grant.scope.clone(),
                            nonce: grant.nonce.clone(),
                            auth_time: grant.auth_time,
                            sid: grant.sid.clone(),
                            claims: grant.claims.clone(),
                            access_token: Some(access.value.clone()),
                            code: None,
                            issued: now,
                            jti,
                        },
                    )
                    .await?,
            ),
            None => None,
        };
        let mut response = self.response(access, Some(refresh.value), grant.scope);
        response.id_token = id_token;
        Ok(response)
    }
}

/// The token endpoint's answer to a refused code exchange.
fn code_refused(refusal: CodeRefusal) -> OAuthError {
    OAuthError::InvalidGrant(
        match refusal {
            CodeRefusal::Unknown => "the code is invalid",
            CodeRefusal::Replayed { .. } => "the code has already been used",
            CodeRefusal::OtherClient => "the code was issued to another client",
            CodeRefusal::Expired => "the code has expired",
            CodeRefusal::RedirectUriMismatch => {
                "redirect_uri must repeat the one sent to the authorization endpoint"
            }
            CodeRefusal::VerifierMismatch => "the code_verifier does not match the code_challenge",
            CodeRefusal::VerifierMissing => "code_verifier is required (PKCE)",
            CodeRefusal::VerifierUnexpected => "no code_challenge was sent for this code",
        }
        .to_owned(),
    )
}
