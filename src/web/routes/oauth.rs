//! `/o/token/`, `/o/introspect/`, `/o/revoke_token/` and the tutorial's protected `/api/hello`.

use rocket::http::ContentType;
use rocket::{Route, State, get, post, routes};

use crate::oauth::{BearerError, Introspection, OAuthError, TokenResponse, presented_client};
use crate::params::Params;
use crate::web::cors::{Cors, Origin};
use crate::web::form::{FormBody, FormError, Query};
use crate::web::oauth_response::{Authorization, OAuthJson};
use crate::web::session::ClientIp;
use crate::web::{AppState, RequestOrigin};

type Answer<T> = Cors<Result<OAuthJson<T>, OAuthError>>;

/// The client a form names (Basic or `client_id`), for CORS, before it is authenticated: a
/// browser app must be able to read its own error responses.
fn named_client(authorization: &Authorization, params: &Params) -> Option<String> {
    presented_client(authorization.0.as_deref(), params)
        .ok()
        .flatten()
        .map(|client| client.client_id)
}

/// The form, and the origin CORS allows for the client it names; a malformed form is an error.
async fn form_with_cors(
    form: Result<FormBody, FormError>,
    authorization: &Authorization,
    origin: &Origin,
    state: &AppState,
) -> Result<(Params, Option<String>), OAuthError> {
    let params = form?.0;
    let cors = origin
        .allowed_for(
            &state.applications,
            named_client(authorization, &params).as_deref(),
        )
        .await;
    Ok((params, cors))
}

#[post("/o/token", data = "<form>")]
async fn token(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    origin: Origin,
    request_origin: RequestOrigin,
    ip: ClientIp,
    state: &State<AppState>,
) -> Answer<TokenResponse> {
    let (params, cors) = match form_with_cors(form, &authorization, &origin, state).await {
        Ok(parsed) => parsed,
        Err(error) => return Cors::new(Err(error), None),
    };
    let answer = async {
        let presented = presented_client(authorization.0.as_deref(), &params)?;
        let response = state
            .oauth
            .token(
                presented,
                &params,
                ip.0.as_deref(),
                &state.issuer(&request_origin),
            )
            .await?;
        if let Ok(Some(grant_type)) = params.single("grant_type") {
            crate::metrics::global()
                .tokens_issued
                .get_or_create(&crate::metrics::GrantLabels {
                    grant_type: grant_type.to_owned(),
                })
                .inc();
        }
        Ok(OAuthJson(response))
    }
    .await;
    Cors::new(answer, cors)
}

#[post("/o/revoke_token", data = "<form>")]
async fn revoke(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    origin: Origin,
    ip: ClientIp,
    state: &State<AppState>,
) -> Answer<serde_json::Value> {
    let (params, cors) = match form_with_cors(form, &authorization, &origin, state).await {
        Ok(parsed) => parsed,
        Err(error) => return Cors::new(Err(error), None),
    };
    let answer = async {
        let presented = presented_client(authorization.0.as_deref(), &params)?;
        let application = state
            .oauth
            .authenticate_client(presented, ip.0.as_deref())
            .await?;
        state.oauth.revoke(&application, &params).await?;
        Ok(OAuthJson(serde_json::json!({})))
    }
    .await;
    Cors::new(answer, cors)
}

/// The caller of introspection is a confidential client that authenticated, or a resource
/// server holding a bearer token with scope `introspection` issued to a confidential client.
async fn introspect_with(
    params: Result<Params, FormError>,
    authorization: Authorization,
    origin: Origin,
    request_origin: RequestOrigin,
    ip: ClientIp,
    state: &AppState,
) -> Answer<Introspection> {
    let params = match params {
        Ok(params) => params,
        Err(error) => return Cors::new(Err(error.into()), None),
    };
    let caller = match authorization.bearer() {
        Some(bearer) => state
            .oauth
            .bearer(Some(bearer))
            .await
            .ok()
            .map(|(_, application)| application.client_id),
        None => named_client(&authorization, &params),
    };
    let cors = origin
        .allowed_for(&state.applications, caller.as_deref())
        .await;
    let answer = introspect_checked(params, authorization, request_origin, ip, state).await;
    Cors::new(answer, cors)
}

async fn introspect_checked(
    params: Params,
    authorization: Authorization,
    origin: RequestOrigin,
    ip: ClientIp,
    state: &AppState,
) -> Result<OAuthJson<Introspection>, OAuthError> {
    let caller = if let Some(bearer) = authorization.bearer() {
        let (_, application) = state
            .oauth
            .bearer_with_scope(Some(bearer), "introspection")
            .await
            .map_err(|error| match error {
                BearerError::Server(detail) => OAuthError::Server(detail),
                other => OAuthError::InvalidClient {
                    description: other.to_string(),
                    used_basic: false,
                },
            })?;
        application
    } else {
        let presented = presented_client(authorization.0.as_deref(), &params)?;
        if let Ok(Some(token)) = params.non_empty("token") {
            // The client and the token read together; described once the client is known.
            let issuer = state.issuer(&origin);
            let introspection = state
                .oauth
                .introspect_as_client(presented, ip.0.as_deref(), token, &issuer)
                .await?;
            return Ok(OAuthJson(introspection));
        }
        // No usable token: the client is still authenticated first, so the answer is what it
        // always was (invalid_client before invalid_request).
        state
            .oauth
            .authenticate_client(presented, ip.0.as_deref())
            .await?
    };
    state.oauth.may_introspect(&caller)?;
    let token = params
        .non_empty("token")?
        .ok_or_else(|| OAuthError::InvalidRequest("token is required".to_owned()))?;
    let issuer = state.issuer(&origin);
    Ok(OAuthJson(state.oauth.introspect(token, &issuer).await?))
}

#[post("/o/introspect", data = "<form>")]
async fn introspect_post(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    origin: Origin,
    request_origin: RequestOrigin,
    ip: ClientIp,
    state: &State<AppState>,
) -> Answer<Introspection> {
    let params = form.map(|form| form.0);
    introspect_with(params, authorization, origin, request_origin, ip, state).await
}

#[get("/o/introspect")]
async fn introspect_get(
    query: Result<Query, FormError>,
    authorization: Authorization,
    origin: Origin,
    request_origin: RequestOrigin,
    ip: ClientIp,
    state: &State<AppState>,
) -> Answer<Introspection> {
    let params = query.map(|query| query.0);
    introspect_with(params, authorization, origin, request_origin, ip, state).await
}

/// The DOT tutorial's protected API, answering as the tutorial's view does.
#[get("/api/hello")]
async fn hello(
    authorization: Authorization,
    state: &State<AppState>,
) -> Result<(ContentType, &'static str), BearerError> {
    let scope = &state.settings.protected_resource_scope;
    state
        .oauth
        .bearer_with_scope(authorization.bearer(), scope)
        .await?;
    Ok((ContentType::Plain, "Hello, OAuth2!"))
}

pub fn routes() -> Vec<Route> {
    routes![token, revoke, introspect_post, introspect_get, hello]
}
