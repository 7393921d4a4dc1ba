//! ID token signing keys: one signing key per asymmetric algorithm at any time, every key
//! published in JWKS before it signs and until the last ID token it signed has expired.
//!
//! Key states are derived from timestamps rather than stored as a state field, so a key that
//! was rotated in activates on its own when its time comes, with no scheduler and no reload.

use std::sync::{Arc, RwLock};

use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::oidc::sealing::{KeySealer, SealError, is_sealed, unseal};
use crate::store::{Algorithm, KeyStorage, SharedStorage, SigningKey, StoreError, Timestamp};

/// The asymmetric algorithms oxidot keeps keys for (HS256 signs with the client's secret).
pub const KEY_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

const RSA_BITS: u32 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key material: {0}")]
    Jose(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Seal(#[from] SealError),
}

fn jose(error: josekit::JoseError) -> KeyError {
    KeyError::Jose(error.to_string())
}

/// A stored key, parsed once.
pub struct LoadedKey {
    pub record: SigningKey,
    pub signer: Box<dyn JwsSigner>,
    pub verifier: Box<dyn JwsVerifier>,
    /// The public JWK as published (with `kid`, `use`, `alg`).
    pub public: Map<String, Value>,
}

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published; signs once rotated in (or from `activates`, when that is still ahead).
    Waiting,
    Signing,
    /// No longer signs; published until `published_until`.
    Retired {
        published_until: Timestamp,
    },
}

/// The keys as of the last load, with the rules that read them.
pub struct Keys {
    loaded: Vec<LoadedKey>,
    id_token_lifetime: u64,
}

impl Keys {
    fn load(
        records: Vec<SigningKey>,
        id_token_lifetime: u64,
        sealer: Option<&KeySealer>,
    ) -> Result<Self, KeyError> {
        let mut loaded = Vec::with_capacity(records.len());
        for record in records {
            loaded.push(load_key(record, sealer)?);
        }
        Ok(Self {
            loaded,
            id_token_lifetime,
        })
    }

    pub fn all(&self) -> &[LoadedKey] {
        &self.loaded
    }

    /// The key that signs for `algorithm` at `now`: the most recently activated live one.
    pub fn signing(&self, algorithm: Algorithm, now: Timestamp) -> Option<&LoadedKey> {
        self.loaded
            .iter()
            .filter(|key| key.record.algorithm == algorithm)
            .filter(|key| key.record.activates.is_some_and(|at| at <= now))
            .filter(|key| key.record.retired.is_none_or(|at| at > now))
            .max_by_key(|key| (key.record.activates, key.record.created))
    }

    /// Where `key` stands at `now`. A rotation retires the key it replaces at the moment its
    /// successor activates, so "retired" is the one way a key stops signing.
    pub fn state(&self, key: &SigningKey, now: Timestamp) -> KeyState {
        if let Some(retired) = key.retired.filter(|at| *at <= now) {
            let signed = key.activates.is_some_and(|activates| activates < retired);
            return KeyState::Retired {
                published_until: if signed {
                    retired.plus_seconds(self.id_token_lifetime)
                } else {
                    retired
                },
            };
        }
        match key.activates {
            Some(at) if at <= now => KeyState::Signing,
            _ => KeyState::Waiting,
        }
    }

    pub fn is_published(&self, key: &SigningKey, now: Timestamp) -> bool {
        match self.state(key, now) {
            KeyState::Retired { published_until } => now < published_until,
            _ => true,
        }
    }

    /// The JWKS document: every published key.
    pub fn jwks(&self, now: Timestamp) -> Value {
        let keys: Vec<Value> = self
            .loaded
            .iter()
            .filter(|key| self.is_published(&key.record, now))
            .map(|key| Value::Object(key.public.clone()))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Any key oxidot ever stored, for checking its own ID tokens (`id_token_hint`).
    pub fn by_kid(&self, kid: &str) -> Option<&LoadedKey> {
        self.loaded.iter().find(|key| key.record.kid == kid)
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    algorithm.as_str()
}

fn load_key(record: SigningKey, sealer: Option<&KeySealer>) -> Result<LoadedKey, KeyError> {
    let private = unseal(&record.private_jwk, sealer)?;
    let jwk = Jwk::from_bytes(private.as_bytes()).map_err(jose)?;
    let public_jwk = jwk.to_public_key().map_err(jose)?;
    let (signer, verifier): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>) = match record.algorithm {
        Algorithm::RS256 => (
            Box::new(RS256.signer_from_jwk(&jwk).map_err(jose)?),
            Box::new(RS256.verifier_from_jwk(&public_jwk).map_err(jose)?),
        ),
        Algorithm::ES256 => (
            Box::new(ES256.signer_from_jwk(&jwk).map_err(jose)?),
            Box::new(ES256.verifier_from_jwk(&public_jwk).map_err(jose)?),
        ),
        Algorithm::EdDSA => (
            Box::new(EdDSA.signer_from_jwk(&jwk).map_err(jose)?),
            Box::new(EdDSA.verifier_from_jwk(&public_jwk).map_err(jose)?),
        ),
        other => {
            return Err(KeyError::Jose(format!(
                "{:?} keys are not kept in the key store",
                other.as_str()
            )));
        }
    };
    let mut public = Map::new();
    for name in ["kty", "crv", "n", "e", "x", "y"] {
        if let Some(value) = public_jwk.parameter(name) {
            public.insert(name.to_owned(), value.clone());
        }
    }
    public.insert("kid".to_owned(), Value::String(record.kid.clone()));
    public.insert("use".to_owned(), Value::String("sig".to_owned()));
    public.insert(
        "alg".to_owned(),
        Value::String(algorithm_name(record.algorithm).to_owned()),
    );
    Ok(LoadedKey {
        record,
        signer,
        verifier,
        public,
    })
}

/// RFC 7638: SHA-256 over the required public members in lexicographic order, base64url.
pub fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    use base64::Engine as _;
    let members: &[&str] = match jwk.key_type() {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        other => return Err(KeyError::Jose(format!("no thumbprint for {other:?} keys"))),
    };
    let mut canonical = Map::new();
    for name in members {
        let value = jwk
            .parameter(name)
            .ok_or_else(|| KeyError::Jose(format!("the key has no {name:?}")))?;
        canonical.insert((*name).to_owned(), value.clone());
    }
    // serde_json's map keeps keys sorted and writes no whitespace: exactly RFC 7638's form.
    let text = serde_json::to_string(&canonical).map_err(|e| KeyError::Jose(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

fn generate_jwk(algorithm: Algorithm) -> Result<Jwk, KeyError> {
    match algorithm {
        Algorithm::RS256 => Jwk::generate_rsa_key(RSA_BITS).map_err(jose),
        Algorithm::ES256 => Jwk::generate_ec_key(EcCurve::P256).map_err(jose),
        Algorithm::EdDSA => Jwk::generate_ed_key(EdCurve::Ed25519).map_err(jose),
        other => Err(KeyError::Refused(format!(
            "{:?} is not an algorithm oxidot keeps keys for (RS256, ES256, EdDSA)",
            other.as_str()
        ))),
    }
}

/// A key as it is stored: sealed when a key-encryption secret is configured.
fn for_storage(mut record: SigningKey, sealer: Option<&KeySealer>) -> Result<SigningKey, KeyError> {
    if let Some(sealer) = sealer
        && !is_sealed(&record.private_jwk)
    {
        record.private_jwk = sealer.seal(&record.private_jwk)?;
    }
    Ok(record)
}

fn new_record(
    jwk: &Jwk,
    algorithm: Algorithm,
    now: Timestamp,
    activates: Option<Timestamp>,
    configured: bool,
) -> Result<SigningKey, KeyError> {
    let map: &Map<String, Value> = jwk.as_ref();
    let text = serde_json::to_string(map).map_err(|e| KeyError::Jose(e.to_string()))?;
    Ok(SigningKey {
        kid: thumbprint(jwk)?,
        algorithm,
        private_jwk: text,
        created: now,
        activates,
        retired: None,
        configured,
    })
}

/// The RSA key given in the configuration, as a JWK.
fn configured_jwk(pem: &str) -> Result<Jwk, KeyError> {
    use josekit::jwk::KeyPair as _;
    let pair = josekit::jwk::alg::rsa::RsaKeyPair::from_pem(pem.as_bytes()).map_err(jose)?;
    Ok(pair.to_jwk_key_pair())
}

/// What `oxidot keys` and start-up may do, and the parsed keys the server signs with.
#[derive(Clone)]
pub struct KeyRing {
    store: SharedStorage,
    current: Arc<RwLock<Arc<Keys>>>,
    /// The key ring version the loaded keys are from.
    version: Arc<std::sync::atomic::AtomicU64>,
    id_token_lifetime: u64,
    jwks_max_age: u64,
    sealer: Option<KeySealer>,
}

impl KeyRing {
    /// Loads the keys, first making sure every algorithm has a signing key: the configured
    /// RSA key (which replaces any other RS256 signer), else the stored ones, else new ones.
    /// Keys stored unsealed are sealed when `sealer` is given.
    pub async fn open(
        store: &SharedStorage,
        configured_rsa_pem: Option<&str>,
        id_token_lifetime: u64,
        jwks_max_age: u64,
        now: Timestamp,
        sealer: Option<KeySealer>,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            store: store.clone(),
            current: Arc::new(RwLock::new(Arc::new(Keys::load(
                Vec::new(),
                id_token_lifetime,
                None,
            )?))),
            version: Arc::default(),
            id_token_lifetime,
            jwks_max_age,
            sealer: sealer.clone(),
        };
        let existing = store.signing_keys().await?;
        // Keys written before a secret was configured are sealed now (first, so that the
        // changes below, written after, win).
        let mut changes: Vec<SigningKey> = existing
            .iter()
            .filter(|key| sealer.is_some() && !is_sealed(&key.private_jwk))
            .cloned()
            .collect();
        let configured = configured_rsa_pem
            .map(|pem| {
                let jwk = configured_jwk(pem)?;
                new_record(&jwk, Algorithm::RS256, now, Some(now), true)
            })
            .transpose()?;
        if let Some(configured) = &configured {
            match existing.iter().find(|key| key.kid == configured.kid) {
                Some(stored) if stored.retired.is_none() && stored.activates.is_some() => {}
                Some(stored) => changes.push(SigningKey {
                    activates: Some(now),
                    retired: None,
                    configured: true,
                    ..stored.clone()
                }),
                None => changes.push(configured.clone()),
            }
        }
        let keys = Keys::load(existing.clone(), id_token_lifetime, sealer.as_ref())?;
        for key in &existing {
            let replaced_by_configuration = key.algorithm == Algorithm::RS256
                && configured
                    .as_ref()
                    .is_some_and(|configured| configured.kid != key.kid);
            // A key that came from the configuration and is no longer there stops signing.
            let dropped_from_configuration = key.configured && configured.is_none();
            if (replaced_by_configuration || dropped_from_configuration)
                && key.retired.is_none()
                && !matches!(keys.state(key, now), KeyState::Retired { .. })
            {
                changes.push(SigningKey {
                    retired: Some(now),
                    ..key.clone()
                });
            }
        }
        for algorithm in KEY_ALGORITHMS {
            if algorithm == Algorithm::RS256 && configured.is_some() {
                continue;
            }
            let has_signer = existing.iter().any(|key| {
                key.algorithm == algorithm
                    && key.activates.is_some()
                    && key.retired.is_none()
                    && !changes
                        .iter()
                        .any(|c| c.kid == key.kid && c.retired.is_some())
            });
            if !has_signer {
                let jwk = generate_jwk(algorithm)?;
                changes.push(new_record(&jwk, algorithm, now, Some(now), false)?);
                tracing::info!(
                    algorithm = algorithm.as_str(),
                    "generated an ID token signing key"
                );
            }
        }
        if !changes.is_empty() {
            let changes = changes
                .into_iter()
                .map(|key| for_storage(key, sealer.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            store.save_signing_keys(changes).await?;
        }
        ring.reload().await?;
        Ok(ring)
    }

    /// Re-reads the keys from the store (after `oxidot keys` changed them, here or through
    /// another instance).
    pub async fn reload(&self) -> Result<(), KeyError> {
        let version = self.store.key_ring_version().await?;
        let records = self.store.signing_keys().await?;
        let keys = Arc::new(Keys::load(
            records,
            self.id_token_lifetime,
            self.sealer.as_ref(),
        )?);
        if let Ok(mut current) = self.current.write() {
            *current = keys;
        }
        self.version
            .store(version, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Reloads the keys whenever the key ring's version changes, checking every `every`: a
    /// rotation made through another instance (or `oxidot keys` on a shared database) is
    /// used and published here within that time. Stops when the ring is dropped.
    pub fn follow(&self, every: std::time::Duration) {
        let ring = self.clone();
        let alive = Arc::downgrade(&self.current);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if alive.upgrade().is_none() {
                    return;
                }
                let seen = ring.version.load(std::sync::atomic::Ordering::Relaxed);
                match ring.store.key_ring_version().await {
                    Ok(version) if version != seen => {
                        if let Err(error) = ring.reload().await {
                            tracing::warn!("signing keys: {error}");
                        } else {
                            tracing::info!("signing keys reloaded: changed elsewhere");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!("signing keys: {error}"),
                }
            }
        });
    }

    pub fn keys(&self) -> Arc<Keys> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn jwks_max_age(&self) -> u64 {
        self.jwks_max_age
    }

    /// The key administration (generate, rotate, retire) on the ring's store and settings.
    pub fn admin(&self) -> KeyAdmin<'_> {
        KeyAdmin {
            store: &*self.store,
            id_token_lifetime: self.id_token_lifetime,
            jwks_max_age: self.jwks_max_age,
            sealer: self.sealer.as_ref(),
        }
    }

    pub fn sealer(&self) -> Option<&KeySealer> {
        self.sealer.as_ref()
    }
}

/// A key as `oxidot keys list` and the admin page show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRow {
    pub kid: String,
    pub algorithm: &'static str,
    pub state: String,
    pub configured: bool,
    pub created: Timestamp,
    pub activates: Option<Timestamp>,
    pub retired: Option<Timestamp>,
    /// The public JWK as JWKS publishes it (never the private parts).
    pub public: Value,
}

/// The key operations behind `oxidot keys`, on the store alone (the server reloads after).
pub struct KeyAdmin<'a> {
    pub store: &'a dyn KeyStorage,
    pub id_token_lifetime: u64,
    pub jwks_max_age: u64,
    /// Seals new keys and opens stored ones (none: keys are stored unencrypted).
    pub sealer: Option<&'a KeySealer>,
}

impl KeyAdmin<'_> {
    async fn keys(&self) -> Result<Keys, KeyError> {
        let records = self.store.signing_keys().await?;
        Keys::load(records, self.id_token_lifetime, self.sealer)
    }

    fn stored(&self, record: SigningKey) -> Result<SigningKey, KeyError> {
        for_storage(record, self.sealer)
    }

    /// Every key with where it stands, by algorithm then age.
    pub async fn rows(&self, now: Timestamp) -> Result<Vec<KeyRow>, KeyError> {
        let keys = self.keys().await?;
        let mut rows: Vec<&LoadedKey> = keys.all().iter().collect();
        rows.sort_by_key(|key| (key.record.algorithm.as_str(), key.record.created));
        Ok(rows
            .into_iter()
            .map(|key| {
                let record = &key.record;
                let state = match keys.state(record, now) {
                    KeyState::Waiting => match record.activates {
                        Some(at) => format!("published, signs from {}", at.to_rfc3339()),
                        None => "published, waiting for `oxidot keys rotate`".to_owned(),
                    },
                    KeyState::Signing => "signing".to_owned(),
                    KeyState::Retired { published_until } if published_until > now => {
                        format!("retired, published until {}", published_until.to_rfc3339())
                    }
                    KeyState::Retired { .. } => "retired, no longer published".to_owned(),
                };
                KeyRow {
                    kid: record.kid.clone(),
                    algorithm: record.algorithm.as_str(),
                    state,
                    configured: record.configured,
                    created: record.created,
                    activates: record.activates,
                    retired: record.retired,
                    public: Value::Object(key.public.clone()),
                }
            })
            .collect())
    }

    /// One line per key: kid, algorithm, state.
    pub async fn list(&self, now: Timestamp) -> Result<String, KeyError> {
        let mut out = String::new();
        for row in self.rows(now).await? {
            let origin = if row.configured {
                " (from oidc_rsa_private_key)"
            } else {
                ""
            };
            out.push_str(&format!(
                "{}  {:<5}  {}{origin}\n",
                row.kid, row.algorithm, row.state
            ));
        }
        Ok(out)
    }

    /// Publishes a new key that signs only once rotated in.
    pub async fn generate(&self, algorithm: Algorithm, now: Timestamp) -> Result<String, KeyError> {
        let jwk = tokio::task::spawn_blocking(move || generate_jwk(algorithm))
            .await
            .map_err(|error| KeyError::Jose(error.to_string()))??;
        let record = self.stored(new_record(&jwk, algorithm, now, None, false)?)?;
        let kid = record.kid.clone();
        self.store.save_signing_keys(vec![record]).await?;
        Ok(format!(
            "Generated {} key {kid}: published in JWKS now; `oxidot keys rotate --algorithm {}` \
             makes it the signing key.",
            algorithm.as_str(),
            algorithm.as_str()
        ))
    }

    /// Makes the newest waiting key of `algorithm` the signing key (generating one if there is
    /// none). It activates once it has been published for `oidc_jwks_max_age_seconds`, so every
    /// cached JWKS knows it by then — or at once with `immediately` (a compromised key); the key
    /// it replaces is retired at that moment and stays published until its ID tokens expire.
    pub async fn rotate(
        &self,
        algorithm: Algorithm,
        immediately: bool,
        now: Timestamp,
    ) -> Result<String, KeyError> {
        let keys = self.keys().await?;
        let current: Vec<SigningKey> = keys
            .all()
            .iter()
            .map(|key| &key.record)
            .filter(|key| key.algorithm == algorithm && key.activates.is_some())
            .filter(|key| key.retired.is_none_or(|at| at > now))
            .cloned()
            .collect();
        if current.iter().any(|key| key.configured) {
            return Err(KeyError::Refused(
                "the RS256 key comes from oidc_rsa_private_key (OIDC_RSA_PRIVATE_KEY): change it \
                 there; the previous key stays published until its ID tokens expire"
                    .to_owned(),
            ));
        }
        let waiting = keys
            .all()
            .iter()
            .filter(|key| key.record.algorithm == algorithm)
            .filter(|key| key.record.activates.is_none() && key.record.retired.is_none())
            .max_by_key(|key| key.record.created)
            .map(|key| key.record.clone());
        let mut record = match waiting {
            Some(record) => record,
            None => {
                let jwk = tokio::task::spawn_blocking(move || generate_jwk(algorithm))
                    .await
                    .map_err(|error| KeyError::Jose(error.to_string()))??;
                self.stored(new_record(&jwk, algorithm, now, None, false)?)?
            }
        };
        let activates = if immediately {
            now
        } else {
            record.created.plus_seconds(self.jwks_max_age).max(now)
        };
        record.activates = Some(activates);
        let kid = record.kid.clone();
        let mut changed: Vec<SigningKey> = current
            .into_iter()
            .map(|key| SigningKey {
                retired: Some(activates),
                ..key
            })
            .collect();
        changed.push(record);
        self.store.save_signing_keys(changed).await?;
        let when = if activates <= now {
            "now".to_owned()
        } else {
            format!(
                "at {} (once every cached JWKS has it)",
                activates.to_rfc3339()
            )
        };
        Ok(format!(
            "{} key {kid} signs {when}; the key it replaces stays published until its ID tokens \
             expire.",
            algorithm.as_str()
        ))
    }

    /// Withdraws a key that has not signed yet, or confirms one already retired. A signing key
    /// is replaced with `rotate` (`--immediately` when it is compromised), never just removed:
    /// its algorithm would be left without a key.
    pub async fn retire(&self, kid: &str, now: Timestamp) -> Result<String, KeyError> {
        let keys = self.keys().await?;
        let Some(key) = keys.by_kid(kid) else {
            return Err(KeyError::Refused(format!("there is no key {kid:?}")));
        };
        let mut record = key.record.clone();
        if record.configured {
            return Err(KeyError::Refused(
                "this key comes from oidc_rsa_private_key: remove or replace it there".to_owned(),
            ));
        }
        match keys.state(&record, now) {
            KeyState::Retired { published_until } => Ok(format!(
                "Key {kid} is already retired{}.",
                if published_until > now {
                    format!(" (published until {})", published_until.to_rfc3339())
                } else {
                    String::new()
                }
            )),
            KeyState::Signing => Err(KeyError::Refused(format!(
                "{kid} is the {} signing key: `oxidot keys rotate --algorithm {}` replaces it \
                 (add --immediately if it is compromised)",
                record.algorithm.as_str(),
                record.algorithm.as_str()
            ))),
            KeyState::Waiting => {
                record.retired = Some(now);
                self.store.save_signing_keys(vec![record]).await?;
                Ok(format!(
                    "Key {kid} withdrawn: it never signed and leaves JWKS now."
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another instance (here: another ring on the same store) adds a key; a following ring
    /// publishes it without being told.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_following_ring_picks_up_keys_changed_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = crate::store::Store::open(&dir.path().join("keys.redb"), 1 << 20).unwrap();
        let store: SharedStorage = std::sync::Arc::new(file);
        let now = Timestamp(1_700_000_000_000_000);
        let here = KeyRing::open(&store, None, 3600, 60, now, None)
            .await
            .unwrap();
        let published = |ring: &KeyRing| ring.keys().jwks(now)["keys"].as_array().unwrap().len();
        let before = published(&here);
        here.follow(std::time::Duration::from_millis(10));
        let elsewhere = KeyAdmin {
            store: &*store,
            id_token_lifetime: 3600,
            jwks_max_age: 60,
            sealer: None,
        };
        elsewhere.generate(Algorithm::ES256, now).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while published(&here) == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            published(&here),
            before + 1,
            "the new key is published here"
        );
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
