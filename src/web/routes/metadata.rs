//! What the server publishes about itself: RFC 8414 metadata at
//! `/o/.well-known/oauth-authorization-server` and at the RFC's own location
//! `/.well-known/oauth-authorization-server/o`, OpenID Connect Discovery at
//! `/o/.well-known/openid-configuration`, and the signing keys at `/o/.well-known/jwks.json`.
//! Anyone may read them, from any origin.

use rocket::http::{ContentType, Header, Status};
use rocket::{Responder, Route, State, get, routes};
use serde_json::Value;

use crate::oidc::discovery;
use crate::store::Timestamp;
use crate::web::oauth_response::OAuthJson;
use crate::web::{AppState, RequestOrigin};

#[derive(Responder)]
struct Metadata {
    body: OAuthJson<Value>,
    cors: Header<'static>,
}

fn metadata(state: &AppState, origin: &RequestOrigin, openid: bool) -> Metadata {
    let issuer = state.issuer(origin);
    Metadata {
        body: OAuthJson(discovery::metadata(&state.settings, &issuer, openid)),
        cors: Header::new("Access-Control-Allow-Origin", "*"),
    }
}

#[get("/o/.well-known/oauth-authorization-server")]
fn under_issuer(origin: RequestOrigin, state: &State<AppState>) -> Metadata {
    metadata(state, &origin, false)
}

#[get("/.well-known/oauth-authorization-server/o")]
fn rfc_8414_location(origin: RequestOrigin, state: &State<AppState>) -> Metadata {
    metadata(state, &origin, false)
}

#[get("/o/.well-known/openid-configuration")]
fn openid_configuration(
    origin: RequestOrigin,
    state: &State<AppState>,
) -> Result<Metadata, Status> {
    if !state.settings.oauth2_provider.oidc_enabled {
        return Err(Status::NotFound);
    }
    Ok(metadata(state, &origin, true))
}

#[derive(Responder)]
struct Jwks {
    body: (ContentType, String),
    cache: Header<'static>,
    cors: Header<'static>,
}

#[get("/o/.well-known/jwks.json")]
fn jwks(state: &State<AppState>) -> Result<Jwks, Status> {
    if !state.settings.oauth2_provider.oidc_enabled {
        return Err(Status::NotFound);
    }
    let now = Timestamp::from_datetime(state.clock.now());
    let body = state.keys.keys().jwks(now).to_string();
    Ok(Jwks {
        body: (ContentType::JSON, body),
        cache: Header::new(
            "Cache-Control",
            format!("public, max-age={}", state.keys.jwks_max_age()),
        ),
        cors: Header::new("Access-Control-Allow-Origin", "*"),
    })
}

pub fn routes() -> Vec<Route> {
    routes![under_issuer, rfc_8414_location, openid_configuration, jwks]
}
