use rocket::http::CookieJar;
use rocket::{Route, State, get, routes};

use crate::web::error::{Page, WebError};
use crate::web::session::CurrentUser;
use crate::web::{AppState, RequestOrigin, csrf};

#[get("/")]
fn home(
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    origin: RequestOrigin,
    state: &State<AppState>,
) -> Result<Page, WebError> {
    let csrf_token = csrf::token(cookies, state.settings.public_https())?;
    let html = state.templates.render(
        "home.html.tera",
        &serde_json::json!({
            "user": user.view(),
            "csrf_token": csrf_token,
            "issuer": state.issuer(&origin),
        }),
    )?;
    Ok(Page::ok(html))
}

pub fn routes() -> Vec<Route> {
    routes![home]
}
