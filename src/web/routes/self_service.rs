//! DOT's pages for every signed-in user: `/o/applications/` (register and manage their own
//! clients; never another user's) and `/o/authorized_tokens/` (what they granted, revocable).

use rocket::{Route, get, post, routes};
use serde_json::{Value, json};

use crate::applications::{ApplicationForm, Registrar};
use crate::store::Application;
use crate::web::AppState;
use crate::web::application_editor::{Done, Pages, summary};
use crate::web::error::{Page, WebError};
use crate::web::form::CheckedForm;
use crate::web::screen::Screen;
use crate::web::screen::{Answer, see_other};
use crate::web::session::Member;

const LIST: &str = "/o/applications/";
/// Another user's application is answered exactly like a missing one.
const NO_APPLICATION: WebError = WebError::NotFound("There is no such application.");

/// The signed-in user's own application `id`.
async fn own_application(screen: &Screen<'_>, id: u64) -> Result<Application, WebError> {
    screen
        .state
        .applications
        .get(id)
        .await?
        .filter(|application| application.user == Some(screen.who.user.id))
        .ok_or(NO_APPLICATION)
}

#[get("/o/applications")]
async fn list(screen: Member<'_>) -> Result<Page, WebError> {
    let state = screen.state;
    let mine: Vec<Value> = state
        .applications
        .owned_by(screen.who.user.id)
        .await?
        .iter()
        .map(summary)
        .collect();
    screen.render(
        "o_applications.html.tera",
        json!({"applications": mine}),
        None,
    )
}

const PAGES: Pages = Pages {
    form_template: "o_application_form.html.tera",
    secret_template: "o_application_secret.html.tera",
    list: LIST,
    registrar: Registrar::Owner,
    section: None,
};

#[get("/o/applications/register")]
async fn register_form(screen: Member<'_>) -> Result<Page, WebError> {
    PAGES.form(&screen, &ApplicationForm::blank(), None, None)
}

#[post("/o/applications/register", data = "<form>")]
async fn register(
    screen: Member<'_>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let form = ApplicationForm::from_params(&params)?;
    match state
        .applications
        .register(&form, Registrar::Owner, Some(screen.who.user.id))
        .await?
    {
        Ok(saved) => {
            screen.audit("application registered", &saved.application.client_id);
            PAGES.saved(&screen, &saved, Done::Added)
        }
        Err(refused) => Ok(PAGES.form(&screen, &form, None, Some(&refused))?.into()),
    }
}

#[get("/o/applications/<id>")]
async fn detail(id: u64, screen: Member<'_>) -> Result<Page, WebError> {
    let application = own_application(&screen, id).await?;
    screen.render(
        "o_application.html.tera",
        json!({"application": summary(&application)}),
        None,
    )
}

/// A new secret, shown once after the save that made it.
#[get("/o/applications/<id>/secret")]
async fn secret(id: u64, screen: Member<'_>) -> Result<Page, WebError> {
    let application = own_application(&screen, id).await?;
    PAGES.secret(&screen, &application)
}

#[get("/o/applications/<id>/update")]
async fn update_form(id: u64, screen: Member<'_>) -> Result<Page, WebError> {
    let application = own_application(&screen, id).await?;
    PAGES.form(
        &screen,
        &ApplicationForm::of(&application, None),
        Some(&application),
        None,
    )
}

#[post("/o/applications/<id>/update", data = "<form>")]
async fn update(
    id: u64,
    screen: Member<'_>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let application = own_application(&screen, id).await?;
    let params = form?.0;
    if params.single("action")? == Some("regenerate") {
        let saved = state.applications.regenerate_secret(id).await?;
        screen.audit("application secret regenerated", &application.client_id);
        return PAGES.saved(&screen, &saved, Done::SecretRegenerated);
    }
    let form = ApplicationForm::from_params(&params)?;
    match state
        .applications
        .update(id, &form, Registrar::Owner, Some(screen.who.user.id))
        .await?
    {
        Ok(saved) => {
            screen.audit("application changed", &saved.application.client_id);
            PAGES.saved(&screen, &saved, Done::Changed)
        }
        Err(refused) => Ok(PAGES
            .form(&screen, &form, Some(&application), Some(&refused))?
            .into()),
    }
}

#[get("/o/applications/<id>/delete")]
async fn delete_form(id: u64, screen: Member<'_>) -> Result<Page, WebError> {
    let application = own_application(&screen, id).await?;
    screen.render(
        "o_application_delete.html.tera",
        json!({"application": summary(&application)}),
        None,
    )
}

#[post("/o/applications/<id>/delete", data = "<form>")]
async fn delete(
    id: u64,
    screen: Member<'_>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let application = own_application(&screen, id).await?;
    // The body carries only the CSRF token.
    form?;
    state.applications.delete(id).await?;
    screen.audit("application deleted", &application.client_id);
    screen.flash(format!(
        "The application “{}” was deleted successfully.",
        crate::web::application_label(&application)
    ));
    Ok(see_other(LIST))
}

/// What the user granted, per application: the scopes of their live tokens and consents.
async fn grants_of(state: &AppState, user: u64) -> Result<Vec<Value>, WebError> {
    Ok(state
        .oauth
        .authorized_applications(user)
        .await?
        .into_iter()
        .map(|authorized| {
            json!({
                "id": authorized.application.id,
                "name": crate::web::application_label(&authorized.application),
                "scopes": crate::web::scope_descriptions(&state.settings, &authorized.scope),
                "tokens": authorized.tokens,
            })
        })
        .collect())
}

#[get("/o/authorized_tokens")]
async fn authorized(screen: Member<'_>) -> Result<Page, WebError> {
    let state = screen.state;
    let grants = grants_of(state, screen.who.user.id).await?;
    screen.render(
        "o_authorized_tokens.html.tera",
        json!({"grants": grants}),
        None,
    )
}

#[post("/o/authorized_tokens/<id>/delete", data = "<form>")]
async fn revoke(
    id: u64,
    screen: Member<'_>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let user = screen.who.user.id;
    if params.single("confirm")? != Some("yes") {
        // Only an application the user granted something to is named: any other id (an
        // application of someone else's, or none) answers as if it did not exist.
        let granted = grants_of(state, user).await?;
        let Some(row) = granted.iter().find(|row| row["id"] == id) else {
            return Err(NO_APPLICATION);
        };
        return Ok(screen
            .render(
                "o_authorized_revoke.html.tera",
                json!({"application": {"id": id, "name": row["name"]}}),
                None,
            )?
            .into());
    }
    let revoked = state.oauth.withdraw_consent(user, id).await?;
    let application = state.applications.get(id).await?;
    let (name, client_id) = application.as_ref().map_or(("", ""), |application| {
        (
            crate::web::application_label(application),
            application.client_id.as_str(),
        )
    });
    screen.audit(
        "access revoked by its user",
        &format!("client {client_id}: {revoked} tokens"),
    );
    screen.flash(format!(
        "The access you gave “{name}” was revoked ({revoked} tokens)."
    ));
    Ok(see_other("/o/authorized_tokens/"))
}

pub fn routes() -> Vec<Route> {
    routes![
        list,
        register_form,
        register,
        detail,
        secret,
        update_form,
        update,
        delete_form,
        delete,
        authorized,
        revoke
    ]
}
