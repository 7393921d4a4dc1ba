//! The OAuth 2.0 protocol, framework-free: client authentication, scopes, the token endpoint's
//! grants, introspection, revocation and bearer-token checks. `web` turns HTTP into calls here
//! and `OAuthError`s into RFC 6749 responses.

mod authorize;
mod client_auth;
mod code_flow;
mod device;
mod error;
mod openid;
pub mod pkce;
pub mod redirect;
pub(crate) mod scope;
mod token_admin;
mod tokens;

pub use authorize::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeFailure, ResponseMode, ResponseType,
};
pub use client_auth::{AuthMethod, ClientAuthenticator, PresentedClient, presented_client};
pub use device::{DeviceAuthorization, DeviceRequest, display_user_code, normalize_user_code};
pub use error::{BearerError, OAuthError};
pub use openid::{ClaimsRequest, IdTokenContext, IdTokenSigner, application_refusal, is_openid};
pub use scope::{has_scope, resolve_scope};
pub use token_admin::AuthorizedApplication;
pub use tokens::{Introspection, OAuth, TokenResponse};
