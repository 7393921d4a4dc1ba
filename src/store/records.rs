//! Typed records as they are kept in the store. They are encoded as MessagePack maps, so a new
//! field with `#[serde(default)]` needs no migration.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::clock::{from_unix_micros, unix_micros};

/// A point in time, kept as microseconds since the Unix epoch (Django keeps microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        Self(unix_micros(at))
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        from_unix_micros(self.0)
    }

    /// As RFC 3339 in UTC, for people (CLI output, pages).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.0.to_string())
    }

    /// Whole seconds since the Unix epoch (JWT `iat`, `exp`, `auth_time`).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn plus_seconds(self, seconds: u64) -> Self {
        let micros = i64::try_from(seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        Self(self.0.saturating_add(micros))
    }
}

/// A Django permission reference: a primary key, or the natural key
/// `[codename, app_label, model]` that `dumpdata --natural-foreign` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Permission {
    Pk(u64),
    Natural(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub username: String,
    /// A hash in Django's encoding (`algorithm$...`); a leading `!` marks an unusable password.
    pub password: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
    pub is_active: bool,
    #[serde(default)]
    pub is_staff: bool,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub last_login: Option<Timestamp>,
    pub date_joined: Timestamp,
    #[serde(default)]
    pub groups: Vec<u64>,
    #[serde(default)]
    pub user_permissions: Vec<Permission>,
}

/// A row of Django's `auth_permission` table, loaded from a dump so that permissions given by
/// primary key can be named (its content type resolved to `app_label` and `model`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionRecord {
    pub codename: String,
    #[serde(default)]
    pub name: String,
    pub app_label: String,
    pub model: String,
}

/// A row of Django's `django_content_type` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentType {
    pub app_label: String,
    pub model: String,
}

#[cfg(test)]
impl User {
    /// An active user with an unusable password, for unit tests.
    pub fn sample(id: u64, username: &str) -> Self {
        User {
            id,
            username: username.to_owned(),
            password: "!".to_owned(),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            last_login: None,
            date_joined: Timestamp(0),
            groups: Vec::new(),
            user_permissions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Confidential,
    Public,
}

/// DOT's grant type names; an application may allow several (DOT allows one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization-code")]
    AuthorizationCode,
    #[serde(rename = "implicit")]
    Implicit,
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "client-credentials")]
    ClientCredentials,
    #[serde(rename = "openid-hybrid")]
    OpenidHybrid,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::Password,
        GrantType::ClientCredentials,
        GrantType::OpenidHybrid,
        GrantType::DeviceCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization-code",
            GrantType::Implicit => "implicit",
            GrantType::Password => "password",
            GrantType::ClientCredentials => "client-credentials",
            GrantType::OpenidHybrid => "openid-hybrid",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == value)
    }

    /// The name people read (DOT's choice labels).
    pub fn label(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "Authorization code",
            GrantType::Implicit => "Implicit",
            GrantType::Password => "Resource owner password-based",
            GrantType::ClientCredentials => "Client credentials",
            GrantType::OpenidHybrid => "OpenID connect hybrid",
            GrantType::DeviceCode => "Device code",
        }
    }
}

/// ID token signing algorithm; empty means the application issues no ID tokens (DOT's "No OIDC
/// support").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Algorithm {
    #[default]
    #[serde(rename = "")]
    None,
    RS256,
    HS256,
    ES256,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::None,
        Algorithm::RS256,
        Algorithm::HS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::None => "",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == value)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub id: u64,
    pub client_id: String,
    /// The owner (a user pk), as DOT's `user` field.
    #[serde(default)]
    pub user: Option<u64>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub client_type: ClientType,
    pub grant_types: Vec<GrantType>,
    /// A Django-encoded hash when `hash_client_secret`, else the secret itself (HS256 needs it).
    #[serde(default)]
    pub client_secret: String,
    #[serde(default = "default_true")]
    pub hash_client_secret: bool,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub skip_authorization: bool,
    pub created: Timestamp,
    pub updated: Timestamp,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_registration_source")]
    pub registration_source: String,
    #[serde(default)]
    pub cimd_expires_at: Option<Timestamp>,
}

impl Application {
    /// A confidential application without grants or URIs, for unit tests.
    #[cfg(test)]
    pub fn sample(id: u64, client_id: &str) -> Self {
        Application {
            id,
            client_id: client_id.to_owned(),
            user: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            client_type: ClientType::Confidential,
            grant_types: Vec::new(),
            client_secret: String::new(),
            hash_client_secret: true,
            name: String::new(),
            skip_authorization: false,
            created: Timestamp(0),
            updated: Timestamp(0),
            algorithm: Algorithm::None,
            allowed_origins: Vec::new(),
            registration_source: default_registration_source(),
            cimd_expires_at: None,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_registration_source() -> String {
    "manual".to_owned()
}

/// The store key of a secret value (session id, token, code), never the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretKey(pub [u8; 32]);

/// Layout of the tokens and codes oxidot mints: a public ordering prefix (a version byte and the
/// issue time in microseconds, 7 bytes big-endian) followed by 32 random bytes (256 bits), all
/// base64url. The prefix goes into the store key, so tokens issued together sit together in the
/// B-tree: a batch of issues, rotations or cleanups rewrites a few adjacent pages instead of one
/// random page per token (the UUIDv7 argument), which is what bounds write throughput on a large
/// store.
pub const ORDERED_TOKEN_VERSION: u8 = 1;
pub const ORDERED_PREFIX_BYTES: usize = 8;
pub const ORDERED_TOKEN_BYTES: usize = ORDERED_PREFIX_BYTES + 32;
const ORDERED_TOKEN_CHARS: usize = (ORDERED_TOKEN_BYTES * 8).div_ceil(6);

impl SecretKey {
    /// SHA-256 of the value: session ids, and tokens imported from DOT (their `token_checksum`).
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }

    /// The key of a presented token or code: the ordering prefix and 24 bytes of the SHA-256
    /// for a token oxidot minted, the plain SHA-256 for anything else (DOT's 30-character
    /// tokens keep the key of their `token_checksum`).
    pub fn of_token(value: &str) -> Self {
        let Some(prefix) = ordering_prefix(value) else {
            return Self::of(value);
        };
        let digest = Sha256::digest(value.as_bytes());
        let mut key = [0u8; 32];
        key[..ORDERED_PREFIX_BYTES].copy_from_slice(&prefix);
        key[ORDERED_PREFIX_BYTES..].copy_from_slice(&digest[..32 - ORDERED_PREFIX_BYTES]);
        Self(key)
    }
}

fn ordering_prefix(value: &str) -> Option<[u8; ORDERED_PREFIX_BYTES]> {
    use base64::Engine as _;
    if value.len() != ORDERED_TOKEN_CHARS {
        return None;
    }
    let mut decoded = [0u8; ORDERED_TOKEN_BYTES];
    let length = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(value, &mut decoded)
        .ok()?;
    if length != ORDERED_TOKEN_BYTES || decoded[0] != ORDERED_TOKEN_VERSION {
        return None;
    }
    let mut prefix = [0u8; ORDERED_PREFIX_BYTES];
    prefix.copy_from_slice(&decoded[..ORDERED_PREFIX_BYTES]);
    Some(prefix)
}

/// A login session. The cookie holds a random id; the store holds only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: u64,
    /// When the user last proved who they are (OIDC `auth_time`).
    pub auth_time: Timestamp,
    pub created: Timestamp,
    pub expires_at: Timestamp,
    /// OIDC session id (`sid`), public, unlike the cookie value.
    pub sid: String,
}

/// Kinds of rows in the expiry index and the token indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExpiringKind {
    Session = 1,
    AccessToken = 2,
    RefreshToken = 3,
    Grant = 4,
    DeviceGrant = 5,
    IdToken = 6,
    /// A refresh token's revocation time (not an expiry): the cleanup deletes revoked tokens
    /// once they are no longer needed for the grace period or reuse detection.
    RevokedRefreshToken = 7,
}

/// Tokens issued from one grant (an authorization code, a password or refresh chain) share a
/// family, so a replay or reuse revokes them all at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FamilyId(pub [u8; 16]);

/// An access token, stored under the SHA-256 of its value (DOT's `token_checksum`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessToken {
    /// None for client-credentials tokens.
    pub user: Option<u64>,
    pub application: u64,
    /// Space-separated, as in the token response.
    pub scope: String,
    pub expires: Timestamp,
    pub created: Timestamp,
    /// The refresh token issued with it, if any.
    #[serde(default)]
    pub refresh_token: Option<[u8; 32]>,
    #[serde(default)]
    pub family: Option<FamilyId>,
    /// The last characters of the value, for admin lists (the value itself is never stored).
    #[serde(default)]
    pub tail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub user: Option<u64>,
    pub application: u64,
    pub scope: String,
    pub created: Timestamp,
    /// When it was revoked or rotated; kept for reuse detection and the grace period.
    #[serde(default)]
    pub revoked: Option<Timestamp>,
    /// The access token issued with it (deleted when either is revoked).
    #[serde(default)]
    pub access_token: Option<[u8; 32]>,
    pub family: FamilyId,
    // No expiry of its own: a refresh token expires `refresh_token_expire_seconds` after it was
    // created, counted with today's setting as DOT counts it (`rules::refresh_token_expires_at`),
    // so imported tokens and a changed setting follow one rule. Records written before schema 4
    // carry an `expires` field, which is ignored.
    #[serde(default)]
    pub tail: String,
}

/// An authorization code (DOT's `Grant`), stored under the SHA-256 of the code. Kept after use
/// until it expires, so a replay is recognised and revokes what the code produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub user: u64,
    pub application: u64,
    /// The redirect URI the authorization request named; the token request must repeat it.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    pub scope: String,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    /// When the user authenticated (OIDC `auth_time`).
    pub auth_time: Timestamp,
    pub created: Timestamp,
    pub expires: Timestamp,
    #[serde(default)]
    pub used: Option<Timestamp>,
    pub family: FamilyId,
    /// The login session's public id (OIDC `sid`).
    #[serde(default)]
    pub sid: Option<String>,
    /// The request's `claims` parameter (OIDC Core §5.5), as validated JSON.
    #[serde(default)]
    pub claims: Option<String>,
}

/// What an OpenID Connect grant keeps for the ID tokens its refreshes issue (OIDC Core §12.2):
/// written once, with the family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcSession {
    pub auth_time: Timestamp,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub claims: Option<String>,
}

/// An ID token signing key. It is published in JWKS from `created`, signs from `activates`
/// (none: published, waiting to be rotated in) until a newer key of its algorithm activates or
/// it is retired, and stays published until every ID token it signed has expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKey {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    pub algorithm: Algorithm,
    /// The private key as a JWK (JSON).
    pub private_jwk: String,
    pub created: Timestamp,
    #[serde(default)]
    pub activates: Option<Timestamp>,
    #[serde(default)]
    pub retired: Option<Timestamp>,
    /// From `oidc_rsa_private_key` (managed by the configuration, not by `oxidot keys`).
    #[serde(default)]
    pub configured: bool,
}

/// What a user approved for an application, for `approval_prompt=auto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub scope: String,
    pub granted: Timestamp,
}

/// Where a device authorization (RFC 8628) stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeviceDecision {
    Pending,
    Approved { user: u64, auth_time: Timestamp },
    Denied,
}

/// A device authorization, stored under the SHA-256 of its device code; its user code is
/// indexed separately (normalised: upper case, no separators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub application: u64,
    pub scope: String,
    pub user_code: String,
    pub decision: DeviceDecision,
    pub created: Timestamp,
    pub expires: Timestamp,
    /// Seconds a client must wait between polls; raised by `slow_down`.
    pub interval: u64,
    #[serde(default)]
    pub last_poll: Option<Timestamp>,
}

/// An issued ID token, as DOT records it (`jti`, lifetime, scope), stored under the SHA-256 of
/// its `jti`. The signed token itself is with the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdToken {
    pub user: Option<u64>,
    pub application: u64,
    pub jti: String,
    pub scope: String,
    pub expires: Timestamp,
    pub created: Timestamp,
}

impl IdToken {
    /// The record of an ID token issued at `now` (DOT keeps them; the cleanup deletes them once
    /// expired), under the key of its `jti`.
    pub fn issued(
        lifetime: u64,
        jti: &str,
        user: u64,
        application: u64,
        scope: &str,
        now: Timestamp,
    ) -> (SecretKey, Self) {
        let record = Self {
            user: Some(user),
            application,
            jti: jti.to_owned(),
            scope: scope.to_owned(),
            expires: now.plus_seconds(lifetime),
            created: now,
        };
        (SecretKey::of_token(jti), record)
    }
}

/// When a periodic task runs (django-celery-beat's interval and crontab schedules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskSchedule {
    /// Every `every` `period`s (`seconds`, `minutes`, `hours`, `days`).
    Interval { every: u64, period: String },
    /// A cron expression with seconds: `second minute hour day-of-month month day-of-week`, UTC.
    Crontab { expression: String },
}

/// How a task's last run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub ok: bool,
    /// The task's report (counts) or its error.
    pub message: String,
    pub started: Timestamp,
    pub duration_millis: u64,
}

/// A periodic task, with django-celery-beat's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicTask {
    /// Unique.
    pub name: String,
    /// The registered task it runs (`clear_tokens`, `debug_task`).
    pub task: String,
    pub schedule: TaskSchedule,
    pub enabled: bool,
    /// Runs once, then disables itself.
    #[serde(default)]
    pub one_off: bool,
    #[serde(default)]
    pub start_time: Option<Timestamp>,
    /// No runs after this time.
    #[serde(default)]
    pub expires: Option<Timestamp>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub last_run_at: Option<Timestamp>,
    #[serde(default)]
    pub total_run_count: u64,
    #[serde(default)]
    pub last_result: Option<TaskOutcome>,
    /// Declared in the configuration (rewritten from it at every start) or made in the admin.
    #[serde(default)]
    pub from_config: bool,
    pub changed: Timestamp,
}
