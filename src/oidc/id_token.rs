//! ID tokens: the claims (OIDC Core §2, §3.1.3.6, §3.3.2.11), compact JWS signing, and reading
//! back our own tokens when a client presents one as `id_token_hint`.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::Clock;
use crate::oauth::{IdTokenContext, IdTokenSigner, OAuthError, application_refusal};
use crate::oidc::claims::{ClaimsRequest, needs_groups, user_claims};
use crate::oidc::keys::KeyRing;
use crate::store::{
    AccessToken, Algorithm, Application, SharedStorage, StoreError, Timestamp, User,
};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `at_hash` / `c_hash`: the left half of the hash of the value, with the hash of the signing
/// algorithm (SHA-512 for Ed25519, as OpenID's certification and most libraries do).
pub fn half_hash(algorithm: Algorithm, value: &str) -> String {
    let digest: Vec<u8> = match algorithm {
        Algorithm::EdDSA => Sha512::digest(value.as_bytes()).to_vec(),
        _ => Sha256::digest(value.as_bytes()).to_vec(),
    };
    b64(&digest[..digest.len() / 2])
}

fn hs256(secret: &[u8], message: &[u8]) -> Result<Vec<u8>, OAuthError> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|error| OAuthError::Server(error.to_string()))?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Issues ID tokens with the key ring's keys (or the client's secret for HS256).
pub struct IdTokens {
    keys: KeyRing,
    pub(super) store: SharedStorage,
    lifetime: u64,
    clock: Clock,
}

impl IdTokens {
    pub fn new(keys: KeyRing, store: SharedStorage, lifetime: u64, clock: Clock) -> Self {
        Self {
            keys,
            store,
            lifetime,
            clock,
        }
    }

    /// The userinfo answer for a live access token and its user (OIDC Core §5.3).
    pub async fn userinfo(
        &self,
        token: &AccessToken,
        user: Option<&User>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        crate::oidc::userinfo::userinfo(&*self.store, token, user).await
    }

    /// Signs `payload` as the application's algorithm asks.
    fn sign_payload(
        &self,
        application: &Application,
        payload: &Value,
        now: Timestamp,
    ) -> Result<String, OAuthError> {
        let keys = self.keys.keys();
        let algorithm = application.algorithm;
        let (header, key) = match algorithm {
            Algorithm::HS256 => (json!({"alg": "HS256", "typ": "JWT"}), None),
            Algorithm::None => {
                return Err(OAuthError::Server(
                    "no ID token algorithm for this client".to_owned(),
                ));
            }
            other => {
                let key = keys.signing(other, now).ok_or_else(|| {
                    OAuthError::Server(format!("no {} signing key", other.as_str()))
                })?;
                (
                    json!({"alg": other.as_str(), "kid": key.record.kid, "typ": "JWT"}),
                    Some(key),
                )
            }
        };
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let signature = match key {
            Some(key) => key
                .signer
                .sign(signing_input.as_bytes())
                .map_err(|error| OAuthError::Server(error.to_string()))?,
            None => hs256(
                application.client_secret.as_bytes(),
                signing_input.as_bytes(),
            )?,
        };
        Ok(format!("{signing_input}.{}", b64(&signature)))
    }

    /// Reads an ID token this server issued (signature checked, expiry not: RP-initiated logout
    /// accepts expired hints). Returns its claims and the application it was issued to.
    pub async fn read_own(&self, token: &str) -> Result<(Map<String, Value>, Application), String> {
        let mut parts = token.split('.');
        let (Some(header_part), Some(payload_part), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the id_token_hint is not a signed JWT".to_owned());
        };
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| "the id_token_hint is not base64url".to_owned())
        };
        let header: Map<String, Value> = serde_json::from_slice(&decode(header_part)?)
            .map_err(|_| "the id_token_hint header is not JSON".to_owned())?;
        let claims: Map<String, Value> = serde_json::from_slice(&decode(payload_part)?)
            .map_err(|_| "the id_token_hint payload is not JSON".to_owned())?;
        let signature = decode(signature)?;
        let client_id = match claims.get("aud") {
            Some(Value::String(aud)) => aud.clone(),
            Some(Value::Array(auds)) => auds
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => return Err("the id_token_hint has no audience".to_owned()),
        };
        let application = self
            .store
            .application_by_client_id(&client_id)
            .await
            .map_err(|error| error.to_string())?
            .ok_or_else(|| "the id_token_hint names an unknown client".to_owned())?;
        let signing_input = format!("{header_part}.{payload_part}");
        let verified = match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => {
                application.algorithm == Algorithm::HS256
                    && application_refusal(&application).is_none()
                    && hs256(
                        application.client_secret.as_bytes(),
                        signing_input.as_bytes(),
                    )
                    .is_ok_and(|expected| {
                        subtle::ConstantTimeEq::ct_eq(expected.as_slice(), signature.as_slice())
                            .into()
                    })
            }
            Some(alg) => {
                let keys = self.keys.keys();
                header
                    .get("kid")
                    .and_then(Value::as_str)
                    .and_then(|kid| keys.by_kid(kid))
                    .filter(|key| key.record.algorithm.as_str() == alg)
                    .is_some_and(|key| {
                        key.verifier
                            .verify(signing_input.as_bytes(), &signature)
                            .is_ok()
                    })
            }
            None => false,
        };
        if !verified {
            return Err("the id_token_hint was not issued by this server".to_owned());
        }
        Ok((claims, application))
    }
}

#[async_trait::async_trait]
impl IdTokenSigner for IdTokens {
    async fn sign(&self, issuer: &str, context: &IdTokenContext) -> Result<String, OAuthError> {
        let application = &context.application;
        let mut payload = Map::new();
        payload.insert("iss".to_owned(), json!(issuer));
        payload.insert("sub".to_owned(), json!(context.user.to_string()));
        payload.insert("aud".to_owned(), json!(application.client_id));
        payload.insert(
            "exp".to_owned(),
            json!(context.issued.plus_seconds(self.lifetime).unix_seconds()),
        );
        payload.insert("iat".to_owned(), json!(context.issued.unix_seconds()));
        payload.insert(
            "auth_time".to_owned(),
            json!(context.auth_time.unix_seconds()),
        );
        if let Some(nonce) = &context.nonce {
            payload.insert("nonce".to_owned(), json!(nonce));
        }
        if let Some(access_token) = &context.access_token {
            payload.insert(
                "at_hash".to_owned(),
                json!(half_hash(application.algorithm, access_token)),
            );
        }
        if let Some(code) = &context.code {
            payload.insert(
                "c_hash".to_owned(),
                json!(half_hash(application.algorithm, code)),
            );
        }
        if let Some(sid) = &context.sid {
            payload.insert("sid".to_owned(), json!(sid));
        }
        payload.insert("jti".to_owned(), json!(context.jti));
        let requested = ClaimsRequest::parse_stored(context.claims.as_deref());
        // With an access token the user's claims are fetched from userinfo; without one (the
        // `id_token` response type) they travel in the ID token (OIDC Core §5.4). Claims the
        // `claims` parameter asks for in the ID token go there either way.
        let scope_claims = context.access_token.is_none();
        let extra = requested.id_token_names();
        if (scope_claims || !extra.is_empty())
            && let Some(user) = self.store.user_by_id(context.user).await?
        {
            let scope = if scope_claims {
                context.scope.as_str()
            } else {
                ""
            };
            let groups = if needs_groups(scope, &extra) {
                self.store.groups_of(&user).await?
            } else {
                Vec::new()
            };
            for (name, value) in user_claims(&user, &groups, scope, &extra) {
                payload.entry(name).or_insert(value);
            }
        }
        self.sign_payload(application, &Value::Object(payload), context.issued)
    }

    fn refusal(&self, application: &Application) -> Option<String> {
        if let Some(reason) = application_refusal(application) {
            return Some(reason);
        }
        if application.algorithm == Algorithm::HS256 {
            return None;
        }
        let now = Timestamp::from_datetime(self.clock.now());
        self.keys
            .keys()
            .signing(application.algorithm, now)
            .is_none()
            .then(|| {
                format!(
                    "no {} signing key is active",
                    application.algorithm.as_str()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core, Appendix A.4 (RS256 → SHA-256).
        assert_eq!(
            half_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
