//! The device grant over HTTP: `/o/device-authorization/` for devices, and `/o/device/` where a
//! signed-in user enters the user code, then approves or denies (`/o/device/confirm/`).

use rocket::http::{CookieJar, Status};
use rocket::{Route, State, get, post, routes};
use serde_json::json;

use crate::oauth::{
    DeviceAuthorization, DeviceRequest, OAuthError, display_user_code, presented_client,
};
use crate::web::error::{Page, SeeOther, WebError};
use crate::web::form::{FormBody, FormError, Query};
use crate::web::oauth_response::{Authorization, OAuthJson};
use crate::web::session::{ClientIp, CurrentUser, SignedIn};
use crate::web::{AppState, RequestOrigin, application_label, csrf, scope_descriptions};

#[post("/o/device-authorization", data = "<form>")]
async fn device_authorization(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    ip: ClientIp,
    origin: RequestOrigin,
    state: &State<AppState>,
) -> Result<OAuthJson<DeviceAuthorization>, OAuthError> {
    let params = form?.0;
    let presented = presented_client(authorization.0.as_deref(), &params)?;
    let application = state
        .oauth
        .authenticate_client(presented, ip.0.as_deref())
        .await?;
    let issuer = state.issuer(&origin);
    let answer = state
        .oauth
        .start_device_authorization(&application, &params, &issuer)
        .await?;
    Ok(OAuthJson(answer))
}

#[derive(rocket::Responder)]
enum Answer {
    Page(Page),
    Redirect(SeeOther),
}

fn login_first(path: &str) -> Answer {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", path);
    Answer::Redirect(SeeOther(format!("/accounts/login/?{}", query.finish())))
}

fn entry_page(
    state: &AppState,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
    user_code: &str,
    error: Option<&str>,
    status: Status,
) -> Result<Answer, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "device.html.tera",
        &json!({
            "user": user.view(), "csrf_token": csrf_token,
            "user_code": user_code, "error": error,
        }),
    )?;
    Ok(Answer::Page(Page {
        status,
        html,
        headers: Vec::new(),
    }))
}

const INVALID_CODE: &str = "That code is not valid, or has expired. Check your device.";

/// The code entry form again, with why the code was refused (HTTP 400).
fn invalid_code(
    state: &AppState,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
    user_code: &str,
    message: &str,
) -> Result<Answer, WebError> {
    entry_page(
        state,
        user,
        cookies,
        user_code,
        Some(message),
        Status::BadRequest,
    )
}

fn done_page(
    state: &AppState,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
    heading: &str,
    message: &str,
) -> Result<Answer, WebError> {
    // The page's bar has the log-out form: it needs a real token.
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "device_done.html.tera",
        &json!({ "user": user.view(), "csrf_token": csrf_token, "heading": heading, "message": message }),
    )?;
    Ok(Answer::Page(Page::ok(html)))
}

#[get("/o/device")]
fn device_page(
    query: Result<Query, FormError>,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    let query = query?.0;
    let user_code = query.single("user_code")?.unwrap_or_default();
    if user.0.is_none() {
        let mut path = url::form_urlencoded::Serializer::new(String::new());
        path.append_pair("user_code", user_code);
        return Ok(login_first(&format!("/o/device/?{}", path.finish())));
    }
    entry_page(state, &user, cookies, user_code, None, Status::Ok)
}

/// The pending request a signed-in user's code names, or the page that says why not.
async fn lookup(
    state: &AppState,
    signed_in: &SignedIn,
    user_code: &str,
    ip: &ClientIp,
) -> Result<Result<DeviceRequest, &'static str>, WebError> {
    match state
        .oauth
        .find_device_request(user_code, &signed_in.user.username, ip.0.as_deref())
        .await
    {
        Ok(Some(request)) => Ok(Ok(request)),
        Ok(None) => Ok(Err(
            "That code is not valid, or has expired. Check your device.",
        )),
        Err(OAuthError::TooManyAttempts { retry_after }) => Err(WebError::TooManyRequests {
            message: format!("Too many wrong codes. Try again in {retry_after} seconds."),
            retry_after,
        }),
        Err(error) => Err(WebError::Internal(error.description())),
    }
}

#[post("/o/device", data = "<form>")]
async fn device_entry(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    let form = form?.0;
    check.verify(form.single(csrf::FIELD)?)?;
    let user_code = form.single("user_code")?.unwrap_or_default();
    let Some(signed_in) = user.0.as_ref() else {
        return Ok(login_first("/o/device/"));
    };
    let request = match lookup(state, signed_in, user_code, &ip).await? {
        Ok(request) => request,
        Err(message) => return invalid_code(state, &user, cookies, user_code, message),
    };
    let scopes = scope_descriptions(&state.settings, &request.grant.scope);
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "device_confirm.html.tera",
        &json!({
            "user": user.view(), "csrf_token": csrf_token,
            "application_name": application_label(&request.application),
            "user_code": display_user_code(&request.grant.user_code),
            "scopes": scopes,
        }),
    )?;
    Ok(Answer::Page(Page::ok(html)))
}

#[post("/o/device/confirm", data = "<form>")]
async fn device_confirm(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Answer, WebError> {
    let form = form?.0;
    check.verify(form.single(csrf::FIELD)?)?;
    let user_code = form.single("user_code")?.unwrap_or_default();
    let approve = match form.single("action")? {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err(WebError::BadRequest("Choose Authorize or Deny.".to_owned())),
    };
    let Some(signed_in) = user.0.as_ref() else {
        return Ok(login_first("/o/device/"));
    };
    let request = match lookup(state, signed_in, user_code, &ip).await? {
        Ok(request) => request,
        Err(message) => return invalid_code(state, &user, cookies, user_code, message),
    };
    let decided = state
        .oauth
        .decide_device(
            request.key,
            signed_in.user.id,
            signed_in.session.auth_time,
            approve,
        )
        .await
        .map_err(|error| WebError::Internal(error.description()))?;
    if !decided {
        return invalid_code(state, &user, cookies, user_code, INVALID_CODE);
    }
    tracing::info!(
        user = signed_in.user.username.as_str(),
        approve,
        "device authorization decided"
    );
    if approve {
        done_page(
            state,
            &user,
            cookies,
            "Device connected",
            "You can return to your device now.",
        )
    } else {
        done_page(
            state,
            &user,
            cookies,
            "Request denied",
            "The device was not given access.",
        )
    }
}

pub fn routes() -> Vec<Route> {
    routes![
        device_authorization,
        device_page,
        device_entry,
        device_confirm
    ]
}
