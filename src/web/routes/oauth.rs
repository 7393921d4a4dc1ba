//! `/o/token/`, `/o/introspect/`, `/o/revoke_token/` and the tutorial's protected `/api/hello`.

use rocket::http::ContentType;
use rocket::{Route, State, get, post, routes};

use crate::oauth::{BearerError, Introspection, OAuthError, TokenResponse, presented_client};
use crate::params::Params;
use crate::web::form::{FormBody, FormError, Query};
use crate::web::oauth_response::{Authorization, OAuthJson};
use crate::web::session::ClientIp;
use crate::web::{AppState, RequestOrigin};

#[post("/o/token", data = "<form>")]
async fn token(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    ip: ClientIp,
    state: &State<AppState>,
) -> Result<OAuthJson<TokenResponse>, OAuthError> {
    let params = form?.0;
    let presented = presented_client(authorization.0.as_deref(), &params)?;
    let response = state
        .oauth
        .token(presented, &params, ip.0.as_deref())
        .await?;
    Ok(OAuthJson(response))
}

#[post("/o/revoke_token", data = "<form>")]
async fn revoke(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    state: &State<AppState>,
) -> Result<OAuthJson<serde_json::Value>, OAuthError> {
    let params = form?.0;
    let presented = presented_client(authorization.0.as_deref(), &params)?;
    let application = state.oauth.authenticate_client(presented).await?;
    state.oauth.revoke(&application, &params).await?;
    Ok(OAuthJson(serde_json::json!({})))
}

/// The caller of introspection is a client, or a resource server holding a bearer token with
/// scope `introspection` (DOT's rule).
async fn introspect_with(
    params: Params,
    authorization: Authorization,
    origin: RequestOrigin,
    state: &AppState,
) -> Result<OAuthJson<Introspection>, OAuthError> {
    if let Some(bearer) = authorization.bearer() {
        state
            .oauth
            .bearer_with_scope(Some(bearer), "introspection")
            .map_err(|error| match error {
                BearerError::Server(detail) => OAuthError::Server(detail),
                other => OAuthError::InvalidClient {
                    description: other.to_string(),
                    used_basic: false,
                },
            })?;
    } else {
        let presented = presented_client(authorization.0.as_deref(), &params)?;
        state.oauth.authenticate_client(presented).await?;
    }
    let token = params
        .non_empty("token")?
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".to_owned()))?;
    let issuer = state.issuer(&origin);
    Ok(OAuthJson(state.oauth.introspect(token, &issuer)?))
}

#[post("/o/introspect", data = "<form>")]
async fn introspect_post(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    origin: RequestOrigin,
    state: &State<AppState>,
) -> Result<OAuthJson<Introspection>, OAuthError> {
    introspect_with(form?.0, authorization, origin, state).await
}

#[get("/o/introspect")]
async fn introspect_get(
    query: Result<Query, FormError>,
    authorization: Authorization,
    origin: RequestOrigin,
    state: &State<AppState>,
) -> Result<OAuthJson<Introspection>, OAuthError> {
    introspect_with(query?.0, authorization, origin, state).await
}

/// The DOT tutorial's protected API, answering as the tutorial's view does.
#[get("/api/hello")]
fn hello(
    authorization: Authorization,
    state: &State<AppState>,
) -> Result<(ContentType, &'static str), BearerError> {
    let scope = &state.settings.protected_resource_scope;
    state
        .oauth
        .bearer_with_scope(authorization.bearer(), scope)?;
    Ok((ContentType::Plain, "Hello, OAuth2!"))
}

pub fn routes() -> Vec<Route> {
    routes![token, revoke, introspect_post, introspect_get, hello]
}
