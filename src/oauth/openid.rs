//! Where OAuth meets OpenID Connect: the token endpoint issues an ID token when the scope holds
//! `openid`, through a signer the `oidc` module provides (so OAuth code knows no keys).

use serde_json::Value;

use crate::oauth::OAuthError;
use crate::oauth::scope::has_scope;
use crate::store::{Algorithm, Application, ClientType, Timestamp};

/// Everything an ID token says, gathered by the grant that issues it.
#[derive(Debug, Clone)]
pub struct IdTokenContext {
    pub application: Application,
    pub user: u64,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: Timestamp,
    pub sid: Option<String>,
    /// The request's `claims` parameter (JSON), if any.
    pub claims: Option<String>,
    /// The access token issued with it (`at_hash`); none means the ID token carries the
    /// user's claims itself.
    pub access_token: Option<String>,
    /// The code issued with it (`c_hash`, hybrid flows).
    pub code: Option<String>,
    pub issued: Timestamp,
    pub jti: String,
}

#[async_trait::async_trait]
pub trait IdTokenSigner: Send + Sync {
    /// The signed ID token.
    async fn sign(&self, issuer: &str, context: &IdTokenContext) -> Result<String, OAuthError>;
    /// Why this application cannot be given ID tokens right now, if it cannot.
    fn refusal(&self, application: &Application) -> Option<String>;
}

/// Whether a request with `scope` is an OpenID Connect request.
pub fn is_openid(scope: &str) -> bool {
    has_scope(scope, "openid")
}

/// The application-side reasons an ID token cannot be signed (keys aside).
pub fn application_refusal(application: &Application) -> Option<String> {
    match application.algorithm {
        Algorithm::None => Some(
            "this client is not set up for OpenID Connect (it has no ID token signing algorithm)"
                .to_owned(),
        ),
        Algorithm::HS256
            if application.client_type != ClientType::Confidential
                || application.hash_client_secret =>
        {
            Some(
                "this client's ID tokens are HS256, which needs a confidential client whose \
                 secret is stored unhashed"
                    .to_owned(),
            )
        }
        _ => None,
    }
}

/// The `claims` parameter: which claims a client asks for, in userinfo and in the ID token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimsRequest {
    userinfo: Vec<String>,
    id_token: Vec<String>,
}

impl ClaimsRequest {
    /// Checks a `claims` parameter; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| "claims is not valid JSON".to_owned())?;
        let Value::Object(members) = value else {
            return Err("claims must be a JSON object".to_owned());
        };
        let mut request = ClaimsRequest::default();
        for (member, target) in [
            ("userinfo", &mut request.userinfo),
            ("id_token", &mut request.id_token),
        ] {
            match members.get(member) {
                None | Some(Value::Null) => {}
                Some(Value::Object(claims)) => {
                    for (name, spec) in claims {
                        match spec {
                            Value::Null | Value::Object(_) => target.push(name.clone()),
                            _ => {
                                return Err(format!(
                                    "claims.{member}.{name} must be null or an object"
                                ));
                            }
                        }
                    }
                }
                Some(_) => return Err(format!("claims.{member} must be an object")),
            }
        }
        Ok(request)
    }

    /// A stored request, already checked when it was made; anything unreadable asks for nothing.
    pub fn parse_stored(text: Option<&str>) -> Self {
        text.and_then(|text| Self::parse(text).ok())
            .unwrap_or_default()
    }

    pub fn id_token_names(&self) -> Vec<String> {
        self.id_token.clone()
    }

    pub fn userinfo_names(&self) -> Vec<String> {
        self.userinfo.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parameter_is_checked() {
        let request = ClaimsRequest::parse(
            r#"{"userinfo":{"email":null},"id_token":{"name":{"essential":true}}}"#,
        )
        .unwrap();
        assert_eq!(request.userinfo_names(), ["email"]);
        assert_eq!(request.id_token_names(), ["name"]);
        for bad in [
            "[]",
            "{",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":{"name":1}}"#,
        ] {
            assert!(ClaimsRequest::parse(bad).is_err(), "{bad}");
        }
    }
}
