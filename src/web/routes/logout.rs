//! `/o/logout/`: RP-initiated logout. GET (or POST without a decision) shows a confirmation;
//! the confirming POST ends the session, revokes the user's tokens for the client when
//! `oidc_rp_initiated_logout_delete_tokens`, and sends the user to the client's registered
//! `post_logout_redirect_uri` (or a "logged out" page).

use rocket::http::{CookieJar, Status};
use rocket::{Route, State, get, post, routes};
use serde_json::json;

use crate::oidc::logout::LogoutRequest;
use crate::params::Params;
use crate::store::Timestamp;
use crate::web::error::{Found, Page, WebError};
use crate::web::form::{FormBody, FormError, Query};
use crate::web::session::{CurrentUser, SignedIn, clear_session_cookie};
use crate::web::{AppState, application_label, csrf};

#[derive(rocket::Responder)]
enum Answer {
    Redirect(Found),
    Page(Page),
}

fn error_page(
    state: &AppState,
    user: &CurrentUser,
    status: Status,
    message: &str,
) -> Result<Answer, WebError> {
    Page::error(state, user, status, "Invalid logout request", message).map(Answer::Page)
}

/// The checked request, or the page that says why it cannot be followed.
async fn checked(
    state: &AppState,
    user: &CurrentUser,
    params: Result<Params, FormError>,
) -> Result<Result<LogoutRequest, Answer>, WebError> {
    let provider = &state.settings.oauth2_provider;
    let (Some(id_tokens), true) = (&state.id_tokens, provider.oidc_rp_initiated_logout_enabled)
    else {
        return error_page(
            state,
            user,
            Status::NotFound,
            "RP-initiated logout is not enabled here.",
        )
        .map(Err);
    };
    let params = match params {
        Ok(params) => params,
        Err(error) => {
            return error_page(state, user, Status::BadRequest, &error.to_string()).map(Err);
        }
    };
    let rules = id_tokens.logout_rules(
        provider.oidc_rp_initiated_logout_accept_expired_tokens,
        &provider.allowed_redirect_uri_schemes,
        Timestamp::from_datetime(state.clock.now()),
    );
    match rules.validate(&params).await {
        Ok(request) => Ok(Ok(request)),
        Err(message) => error_page(state, user, Status::BadRequest, &message).map(Err),
    }
}

/// Where the user lands after (or without) a logout.
fn finished(
    state: &AppState,
    request: &LogoutRequest,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    if let Some(location) = request.after_logout() {
        return Ok(Answer::Redirect(Found(location)));
    }
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "logout.html.tera",
        &json!({ "user": user.view(), "csrf_token": csrf_token }),
    )?;
    Ok(Answer::Page(Page::ok(html)))
}

/// The "logged out" page for a visitor without a session, with the client's URI as a link
/// to follow rather than a redirect.
fn not_signed_in(
    state: &AppState,
    request: &LogoutRequest,
    cookies: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "logout.html.tera",
        &json!({
            "user": null,
            "csrf_token": csrf_token,
            "continue_to": request.after_logout(),
            "application_name": request.application.as_ref().map(application_label),
        }),
    )?;
    Ok(Answer::Page(Page::ok(html)))
}

fn confirmation(
    state: &AppState,
    request: &LogoutRequest,
    signed_in: &SignedIn,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "rp_logout.html.tera",
        &json!({
            "user": user.view(),
            "csrf_token": csrf_token,
            "application_name": request.application.as_ref().map(application_label),
            "other_user": request.hinted_user.is_some_and(|hinted| hinted != signed_in.user.id),
            "fields": request.form_fields(),
        }),
    )?;
    Ok(Answer::Page(Page::ok(html)))
}

async fn end_session(
    state: &AppState,
    request: &LogoutRequest,
    signed_in: &SignedIn,
    cookies: &CookieJar<'_>,
) -> Result<(), WebError> {
    state.accounts.logout(&signed_in.cookie_value).await?;
    let user = signed_in.user.id;
    let mut revoked = 0;
    if state
        .settings
        .oauth2_provider
        .oidc_rp_initiated_logout_delete_tokens
        && let Some(application) = &request.application
    {
        revoked = state
            .oauth
            .revoke_tokens_of_user(user, application.id)
            .await?;
    }
    tracing::info!(user, revoked, "logged out at the client's request");
    clear_session_cookie(cookies, state);
    csrf::rotate(cookies, state.settings.public_https())?;
    Ok(())
}

async fn decide(
    state: &AppState,
    params: Result<Params, FormError>,
    confirmed: bool,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    let request = match checked(state, &user, params).await? {
        Ok(request) => request,
        Err(page) => return Ok(page),
    };
    let Some(signed_in) = &user.0 else {
        // Nobody to log out. A valid id_token_hint shows the client is the one asking, so
        // it gets its redirect; without one, anyone could bounce visitors off this server to
        // a URI some client registered, so the visitor chooses to go there.
        if request.hinted_user.is_some() {
            return finished(state, &request, &user, cookies);
        }
        return not_signed_in(state, &request, cookies);
    };
    let hint_matches = request.hinted_user == Some(signed_in.user.id);
    let ask = state
        .settings
        .oauth2_provider
        .oidc_rp_initiated_logout_always_prompt
        || !hint_matches;
    if ask && !confirmed {
        return confirmation(state, &request, signed_in, &user, cookies);
    }
    end_session(state, &request, signed_in, cookies).await?;
    finished(state, &request, &CurrentUser(None), cookies)
}

#[get("/o/logout")]
async fn logout_get(
    query: Result<Query, FormError>,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    decide(state, query.map(|query| query.0), false, user, cookies).await
}

/// A POST is either the client's request (OIDC allows POST) or the user's confirmation, which
/// carries the CSRF token and `allow`.
#[post("/o/logout", data = "<form>")]
async fn logout_post(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    let params = form.map(|form| form.0);
    let confirmed = match &params {
        Ok(params) if params.single("allow").ok().flatten() == Some("Log out") => {
            check.verify(params.single(csrf::FIELD)?)?;
            true
        }
        _ => false,
    };
    decide(state, params, confirmed, user, cookies).await
}

pub fn routes() -> Vec<Route> {
    routes![logout_get, logout_post]
}
