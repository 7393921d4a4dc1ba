//! `/accounts/password_change/` (Django's URL): a signed-in user changes their own password,
//! proving the current one first; every other session of theirs ends (Django's
//! `update_session_auth_hash` keeps only the one that made the change).

use rocket::{Route, get, post, routes};
use serde_json::json;

use crate::accounts::AccountError;
use crate::store::SecretKey;
use crate::web::error::{Page, WebError};
use crate::web::form::CheckedForm;
use crate::web::screen::{Answer, see_other};
use crate::web::session::{ClientIp, Member};

const TEMPLATE: &str = "password_change.html.tera";

#[get("/accounts/password_change")]
fn form(screen: Member<'_>) -> Result<Page, WebError> {
    screen.render(TEMPLATE, json!({}), None)
}

#[post("/accounts/password_change", data = "<form>")]
async fn change(
    screen: Member<'_>,
    ip: ClientIp,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let old = params.single("old_password")?.unwrap_or_default();
    let new = params.single("new_password1")?.unwrap_or_default();
    let refuse = |message: &str| -> Result<Answer, WebError> {
        Ok(screen.render(TEMPLATE, json!({}), Some(message))?.into())
    };
    if params.single("new_password2")?.unwrap_or_default() != new {
        return refuse("The two password fields didn’t match.");
    }
    let username = screen.who.user.username.clone();
    // The current password goes through the login checks, throttle included, so this page
    // cannot be used to guess it.
    match state
        .accounts
        .check_credentials(&username, old, ip.0.as_deref())
        .await
    {
        Ok(_) => {}
        Err(AccountError::InvalidCredentials) => {
            return refuse("Your old password was entered incorrectly. Please enter it again.");
        }
        Err(AccountError::Throttled { retry_after }) => {
            return refuse(&format!(
                "Too many failed attempts. Try again in {retry_after} seconds."
            ));
        }
        Err(other) => return Err(other.into()),
    }
    let keep = SecretKey::of(&screen.who.cookie_value);
    match state
        .accounts
        .change_password(username, new.to_owned(), Some(keep))
        .await
    {
        Ok(()) => {
            screen.audit("own password changed", &screen.who.user.username);
            Ok(see_other("/accounts/password_change/done/"))
        }
        Err(AccountError::Invalid { message, .. }) => refuse(&message),
        Err(other) => Err(other.into()),
    }
}

#[get("/accounts/password_change/done")]
fn done(screen: Member<'_>) -> Result<Page, WebError> {
    screen.render(TEMPLATE, json!({"done": true}), None)
}

pub fn routes() -> Vec<Route> {
    routes![form, change, done]
}
