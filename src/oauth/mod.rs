//! The OAuth 2.0 protocol, framework-free: client authentication, scopes, the token endpoint's
//! grants, introspection, revocation and bearer-token checks. `web` turns HTTP into calls here
//! and `OAuthError`s into RFC 6749 responses.

mod client_auth;
mod error;
mod scope;
mod tokens;

pub use client_auth::{AuthMethod, ClientAuthenticator, PresentedClient, presented_client};
pub use error::{BearerError, OAuthError};
pub use scope::{has_scope, resolve_scope};
pub use tokens::{Introspection, OAuth, TokenResponse};
