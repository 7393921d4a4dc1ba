//! RFC 6749 §5.2 errors: `Display` is the error code.

use crate::params::FormError;
use crate::passwords::PasswordError;
use crate::random::RandomError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request")]
    InvalidRequest(String),
    #[error("invalid_client")]
    InvalidClient {
        description: String,
        /// The client tried HTTP Basic, so the answer carries `WWW-Authenticate: Basic`.
        used_basic: bool,
    },
    #[error("invalid_grant")]
    InvalidGrant(String),
    #[error("unauthorized_client")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType(String),
    #[error("invalid_scope")]
    InvalidScope(String),
    /// RFC 8628 §3.5: the user has not decided yet.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polling faster than `interval`; the interval grows by 5 s.
    #[error("slow_down")]
    SlowDown,
    #[error("access_denied")]
    AccessDenied(String),
    #[error("expired_token")]
    ExpiredToken,
    /// Throttled password guessing (HTTP 429 with `Retry-After`).
    #[error("temporarily_unavailable")]
    TooManyAttempts { retry_after: u64 },
    #[error("server_error")]
    Server(String),
    /// The database cannot be reached now (503 with `Retry-After`; the next request may
    /// succeed).
    #[error("temporarily_unavailable")]
    Unavailable(String),
}

impl OAuthError {
    pub fn code(&self) -> String {
        self.to_string()
    }

    /// The `error_description`; internal details stay in the log.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(text)
            | OAuthError::InvalidGrant(text)
            | OAuthError::UnauthorizedClient(text)
            | OAuthError::UnsupportedGrantType(text)
            | OAuthError::InvalidScope(text)
            | OAuthError::AccessDenied(text) => text.clone(),
            OAuthError::AuthorizationPending => {
                "the user has not approved the device yet".to_owned()
            }
            OAuthError::SlowDown => {
                "poll less often: the interval is now 5 seconds longer".to_owned()
            }
            OAuthError::ExpiredToken => "the device code has expired; start again".to_owned(),
            OAuthError::InvalidClient { description, .. } => description.clone(),
            OAuthError::TooManyAttempts { retry_after } => {
                format!("too many failed attempts; try again in {retry_after} seconds")
            }
            OAuthError::Server(_) => "the server could not complete the request".to_owned(),
            OAuthError::Unavailable(_) => {
                "the service is unavailable for a moment; try again".to_owned()
            }
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient { .. } => 401,
            OAuthError::TooManyAttempts { .. } => 429,
            OAuthError::Server(_) => 500,
            OAuthError::Unavailable(_) => 503,
            _ => 400,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => OAuthError::Unavailable(error.to_string()),
            other => OAuthError::Server(other.to_string()),
        }
    }
}

impl From<PasswordError> for OAuthError {
    fn from(error: PasswordError) -> Self {
        OAuthError::Server(error.to_string())
    }
}

impl From<RandomError> for OAuthError {
    fn from(error: RandomError) -> Self {
        OAuthError::Server(error.to_string())
    }
}

impl From<FormError> for OAuthError {
    fn from(error: FormError) -> Self {
        OAuthError::InvalidRequest(error.to_string())
    }
}

/// Why a bearer token was refused at a protected resource (RFC 6750 §3.1).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BearerError {
    #[error("no bearer token was given")]
    Missing,
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("the access token lacks the scope {0:?}")]
    InsufficientScope(String),
    /// A malformed request, e.g. the token sent in two places (RFC 6750 §2).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("server_error")]
    Server(String),
    /// The database cannot be reached now (503).
    #[error("the service is unavailable for a moment; try again")]
    Unavailable(String),
}

impl From<StoreError> for BearerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => BearerError::Unavailable(error.to_string()),
            other => BearerError::Server(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_503_and_other_store_failures_500() {
        let lost = StoreError::Unavailable("connection refused".to_owned());
        let error = OAuthError::from(lost.clone());
        assert_eq!(
            (error.status(), error.code()),
            (503, "temporarily_unavailable".to_owned())
        );
        assert!(
            !error.description().contains("refused"),
            "details stay in the log"
        );
        assert!(matches!(
            BearerError::from(lost),
            BearerError::Unavailable(_)
        ));
        let broken = OAuthError::from(StoreError::Corrupt("bad row".to_owned()));
        assert_eq!(broken.status(), 500);
    }
}
