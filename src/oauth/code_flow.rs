//! The authorization code: consent, issuing the code, and exchanging it at the token endpoint
//! (single use, bound to client, redirect URI and PKCE verifier; a replay revokes what the code
//! produced).

use crate::oauth::authorize::{AuthorizationRequest, AuthorizationResponse};
use crate::oauth::scope::is_subset;
use crate::oauth::tokens::{OAuth, mint, new_family, token_records};
use crate::oauth::{IdTokenContext, OAuthError, TokenResponse, is_openid, pkce};
use crate::params::Params;
use crate::random;
use crate::store::{
    Application, Consent, Grant, IdToken, OidcSession, SecretKey, StoreError, Timestamp, WriteTx,
};

impl OAuth {
    /// Whether the user must be asked: never for `skip_authorization` apps; not under
    /// `approval_prompt=auto` (request or setting) when they approved these scopes before;
    /// always under `prompt=consent`.
    pub fn needs_consent(
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
        let consent = self
            .store
            .read(|tx| tx.consent(user, request.application.id))?;
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
            let (record, _) = token_records(
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
        let application = request.application.id;
        let scope = request.scope.clone();
        self.store
            .write(move |tx| {
                if let Some((key, grant)) = &grant {
                    tx.put_grant(key, grant)?;
                }
                if let Some((key, record)) = &access_record {
                    tx.put_access_token(key, record)?;
                }
                if let Some((key, record)) = &id_token_row {
                    tx.put_id_token(key, record)?;
                }
                if consented {
                    remember_consent(tx, user, application, &scope, now)?;
                }
                Ok(())
            })
            .await?;
        let id_token = match &id_token_signer {
            Some(signer) => Some(signer.sign(
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
            )?),
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
        let key = SecretKey::of_token(code);
        let now = self.now();
        let access = mint(now)?;
        let refresh = mint(now)?;
        let application_id = application.id;
        let client_id = application.client_id.clone();
        let provider = self.settings.oauth2_provider.clone();
        let jti = random::ordered_token(now.0)?;
        let id_token_record = {
            let jti = jti.clone();
            let wanted = self.id_tokens.is_some();
            let lifetime = provider.id_token_expire_seconds;
            move |grant: &Grant| {
                (wanted && is_openid(&grant.scope)).then(|| {
                    IdToken::issued(
                        lifetime,
                        &jti,
                        grant.user,
                        grant.application,
                        &grant.scope,
                        now,
                    )
                })
            }
        };
        let outcome = self
            .store
            .write({
                let (access_key, access_tail) = (access.key, access.tail.clone());
                let (refresh_key, refresh_tail) = (refresh.key, refresh.tail.clone());
                let records = move |grant: &Grant| {
                    token_records(
                        &provider,
                        now,
                        application_id,
                        Some(grant.user),
                        &grant.scope,
                        grant.family,
                        (&access_key, &access_tail),
                        Some((&refresh_key, &refresh_tail)),
                    )
                };
                move |tx| {
                    let Some(mut grant) = tx.grant(&key)? else {
                        return Ok(Err(OAuthError::InvalidGrant(
                            "the code is invalid".to_owned(),
                        )));
                    };
                    if grant.used.is_some() {
                        let revoked = tx.revoke_family(grant.family, now)?;
                        tracing::warn!(
                            client = client_id.as_str(),
                            revoked,
                            "authorization code replayed: tokens issued from it are revoked"
                        );
                        return Ok(Err(OAuthError::InvalidGrant(
                            "the code has already been used".to_owned(),
                        )));
                    }
                    if grant.application != application_id {
                        return Ok(Err(OAuthError::InvalidGrant(
                            "the code was issued to another client".to_owned(),
                        )));
                    }
                    if grant.expires <= now {
                        return Ok(Err(OAuthError::InvalidGrant(
                            "the code has expired".to_owned(),
                        )));
                    }
                    if !crate::rules::holder_may_act(
                        Some(grant.user),
                        tx.user(grant.user)?.as_ref(),
                    ) {
                        return Ok(Err(OAuthError::InvalidGrant(
                            "the code is invalid".to_owned(),
                        )));
                    }
                    if let Some(expected) = &grant.redirect_uri
                        && redirect_uri.as_ref() != Some(expected)
                    {
                        return Ok(Err(OAuthError::InvalidGrant(
                            "redirect_uri must repeat the one sent to the authorization endpoint"
                                .to_owned(),
                        )));
                    }
                    match (&grant.code_challenge, &verifier) {
                        (Some(challenge), Some(verifier)) => {
                            let method = grant.code_challenge_method.as_deref().unwrap_or("plain");
                            if !pkce::is_well_formed(verifier)
                                || !pkce::verifies(method, challenge, verifier)
                            {
                                return Ok(Err(OAuthError::InvalidGrant(
                                    "the code_verifier does not match the code_challenge"
                                        .to_owned(),
                                )));
                            }
                        }
                        (Some(_), None) => {
                            return Ok(Err(OAuthError::InvalidGrant(
                                "code_verifier is required (PKCE)".to_owned(),
                            )));
                        }
                        (None, Some(_)) => {
                            return Ok(Err(OAuthError::InvalidGrant(
                                "no code_challenge was sent for this code".to_owned(),
                            )));
                        }
                        (None, None) => {}
                    }
                    grant.used = Some(now);
                    tx.put_grant(&key, &grant)?;
                    let (access_record, refresh_record) = records(&grant);
                    tx.put_access_token(&access_key, &access_record)?;
                    if let Some(refresh_record) = &refresh_record {
                        tx.put_refresh_token(&refresh_key, refresh_record)?;
                    }
                    if let Some((key, record)) = id_token_record(&grant) {
                        tx.put_id_token(&key, &record)?;
                        tx.put_family_session(
                            grant.family,
                            &OidcSession {
                                auth_time: grant.auth_time,
                                sid: grant.sid.clone(),
                                claims: grant.claims.clone(),
                            },
                        )?;
                    }
                    Ok(Ok(grant))
                }
            })
            .await?;
        let grant = outcome?;
        let id_token = match self.id_token_signer(&grant.scope) {
            Some(signer) => Some(signer.sign(
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
            )?),
            None => None,
        };
        let mut response = self.response(access, Some(refresh.value), grant.scope);
        response.id_token = id_token;
        Ok(response)
    }
}

/// Approvals accumulate: what the user approved before stays approved.
fn remember_consent(
    tx: &mut WriteTx<'_>,
    user: u64,
    application: u64,
    scope: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut approved = tx
        .consent(user, application)?
        .map(|consent| consent.scope)
        .unwrap_or_default();
    for wanted in scope.split(' ') {
        if !approved.split(' ').any(|have| have == wanted) {
            if !approved.is_empty() {
                approved.push(' ');
            }
            approved.push_str(wanted);
        }
    }
    tx.put_consent(
        user,
        application,
        &Consent {
            scope: approved,
            granted: now,
        },
    )
}
