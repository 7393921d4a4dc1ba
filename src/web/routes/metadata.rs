//! RFC 8414 authorization server metadata, at `/o/.well-known/oauth-authorization-server` and
//! at the RFC's own location, `/.well-known/oauth-authorization-server/o`. Every value is
//! true of what this server does; OpenID Connect's document comes with ID tokens.

use rocket::http::Header;
use rocket::{Responder, Route, State, get, routes};
use serde_json::{Value, json};

use crate::web::oauth_response::OAuthJson;
use crate::web::{AppState, RequestOrigin};

#[derive(Responder)]
struct Metadata {
    body: OAuthJson<Value>,
    cors: Header<'static>,
}

fn metadata(state: &AppState, origin: &RequestOrigin) -> Metadata {
    let issuer = state.issuer(origin);
    let provider = &state.settings.oauth2_provider;
    let client_auth = ["client_secret_basic", "client_secret_post", "none"];
    let pkce: Vec<&str> = if provider.pkce_plain_allowed {
        vec!["S256", "plain"]
    } else {
        vec!["S256"]
    };
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize/"),
        "token_endpoint": format!("{issuer}/token/"),
        "revocation_endpoint": format!("{issuer}/revoke_token/"),
        "introspection_endpoint": format!("{issuer}/introspect/"),
        "device_authorization_endpoint": format!("{issuer}/device-authorization/"),
        "scopes_supported": provider.scopes.keys().collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "token_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": pkce,
    });
    Metadata {
        body: OAuthJson(body),
        cors: Header::new("Access-Control-Allow-Origin", "*"),
    }
}

#[get("/o/.well-known/oauth-authorization-server")]
fn under_issuer(origin: RequestOrigin, state: &State<AppState>) -> Metadata {
    metadata(state, &origin)
}

#[get("/.well-known/oauth-authorization-server/o")]
fn rfc_8414_location(origin: RequestOrigin, state: &State<AppState>) -> Metadata {
    metadata(state, &origin)
}

pub fn routes() -> Vec<Route> {
    routes![under_issuer, rfc_8414_location]
}
