//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which client asks, where the
//! user may be sent afterwards, and which user the client believes is logged in.

use crate::oauth::redirect::{is_registered, with_query};
use crate::oidc::IdTokens;
use crate::params::Params;
use crate::store::{Application, Storage, Timestamp};

/// A checked logout request.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// The client, named by `client_id` or by the hint's audience.
    pub application: Option<Application>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    /// The user the `id_token_hint` names.
    pub hinted_user: Option<u64>,
    pub id_token_hint: Option<String>,
}

impl LogoutRequest {
    /// Where the user goes once logged out: the client's registered URI with `state`.
    pub fn after_logout(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_ref()?;
        match &self.state {
            Some(state) => with_query(uri, &[("state", state)]),
            None => Some(uri.clone()),
        }
    }

    /// The request's parameters, as hidden fields of the confirmation form.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(application) = &self.application {
            fields.push(("client_id", application.client_id.clone()));
        }
        let optional = [
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
            ("id_token_hint", &self.id_token_hint),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                fields.push((name, value.clone()));
            }
        }
        fields
    }
}

pub struct LogoutRules<'a> {
    pub store: &'a dyn Storage,
    pub id_tokens: &'a IdTokens,
    pub accept_expired_hints: bool,
    pub allowed_schemes: &'a [String],
    pub now: Timestamp,
}

impl IdTokens {
    /// The rules a logout request is checked by, on this service's store.
    pub fn logout_rules<'a>(
        &'a self,
        accept_expired_hints: bool,
        allowed_schemes: &'a [String],
        now: Timestamp,
    ) -> LogoutRules<'a> {
        LogoutRules {
            store: &*self.store,
            id_tokens: self,
            accept_expired_hints,
            allowed_schemes,
            now,
        }
    }
}

impl LogoutRules<'_> {
    /// Checks a logout request; the error is for a page (never a redirect: the URI to redirect
    /// to is what could not be trusted).
    pub async fn validate(&self, params: &Params) -> Result<LogoutRequest, String> {
        let text = |name: &str| {
            params
                .non_empty(name)
                .map(|value| value.map(str::to_owned))
                .map_err(|error| error.to_string())
        };
        let id_token_hint = text("id_token_hint")?;
        let client_id = text("client_id")?;
        let post_logout_redirect_uri = text("post_logout_redirect_uri")?;
        let state = text("state")?;
        let mut application = None;
        let mut hinted_user = None;
        if let Some(hint) = &id_token_hint {
            let (claims, issued_to) = self.id_tokens.read_own(hint).await?;
            let expired = claims
                .get("exp")
                .and_then(serde_json::Value::as_i64)
                .is_none_or(|exp| exp <= self.now.unix_seconds());
            if expired && !self.accept_expired_hints {
                return Err("the id_token_hint has expired".to_owned());
            }
            hinted_user = claims
                .get("sub")
                .and_then(serde_json::Value::as_str)
                .and_then(|sub| sub.parse::<u64>().ok());
            application = Some(issued_to);
        }
        if let Some(client_id) = &client_id {
            match &application {
                Some(hinted) if &hinted.client_id != client_id => {
                    return Err("client_id does not match the id_token_hint".to_owned());
                }
                Some(_) => {}
                None => {
                    application = Some(
                        self.store
                            .application_by_client_id(client_id)
                            .await
                            .map_err(|error| error.to_string())?
                            .ok_or_else(|| format!("There is no client {client_id:?}."))?,
                    );
                }
            }
        }
        if let Some(uri) = &post_logout_redirect_uri {
            let Some(application) = &application else {
                return Err(
                    "post_logout_redirect_uri needs client_id or id_token_hint to name the client"
                        .to_owned(),
                );
            };
            if !is_registered(
                uri,
                &application.post_logout_redirect_uris,
                self.allowed_schemes,
            ) {
                return Err(
                    "The post_logout_redirect_uri is not registered for this client.".to_owned(),
                );
            }
        }
        Ok(LogoutRequest {
            application,
            post_logout_redirect_uri,
            state,
            hinted_user,
            id_token_hint,
        })
    }
}
