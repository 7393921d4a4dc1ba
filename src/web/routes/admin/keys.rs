//! `/admin/keys/` (superusers only): the signing keys with their states; generate, rotate
//! (after publication, or at once for a compromised key) and retire — the operations of
//! `oxidot keys`, applied to the running key ring at once.

use rocket::{Route, get, post, routes};
use serde_json::json;

use super::{Answer, see_other};
use crate::oidc::keys::{KEY_ALGORITHMS, KeyAdmin, KeyError};
use crate::permissions::{Action, SIGNING_KEY};
use crate::store::{Algorithm, Timestamp};
use crate::web::AppState;
use crate::web::error::{Page, WebError};
use crate::web::form::CheckedForm;
use crate::web::screen::Screen;
use crate::web::session::{Allowed, ChangeSigningKey, ViewSigningKey};

fn admin(state: &AppState) -> KeyAdmin<'_> {
    state.keys.admin()
}

fn key_failure(error: KeyError) -> Result<String, WebError> {
    match error {
        KeyError::Refused(message) => Ok(message),
        other => Err(WebError::Internal(other.to_string())),
    }
}

async fn keys_page(screen: &Screen<'_>, message: Option<&str>) -> Result<Page, WebError> {
    let now = Timestamp::from_datetime(screen.state.clock.now());
    let rows = admin(screen.state)
        .rows(now)
        .await
        .map_err(|error| WebError::Internal(error.to_string()))?;
    let algorithms: Vec<&str> = KEY_ALGORITHMS
        .iter()
        .map(|algorithm| algorithm.as_str())
        .collect();
    screen.render(
        "admin_keys.html.tera",
        json!({"section": "keys", "keys": rows, "algorithms": algorithms}),
        message,
    )
}

#[get("/admin/keys")]
async fn list(screen: Allowed<'_, ViewSigningKey>) -> Result<Page, WebError> {
    keys_page(&screen, None).await
}

#[post("/admin/keys", data = "<form>")]
async fn act(
    screen: Allowed<'_, ChangeSigningKey>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let now = Timestamp::from_datetime(state.clock.now());
    let algorithm = || -> Result<Algorithm, WebError> {
        params
            .single("algorithm")?
            .and_then(Algorithm::parse)
            .filter(|algorithm| KEY_ALGORITHMS.contains(algorithm))
            .ok_or_else(|| {
                WebError::BadRequest("The algorithm must be RS256, ES256 or EdDSA.".to_owned())
            })
    };
    let confirmed = params.single("confirm")? == Some("yes");
    let action = params.single("action")?.unwrap_or_default().to_owned();
    let keys = admin(state);
    // Django's actions on the key model: generating adds a key, retiring withdraws one.
    match action.as_str() {
        "generate" => screen.require(Action::Add, SIGNING_KEY)?,
        "retire" => screen.require(Action::Delete, SIGNING_KEY)?,
        _ => {}
    }
    let outcome = match action.as_str() {
        "generate" => keys.generate(algorithm()?, now).await,
        "rotate" | "rotate-now" | "retire" if !confirmed => {
            return Ok(keys_page(&screen, Some("Tick the box to confirm."))
                .await?
                .into());
        }
        "rotate" => keys.rotate(algorithm()?, false, now).await,
        "rotate-now" => keys.rotate(algorithm()?, true, now).await,
        "retire" => {
            let kid = params.single("kid")?.unwrap_or_default().to_owned();
            keys.retire(&kid, now).await
        }
        other => return Err(WebError::BadRequest(format!("Unknown action “{other}”."))),
    };
    match outcome {
        Ok(done) => {
            state
                .keys
                .reload()
                .await
                .map_err(|error| WebError::Internal(error.to_string()))?;
            screen.audit(&format!("signing key {action}"), &done);
            screen.flash(done);
            Ok(see_other("/admin/keys/"))
        }
        Err(error) => {
            let message = key_failure(error)?;
            Ok(keys_page(&screen, Some(&message)).await?.into())
        }
    }
}

#[get("/admin/keys/<kid>")]
async fn show(kid: &str, screen: Allowed<'_, ViewSigningKey>) -> Result<Page, WebError> {
    let now = Timestamp::from_datetime(screen.state.clock.now());
    let row = admin(screen.state)
        .rows(now)
        .await
        .map_err(|error| WebError::Internal(error.to_string()))?
        .into_iter()
        .find(|row| row.kid == kid)
        .ok_or(WebError::NotFound("There is no such key."))?;
    let public = serde_json::to_string_pretty(&row.public).unwrap_or_default();
    screen.render(
        "admin_key.html.tera",
        json!({
            "section": "keys", "key": row, "public": public,
            "created": row.created.to_rfc3339(), "activates": super::when(row.activates),
            "retired": super::when(row.retired),
        }),
        None,
    )
}

pub fn routes() -> Vec<Route> {
    routes![list, act, show]
}
