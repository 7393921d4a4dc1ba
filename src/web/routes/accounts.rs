//! `/accounts/login/` (also at `/admin/login/`, the DOT tutorial's LOGIN_URL) and logout.

use rocket::http::{CookieJar, Header, Status};
use rocket::{Route, State, get, post, routes};
use serde_json::json;

use crate::accounts::AccountError;
use crate::web::error::{Page, SeeOther, WebError};
use crate::web::form::{FormBody, FormError, Query};
use crate::web::session::{ClientIp, CurrentUser, clear_session_cookie, set_session_cookie};
use crate::web::{AppState, csrf};

const BAD_CREDENTIALS: &str = "Please enter a correct username and password. Note that both \
                               fields may be case-sensitive.";

/// `next` is followed only when it is a path on this server.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?;
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    local.then(|| next.to_owned())
}

struct LoginForm<'a> {
    action: &'a str,
    next: Option<String>,
    username: &'a str,
    error: Option<&'a str>,
    /// The application asking, when `next` is its authorization request.
    asking: Option<String>,
}

/// The name of the application whose authorization request sent the user here (`next` is
/// `/o/authorize/?client_id=…`), to say on the login page who is asking.
async fn asking_application(
    state: &AppState,
    next: Option<&str>,
) -> Result<Option<String>, WebError> {
    let Some((path, query)) = next.and_then(|next| next.split_once('?')) else {
        return Ok(None);
    };
    if path.trim_end_matches('/') != "/o/authorize" {
        return Ok(None);
    }
    let Some(client_id) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "client_id")
        .map(|(_, value)| value.into_owned())
    else {
        return Ok(None);
    };
    Ok(state
        .applications
        .by_client_id(&client_id)
        .await?
        .map(|application| crate::web::application_label(&application).to_owned()))
}

fn login_page(
    state: &AppState,
    cookies: &CookieJar<'_>,
    user: &CurrentUser,
    form: LoginForm<'_>,
    status: Status,
) -> Result<Page, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let asking = form.asking.as_deref();
    let html = state.templates.render(
        "login.html.tera",
        &json!({
            "user": user.view(),
            "csrf_token": csrf_token,
            "action": form.action,
            "asking": asking,
            "next": form.next,
            "username": form.username,
            "error": form.error,
        }),
    )?;
    Ok(Page {
        status,
        html,
        headers: Vec::new(),
    })
}

async fn show(
    action: &str,
    query: Result<Query, FormError>,
    user: &CurrentUser,
    cookies: &CookieJar<'_>,
    state: &AppState,
) -> Result<Page, WebError> {
    let query = query?.0;
    let next = safe_next(query.single("next")?);
    let username = query.single("login_hint")?.unwrap_or_default();
    let asking = asking_application(state, next.as_deref()).await?;
    let form = LoginForm {
        action,
        next,
        username,
        error: None,
        asking,
    };
    login_page(state, cookies, user, form, Status::Ok)
}

#[allow(clippy::too_many_arguments)]
async fn submit(
    action: &str,
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &AppState,
) -> Result<Result<SeeOther, Page>, WebError> {
    let form = form?.0;
    check.verify(form.single(csrf::FIELD)?)?;
    let next = safe_next(form.single("next")?);
    let username = form.single("username")?.unwrap_or_default().trim();
    let password = form.single("password")?.unwrap_or_default();
    let asking = asking_application(state, next.as_deref()).await?;
    let again = |error: &str, status: Status| {
        let form = LoginForm {
            action,
            next: next.clone(),
            username,
            error: Some(error),
            asking: asking.clone(),
        };
        login_page(state, cookies, &user, form, status)
    };
    if username.is_empty() || password.is_empty() {
        return again("Enter both a username and a password.", Status::BadRequest).map(Err);
    }
    match state
        .accounts
        .login(username, password, ip.0.as_deref())
        .await
    {
        Ok(new_session) => {
            if let Some(previous) = &user.0 {
                state.accounts.logout(&previous.cookie_value).await?;
            }
            set_session_cookie(cookies, state, new_session.cookie_value);
            csrf::rotate(cookies, state.settings.public_https())?;
            Ok(Ok(SeeOther(next.unwrap_or_else(|| "/".to_owned()))))
        }
        Err(AccountError::InvalidCredentials) => {
            again(BAD_CREDENTIALS, Status::BadRequest).map(Err)
        }
        Err(AccountError::Throttled { retry_after }) => {
            let message =
                format!("Too many failed login attempts. Try again in {retry_after} seconds.");
            let mut page = again(&message, Status::TooManyRequests)?;
            page.headers
                .push(Header::new("Retry-After", retry_after.to_string()));
            Ok(Err(page))
        }
        Err(other) => Err(other.into()),
    }
}

#[get("/accounts/login")]
async fn login_form(
    query: Result<Query, FormError>,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Page, WebError> {
    show("/accounts/login/", query, &user, cookies, state).await
}

#[get("/admin/login")]
async fn admin_login_form(
    query: Result<Query, FormError>,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Page, WebError> {
    show("/admin/login/", query, &user, cookies, state).await
}

#[post("/accounts/login", data = "<form>")]
async fn login(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Result<SeeOther, Page>, WebError> {
    submit("/accounts/login/", form, check, user, ip, cookies, state).await
}

#[post("/admin/login", data = "<form>")]
async fn admin_login(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    ip: ClientIp,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Result<SeeOther, Page>, WebError> {
    submit("/admin/login/", form, check, user, ip, cookies, state).await
}

/// Logging out changes state, so GET only asks for confirmation.
#[get("/accounts/logout")]
fn logout_form(
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<Page, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "logout.html.tera",
        &json!({ "user": user.view(), "csrf_token": csrf_token }),
    )?;
    Ok(Page::ok(html))
}

#[post("/accounts/logout", data = "<form>")]
async fn logout(
    form: Result<FormBody, FormError>,
    check: csrf::CsrfCheck,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    state: &State<AppState>,
) -> Result<SeeOther, WebError> {
    let form = form?.0;
    check.verify(form.single(csrf::FIELD)?)?;
    if let Some(signed_in) = &user.0 {
        state.accounts.logout(&signed_in.cookie_value).await?;
        tracing::info!(user = signed_in.user.username.as_str(), "logged out");
    }
    clear_session_cookie(cookies, state);
    csrf::rotate(cookies, state.settings.public_https())?;
    let next = safe_next(form.single("next")?).unwrap_or_else(|| "/accounts/logout/".to_owned());
    Ok(SeeOther(next))
}

pub fn routes() -> Vec<Route> {
    routes![
        login_form,
        admin_login_form,
        login,
        admin_login,
        logout_form,
        logout
    ]
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(
            safe_next(Some("/o/authorize/?a=1")).as_deref(),
            Some("/o/authorize/?a=1")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a b",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
        }
    }
}
