//! `/o/authorize/`: GET validates the request and shows the consent page (or answers at once
//! when no consent is needed); POST takes the user's decision.

use rocket::http::CookieJar;
use rocket::{Route, State, get, post, routes};
use serde_json::json;

use crate::oauth::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeFailure, OAuthError, ResponseMode,
};
use crate::params::Params;
use crate::store::{OidcSession, Timestamp};
use crate::web::error::{Found, Page, WebError};
use crate::web::form::{FormBody, FormError, Query};
use crate::web::session::{CurrentUser, SignedIn};
use crate::web::{AppState, RequestOrigin, application_label, csrf, scope_descriptions};

/// The answer of the authorization endpoint.
#[derive(rocket::Responder)]
enum Answer {
    Redirect(Found),
    Page(Page),
}

/// Sends the client its answer as its response mode asks: a redirect carrying it in the query
/// or fragment, or (`form_post`) a page that posts it to the redirect URI.
fn deliver(state: &AppState, response: AuthorizationResponse) -> Result<Answer, WebError> {
    if response.mode != ResponseMode::FormPost {
        return Ok(Answer::Redirect(Found(response.location())));
    }
    let html = state.templates.render(
        "form_post.html.tera",
        &json!({ "redirect_uri": response.redirect_uri, "params": response.params }),
    )?;
    Ok(Answer::Page(Page::ok(html)))
}

fn failure(
    state: &AppState,
    user: &CurrentUser,
    failure: AuthorizeFailure,
) -> Result<Answer, WebError> {
    match failure {
        AuthorizeFailure::Redirect(response) => deliver(state, response),
        AuthorizeFailure::Page(message) => Page::error(
            state,
            user,
            rocket::http::Status::BadRequest,
            "Invalid authorization request",
            &message,
        )
        .map(Answer::Page),
        AuthorizeFailure::Store(error) => Err(error.into()),
    }
}

fn oauth_failure(
    state: &AppState,
    request: &AuthorizationRequest,
    error: OAuthError,
) -> Result<Answer, WebError> {
    match error {
        OAuthError::Server(detail) => Err(WebError::Internal(detail)),
        other => deliver(
            state,
            request.error_response(&other.code(), &other.description()),
        ),
    }
}

fn login_location(request: &AuthorizationRequest) -> String {
    let next = format!("/o/authorize/?{}", request.query_without_login_prompt());
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", &next);
    if let Some(hint) = &request.login_hint {
        query.append_pair("login_hint", hint);
    }
    format!("/accounts/login/?{}", query.finish())
}

#[get("/o/authorize")]
async fn authorize(
    query: Result<Query, FormError>,
    origin: RequestOrigin,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    let params = match query {
        Ok(query) => query.0,
        Err(error) => return failure(state, &user, AuthorizeFailure::Page(error.to_string())),
    };
    let mut request = match state.oauth.validate_authorization(&params).await {
        Ok(request) => request,
        Err(error) => return failure(state, &user, error),
    };
    if let Some(refused) = check_openid(state, &mut request) {
        return refused;
    }
    let expected_user = match expected_user(state, &request).await {
        Ok(expected) => expected,
        Err(description) => {
            return deliver(
                state,
                request.error_response("invalid_request", &description),
            );
        }
    };
    let now = Timestamp::from_datetime(state.clock.now());
    let usable = |signed_in: &&SignedIn| {
        !request.has_prompt("login")
            && request
                .max_age
                .is_none_or(|max_age| signed_in.session.auth_time.plus_seconds(max_age) >= now)
            && expected_user.is_none_or(|expected| expected == signed_in.user.id)
    };
    let Some(signed_in) = user.0.as_ref().filter(usable) else {
        if request.has_prompt("none") {
            return deliver(
                state,
                request.error_response("login_required", "the user is not logged in"),
            );
        }
        return Ok(Answer::Redirect(Found(login_location(&request))));
    };
    let needs_consent = match state.oauth.needs_consent(&request, signed_in.user.id).await {
        Ok(needs) => needs,
        Err(error) => return oauth_failure(state, &request, error),
    };
    if !needs_consent {
        return approve(state, &request, signed_in, false, &state.issuer(&origin)).await;
    }
    if request.has_prompt("none") {
        return deliver(
            state,
            request.error_response("consent_required", "the user has not approved this client"),
        );
    }
    consent_page(state, &request, &user, cookies).map(Answer::Page)
}

/// An OpenID request from a client that cannot be given ID tokens is refused; `openid` that
/// came only from `default_scopes` is dropped instead.
fn check_openid(
    state: &AppState,
    request: &mut AuthorizationRequest,
) -> Option<Result<Answer, WebError>> {
    let refusal = state
        .oauth
        .id_token_refusal(&request.application, &request.scope)?;
    if request.scope_given {
        return Some(deliver(
            state,
            request.error_response("invalid_scope", &refusal),
        ));
    }
    request.drop_openid();
    None
}

/// The user an `id_token_hint` names (OIDC Core §3.1.2.1), if the request has one; an error
/// describes a hint this server did not issue to this client.
async fn expected_user(
    state: &AppState,
    request: &AuthorizationRequest,
) -> Result<Option<u64>, String> {
    let Some(hint) = &request.id_token_hint else {
        return Ok(None);
    };
    let Some(id_tokens) = &state.id_tokens else {
        return Ok(None);
    };
    let (claims, application) = id_tokens.read_own(hint).await?;
    if application.id != request.application.id {
        return Err("the id_token_hint was issued to another client".to_owned());
    }
    claims
        .get("sub")
        .and_then(|sub| sub.as_str())
        .and_then(|sub| sub.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| "the id_token_hint names no user".to_owned())
}

async fn approve(
    state: &AppState,
    request: &AuthorizationRequest,
    signed_in: &SignedIn,
    consented: bool,
    issuer: &str,
) -> Result<Answer, WebError> {
    let session = OidcSession {
        auth_time: signed_in.session.auth_time,
        sid: Some(signed_in.session.sid.clone()),
        claims: None,
    };
    match state
        .oauth
        .approve(request, signed_in.user.id, &session, consented, issuer)
        .await
    {
        Ok(response) => deliver(state, response),
        Err(error) => oauth_failure(state, request, error),
    }
}

fn consent_page(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
) -> Result<Page, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let scopes = scope_descriptions(&state.settings, &request.scope);
    let redirect_host = url::Url::parse(&request.redirect_uri)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| request.redirect_uri.clone());
    let html = state.templates.render(
        "consent.html.tera",
        &json!({
            "user": user.view(),
            "csrf_token": csrf_token,
            "application_name": application_label(&request.application),
            "scopes": scopes,
            "fields": request.form_fields(),
            "redirect_host": redirect_host,
        }),
    )?;
    Ok(Page::ok(html))
}

#[post("/o/authorize", data = "<form>")]
async fn decide(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    origin: RequestOrigin,
    user: CurrentUser,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    let params: Params = form?.0;
    check.verify(params.single(csrf::FIELD)?)?;
    let mut request = match state.oauth.validate_authorization(&params).await {
        Ok(request) => request,
        Err(error) => return failure(state, &user, error),
    };
    let Some(signed_in) = user.0.as_ref() else {
        return Ok(Answer::Redirect(Found(login_location(&request))));
    };
    if let Some(refused) = check_openid(state, &mut request) {
        return refused;
    }
    if params.single("allow")? != Some("Authorize") {
        return deliver(
            state,
            request.error_response("access_denied", "the user refused the request"),
        );
    }
    approve(state, &request, signed_in, true, &state.issuer(&origin)).await
}

pub fn routes() -> Vec<Route> {
    routes![authorize, decide]
}
