//! Client authentication at the token, revocation and introspection endpoints:
//! `client_secret_basic` (RFC 6749 §2.3.1: id and secret form-urlencoded inside Basic),
//! `client_secret_post`, and none for public clients.
//!
//! argon2 makes a verification cost milliseconds, so a success is remembered as an HMAC of the
//! client id, the presented secret and the stored hash under a per-process key: the same client
//! presenting the same secret pays argon2 once, a changed secret (new stored hash) misses, and a
//! wrong secret always pays full price.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::oauth::OAuthError;
use crate::params::Params;
use crate::passwords::Hasher;
use crate::store::{Application, ApplicationStorage, ClientType, Replaced};

/// Remembered successes before the memory is cleared (a bound, not a cache policy).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    None,
}

/// The client a request names, and how it tried to authenticate.
#[derive(Debug, Clone)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: AuthMethod,
}

/// Reads the client from the `Authorization` header and the body. Using two methods at once
/// is refused, as RFC 6749 §2.3 requires.
pub fn presented_client(
    authorization: Option<&str>,
    params: &Params,
) -> Result<Option<PresentedClient>, OAuthError> {
    let body_id = params.non_empty("client_id")?;
    let body_secret = params.single("client_secret")?;
    let basic = authorization.and_then(|value| {
        let (scheme, rest) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    });
    if let Some(encoded) = basic {
        let invalid = || OAuthError::InvalidClient {
            description: "malformed HTTP Basic credentials".to_owned(),
            used_basic: true,
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
        let id = crate::params::decode(id)
            .ok()
            .filter(|id| !id.is_empty())
            .ok_or_else(invalid)?;
        let secret = crate::params::decode(secret).map_err(|_| invalid())?;
        if body_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not Basic and client_secret both".to_owned(),
            ));
        }
        if body_id.is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::InvalidRequest(
                "client_id differs from the Basic credentials".to_owned(),
            ));
        }
        return Ok(Some(PresentedClient {
            client_id: id,
            secret: Some(secret),
            method: AuthMethod::Basic,
        }));
    }
    Ok(body_id.map(|id| PresentedClient {
        client_id: id.to_owned(),
        secret: body_secret.map(str::to_owned),
        method: if body_secret.is_some() {
            AuthMethod::Post
        } else {
            AuthMethod::None
        },
    }))
}

pub struct ClientAuthenticator {
    hasher: Hasher,
    mac_key: [u8; 32],
    remembered: Mutex<HashSet<[u8; 32]>>,
}

impl ClientAuthenticator {
    pub fn new(hasher: Hasher) -> Result<Self, OAuthError> {
        let mut mac_key = [0u8; 32];
        getrandom::fill(&mut mac_key).map_err(|error| OAuthError::Server(error.to_string()))?;
        Ok(Self {
            hasher,
            mac_key,
            remembered: Mutex::new(HashSet::new()),
        })
    }

    fn fingerprint(&self, client_id: &str, secret: &str, stored: &str) -> Option<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.mac_key).ok()?;
        for part in [client_id, secret, stored] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        Some(mac.finalize().into_bytes().into())
    }

    fn is_remembered(&self, fingerprint: &[u8; 32]) -> bool {
        self.remembered
            .lock()
            .is_ok_and(|remembered| remembered.contains(fingerprint))
    }

    fn remember(&self, fingerprint: [u8; 32]) {
        if let Ok(mut remembered) = self.remembered.lock() {
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(fingerprint);
        }
    }

    /// Authenticates the presented client as `application` (what its `client_id` names, read
    /// by the caller; None for an unknown client). Confidential clients must prove their
    /// secret; public clients are identified by `client_id` alone. `store` takes a hash
    /// upgrade.
    pub async fn authenticate(
        &self,
        store: &dyn ApplicationStorage,
        application: Option<Application>,
        presented: &PresentedClient,
    ) -> Result<Application, OAuthError> {
        let used_basic = presented.method == AuthMethod::Basic;
        let refused = |description: &str| OAuthError::InvalidClient {
            description: description.to_owned(),
            used_basic,
        };
        let Some(application) = application else {
            if let Some(secret) = &presented.secret {
                // Cost what a known client costs, so timing does not tell who exists.
                self.hasher.verify(secret.clone(), None).await?;
            }
            return Err(refused("client authentication failed"));
        };
        if application.client_type == ClientType::Public {
            return Ok(application);
        }
        let Some(secret) = presented.secret.as_deref() else {
            return Err(refused("this client must authenticate with its secret"));
        };
        if self.secret_matches(store, &application, secret).await? {
            Ok(application)
        } else {
            Err(refused("client authentication failed"))
        }
    }

    async fn secret_matches(
        &self,
        store: &dyn ApplicationStorage,
        application: &Application,
        secret: &str,
    ) -> Result<bool, OAuthError> {
        let stored = &application.client_secret;
        if stored.is_empty() {
            return Ok(false);
        }
        if !application.hash_client_secret {
            return Ok(bool::from(stored.as_bytes().ct_eq(secret.as_bytes())));
        }
        let fingerprint = self.fingerprint(&application.client_id, secret, stored);
        if fingerprint.is_some_and(|fp| self.is_remembered(&fp)) {
            return Ok(true);
        }
        let verification = self
            .hasher
            .verify(secret.to_owned(), Some(stored.clone()))
            .await?;
        if !verification.matches {
            return Ok(false);
        }
        let mut current = stored.clone();
        if verification.needs_upgrade {
            // A DOT pbkdf2 secret becomes argon2id on its first successful use.
            let upgraded = self.hasher.hash(secret.to_owned()).await?;
            let new = Application {
                client_secret: upgraded.clone(),
                ..application.clone()
            };
            // Unless the application changed meanwhile (its next use upgrades it then).
            if store.replace_application(application, &new).await? == Replaced::Done {
                current = upgraded;
            }
        }
        if let Some(fingerprint) = self.fingerprint(&application.client_id, secret, &current) {
            self.remember(fingerprint);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(raw: &str) -> Params {
        Params::parse(raw).unwrap()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = basic("my%20client", "p%3Ass+word");
        let client = presented_client(Some(&header), &params("grant_type=x"))
            .unwrap()
            .unwrap();
        assert_eq!(client.client_id, "my client");
        assert_eq!(client.secret.as_deref(), Some("p:ss word"));
        assert_eq!(client.method, AuthMethod::Basic);
    }

    #[test]
    fn a_nul_in_basic_credentials_is_malformed() {
        for header in [basic("a%00b", "secret"), basic("client", "se%00cret")] {
            let refused = presented_client(Some(&header), &params("")).unwrap_err();
            assert!(
                matches!(
                    refused,
                    OAuthError::InvalidClient {
                        used_basic: true,
                        ..
                    }
                ),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn post_none_and_conflicts() {
        let post = presented_client(None, &params("client_id=a&client_secret=b"))
            .unwrap()
            .unwrap();
        assert_eq!(post.method, AuthMethod::Post);
        let none = presented_client(None, &params("client_id=a"))
            .unwrap()
            .unwrap();
        assert_eq!(none.method, AuthMethod::None);
        assert!(
            presented_client(None, &params("grant_type=x"))
                .unwrap()
                .is_none()
        );
        let header = basic("a", "b");
        assert!(matches!(
            presented_client(Some(&header), &params("client_secret=b")),
            Err(OAuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            presented_client(Some(&header), &params("client_id=other")),
            Err(OAuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            presented_client(Some("Basic !!!"), &params("")),
            Err(OAuthError::InvalidClient {
                used_basic: true,
                ..
            })
        ));
    }
}
