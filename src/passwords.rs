//! Password and client-secret hashes.
//!
//! New hashes are argon2id, written in Django's encoding (`argon2$argon2id$v=19$...`, the PHC
//! string behind Django's algorithm name) so that `dumpdata` output loads back into Django.
//! Django's `pbkdf2_sha256`, `pbkdf2_sha1` and `argon2` hashes verify as they are and are
//! reported as needing an upgrade, which the caller does after a successful login.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PasswordError {
    #[error("unsupported password hash format {0:?}")]
    UnsupportedFormat(String),
    #[error("malformed {0} password hash")]
    Malformed(&'static str),
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// The prefix Django writes before an argon2 PHC string.
const DJANGO_ARGON2: &str = "argon2";

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The hash is not argon2id with the current parameters; re-hash after a match.
    pub needs_upgrade: bool,
}

impl Verification {
    const NO_MATCH: Self = Self {
        matches: false,
        needs_upgrade: false,
    };
}

/// argon2id with 9 MiB, 4 passes, 1 lane: one of OWASP's equivalent recommended settings
/// (m=19 MiB/t=2 costs the same time for twice the memory). A server holds one working buffer
/// per concurrent hash, so the smaller memory keeps its footprint down under a login flood.
const M_COST_KIB: u32 = 9 * 1024;
const T_COST: u32 = 4;
const P_COST: u32 = 1;

fn current_params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default()
}

/// Argon2's working memory, kept between computations. Allocating 19 MiB per hash from
/// whichever blocking thread runs it makes glibc keep that much per thread arena (RSS grew past
/// 200 MiB under a login flood); a few reused buffers keep it to `permits × 19 MiB`.
pub type Argon2Memory = Vec<Block>;

/// Hashes with argon2id and the current parameters, in Django's encoding.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    hash_with(password, &mut Argon2Memory::new())
}

pub fn hash_with(password: &str, memory: &mut Argon2Memory) -> Result<String, PasswordError> {
    let params = current_params();
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        &salt,
        &mut out,
        memory,
    )?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "{DJANGO_ARGON2}$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        b64.encode(salt),
        b64.encode(out)
    ))
}

/// One argon2 computation in `memory`, which grows as the parameters need and is given back
/// to the default size afterwards (an imported hash may ask for far more).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Argon2Memory,
) -> Result<(), PasswordError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let result = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        &mut memory[..blocks],
    );
    let usual = current_params().block_count();
    if memory.len() > usual {
        memory.truncate(usual);
        memory.shrink_to_fit();
    }
    result.map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// A password that can never match, as Django's `make_password(None)`.
pub fn unusable() -> String {
    // Without randomness the marker alone still makes the password unusable.
    format!("!{}", crate::random::token(30).unwrap_or_default())
}

pub fn is_usable(encoded: &str) -> bool {
    !encoded.is_empty() && !encoded.starts_with('!')
}

/// Whether `encoded` is a hash this build can verify (for `loaddata` warnings).
pub fn check_format(encoded: &str) -> Result<(), PasswordError> {
    if !is_usable(encoded) {
        return Ok(());
    }
    parse(encoded).map(|_| ())
}

enum Parsed<'a> {
    Argon2(Box<PasswordHash>),
    Pbkdf2 {
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: &'a str,
        expected: Vec<u8>,
    },
}

#[derive(Clone, Copy)]
enum Pbkdf2Digest {
    Sha256,
    Sha1,
}

fn parse(encoded: &str) -> Result<Parsed<'_>, PasswordError> {
    let algorithm = encoded.split('$').next().unwrap_or_default();
    match algorithm {
        "argon2" => {
            let phc = &encoded[DJANGO_ARGON2.len()..];
            PasswordHash::new(phc)
                .map(|phc| Parsed::Argon2(Box::new(phc)))
                .map_err(|_| PasswordError::Malformed("argon2"))
        }
        "pbkdf2_sha256" | "pbkdf2_sha1" => {
            let (digest, label) = if algorithm == "pbkdf2_sha256" {
                (Pbkdf2Digest::Sha256, "pbkdf2_sha256")
            } else {
                (Pbkdf2Digest::Sha1, "pbkdf2_sha1")
            };
            let mut parts = encoded.split('$').skip(1);
            let (Some(iterations), Some(salt), Some(hash), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(PasswordError::Malformed(label));
            };
            let iterations: u32 = iterations
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(PasswordError::Malformed(label))?;
            let expected = base64::engine::general_purpose::STANDARD
                .decode(hash)
                .map_err(|_| PasswordError::Malformed(label))?;
            if salt.is_empty() || expected.is_empty() {
                return Err(PasswordError::Malformed(label));
            }
            Ok(Parsed::Pbkdf2 {
                digest,
                iterations,
                salt,
                expected,
            })
        }
        // A bare PHC string, as other argon2 tools write it.
        "" if encoded.starts_with("$argon2") => PasswordHash::new(encoded)
            .map(|phc| Parsed::Argon2(Box::new(phc)))
            .map_err(|_| PasswordError::Malformed("argon2")),
        other => Err(PasswordError::UnsupportedFormat(other.to_owned())),
    }
}

/// Checks `password` against a stored hash in any supported format. Malformed, unsupported and
/// unusable hashes never match.
pub fn verify(password: &str, encoded: &str) -> Verification {
    verify_with(password, encoded, &mut Argon2Memory::new())
}

pub fn verify_with(password: &str, encoded: &str, memory: &mut Argon2Memory) -> Verification {
    if !is_usable(encoded) {
        return Verification::NO_MATCH;
    }
    match parse(encoded) {
        Err(_) => Verification::NO_MATCH,
        Ok(Parsed::Argon2(phc)) => {
            let matches = verify_argon2(password, &phc, memory).unwrap_or(false);
            let wanted = current_params();
            let needs_upgrade = phc.algorithm.as_str() != "argon2id"
                || !encoded.starts_with(DJANGO_ARGON2)
                || Params::try_from(phc.as_ref()).map_or(true, |params| {
                    params.m_cost() != wanted.m_cost()
                        || params.t_cost() != wanted.t_cost()
                        || params.p_cost() != wanted.p_cost()
                });
            Verification {
                matches,
                needs_upgrade,
            }
        }
        Ok(Parsed::Pbkdf2 {
            digest,
            iterations,
            salt,
            expected,
        }) => {
            let mut derived = vec![0u8; expected.len()];
            match digest {
                Pbkdf2Digest::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut derived,
                ),
                Pbkdf2Digest::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut derived,
                ),
            }
            Verification {
                matches: bool::from(derived.ct_eq(&expected)),
                needs_upgrade: true,
            }
        }
    }
}

fn verify_argon2(password: &str, phc: &PasswordHash, memory: &mut Argon2Memory) -> Option<bool> {
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).ok()?;
    let version = match phc.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::V0x10,
    };
    let params = Params::try_from(phc).ok()?;
    let salt = phc.salt.as_ref()?;
    let expected = phc.hash.as_ref()?;
    let mut out = vec![0u8; expected.len()];
    compute(algorithm, version, params, password, salt, &mut out, memory).ok()?;
    Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

/// Burns the time of a real verification, so that an unknown user or client costs what a
/// known one does.
pub fn dummy_verify(password: &str, memory: &mut Argon2Memory) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("oxidot dummy password").unwrap_or_default());
    let _ = verify_with(password, dummy, memory);
}

/// Runs hash work off the async executor, at most `permits` at a time, so a flood of logins or
/// bad client secrets cannot take every worker thread; each computation borrows one of the
/// reused argon2 memory buffers.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Argon2Memory>>>,
    /// Hashes waiting for a permit (the `argon2_queue_depth` metric).
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl Hasher {
    pub fn new(max_concurrent: usize) -> Self {
        let max = if max_concurrent == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            max_concurrent
        };
        Self {
            permits: Arc::new(Semaphore::new(max)),
            buffers: Arc::new(Mutex::new(Vec::new())),
            waiting: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Argon2Memory) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        use std::sync::atomic::Ordering;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.map_err(|error| PasswordError::Hashing(error.to_string()))?;
        let mut memory = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut buffers| buffers.pop())
            .unwrap_or_default();
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            if let Ok(mut buffers) = buffers.lock() {
                buffers.push(memory);
            }
            result
        })
        .await
        .map_err(|error| PasswordError::Hashing(error.to_string()))
    }

    /// Hashes waiting for a slot right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Verifies against `encoded`, or burns a dummy verification when there is no hash to check
    /// (unknown user), so both cost the same.
    pub async fn verify(
        &self,
        password: String,
        encoded: Option<String>,
    ) -> Result<Verification, PasswordError> {
        self.run(move |memory| match encoded {
            Some(encoded) => verify_with(&password, &encoded, memory),
            None => {
                dummy_verify(&password, memory);
                Verification::NO_MATCH
            }
        })
        .await
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move |memory| hash_with(&password, memory)).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_hashes_are_django_argon2id_and_verify() {
        let encoded = hash("admin123").unwrap();
        assert!(encoded.starts_with("argon2$argon2id$v=19$m=9216,t=4,p=1$"));
        assert_eq!(
            verify("admin123", &encoded),
            Verification {
                matches: true,
                needs_upgrade: false
            }
        );
        assert!(!verify("admin124", &encoded).matches);
        // The PHC part is what any argon2 implementation verifies.
        use argon2::password_hash::PasswordVerifier as _;
        let phc = PasswordHash::new(&encoded["argon2".len()..]).unwrap();
        // The crate's default parameters differ; the hash carries its own.
        assert!(Argon2::default().verify_password(b"admin123", &phc).is_ok());
    }

    #[test]
    fn memory_for_large_imported_parameters_is_given_back() {
        use argon2::password_hash::PasswordHasher as _;
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(65_536, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap();
        let mut memory = Argon2Memory::new();
        assert!(verify_with("pw", &format!("argon2{big}"), &mut memory).matches);
        assert_eq!(memory.len(), current_params().block_count());
    }

    #[test]
    fn django_pbkdf2_sha256_from_a_real_dump_verifies() {
        // From the DOT 3.4.1 sample dump: admin / admin123.
        let encoded = "pbkdf2_sha256$320000$jShaPNnaLGJZp7QnpZ3Tzu$fZo5a5iCbnPlmiITHowRByYRBabqshQD41lRY8CFnF4=";
        let result = verify("admin123", encoded);
        assert!(result.matches);
        assert!(result.needs_upgrade);
        assert!(!verify("wrong", encoded).matches);
    }

    #[test]
    fn django_pbkdf2_sha1_verifies() {
        // Same layout as pbkdf2_sha256 with SHA-1 and a 20-byte key.
        let mut key = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"secret", b"salty", 1000, &mut key);
        let encoded = format!(
            "pbkdf2_sha1$1000$salty${}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        assert!(verify("secret", &encoded).matches);
        assert!(!verify("Secret", &encoded).matches);
    }

    #[test]
    fn argon2i_and_other_parameters_need_upgrade() {
        use argon2::password_hash::PasswordHasher as _;
        let phc = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(512, 2, 2, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap();
        let encoded = format!("argon2{phc}");
        let result = verify("pw", &encoded);
        assert!(result.matches);
        assert!(result.needs_upgrade);
    }

    #[test]
    fn unusable_malformed_and_unknown_hashes_never_match() {
        assert!(!verify("x", &unusable()).matches);
        assert!(!verify("x", "").matches);
        assert!(!verify("x", "pbkdf2_sha256$notanumber$salt$aGFzaA==").matches);
        assert!(!verify("x", "md5$salt$hash").matches);
        assert!(matches!(
            check_format("md5$salt$hash"),
            Err(PasswordError::UnsupportedFormat(_))
        ));
        assert!(check_format("pbkdf2_sha256$1$s$").is_err());
        assert!(check_format(&unusable()).is_ok());
    }
}
