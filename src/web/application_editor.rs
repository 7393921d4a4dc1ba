//! Saving applications from a form, for the admin console and `/o/applications/` alike: DOT's
//! rules (`crate::applications`), unique client ids, and a secret generated and shown once.

use serde_json::{Value, json};

use rocket::http::{Cookie, SameSite};

use crate::applications::{
    ApplicationForm, CLIENT_ID_LENGTH, CLIENT_SECRET_LENGTH, Refusal, Registrar,
    SELF_SERVICE_GRANTS, ValidApplication,
};
use crate::random;
use crate::store::{Algorithm, Application, ClientType, GrantType, StoreError, Timestamp};
use crate::web::AppState;
use crate::web::error::{Page, WebError};
use crate::web::screen::{Answer, Screen, see_other};

/// A saved application, and its new secret when one was made (shown once, never stored plain
/// when hashed).
pub struct Saved {
    pub application: Application,
    pub secret: Option<String>,
}

/// The pages that show application forms: the admin's, or a user's own.
pub struct Pages {
    pub form_template: &'static str,
    pub secret_template: &'static str,
    /// Where an application's own page is: `{list}{id}/`.
    pub list: &'static str,
    /// Staff choose the owner and the trust flags; a user owns what they register and gets
    /// only what self-service allows.
    pub registrar: Registrar,
    /// The admin's navigation entry to mark.
    pub section: Option<&'static str>,
}

impl Pages {
    pub fn form(
        &self,
        screen: &Screen<'_>,
        form: &ApplicationForm,
        application: Option<&Application>,
        refusal: Option<&Refusal>,
    ) -> Result<Page, WebError> {
        let mut context = form_context(form, self.registrar);
        context["section"] = json!(self.section);
        context["show_owner"] = json!(self.registrar == Registrar::Staff);
        context["show_trust"] = json!(self.registrar == Registrar::Staff);
        context["application"] = application.map_or(Value::Null, summary);
        screen.render_refused(self.form_template, context, refusal)
    }

    /// After a save: a message for the next page, and the application's page, or the page
    /// that shows the new secret once. The secret goes there in a short-lived cookie that
    /// only that page reads (and deletes), so a reload never sends the form again (POST →
    /// redirect → GET) and no copy of the secret stays on the server.
    pub fn saved(
        &self,
        screen: &Screen<'_>,
        saved: &Saved,
        done: Done,
    ) -> Result<Answer, WebError> {
        let detail = format!("{}{}/", self.list, saved.application.id);
        let name = crate::web::application_label(&saved.application);
        screen.flash(match done {
            Done::Added => format!("The application “{name}” was added successfully."),
            Done::Changed => format!("The application “{name}” was changed successfully."),
            Done::SecretRegenerated => {
                format!("The application “{name}” has a new client secret.")
            }
        });
        let Some(secret) = &saved.secret else {
            return Ok(see_other(detail));
        };
        let page = format!("{detail}secret/");
        screen.cookies.add(
            Cookie::build((SECRET_COOKIE, secret.clone()))
                .path(page.clone())
                .http_only(true)
                .secure(screen.state.settings.public_https())
                .same_site(SameSite::Strict)
                .max_age(rocket::time::Duration::minutes(5)),
        );
        Ok(see_other(page))
    }

    /// The page that shows a new secret once; without the cookie (a reload, a second tab)
    /// it says the secret was shown already.
    pub fn secret(&self, screen: &Screen<'_>, application: &Application) -> Result<Page, WebError> {
        let path = format!("{}{}/secret/", self.list, application.id);
        let secret = screen
            .cookies
            .get(SECRET_COOKIE)
            .map(|cookie| cookie.value().to_owned());
        if secret.is_some() {
            screen
                .cookies
                .remove(Cookie::build(SECRET_COOKIE).path(path));
        }
        Ok(screen
            .render(
                self.secret_template,
                json!({
                    "section": self.section,
                    "application": summary(application),
                    "secret": secret,
                    "next": format!("{}{}/", self.list, application.id),
                }),
                None,
            )?
            .no_store())
    }
}

/// What a save did, for the message the next page shows.
#[derive(Clone, Copy)]
pub enum Done {
    Added,
    Changed,
    SecretRegenerated,
}

/// Carries a new client secret from the save to the page that shows it once.
const SECRET_COOKIE: &str = "oxidot_new_secret";

/// What the form template needs besides the values: the choices it offers.
pub fn form_context(form: &ApplicationForm, registrar: Registrar) -> Value {
    let offered: &[GrantType] = match registrar {
        Registrar::Staff => &GrantType::ALL,
        Registrar::Owner => &SELF_SERVICE_GRANTS,
    };
    let grant_types: Vec<Value> = offered
        .iter()
        .map(|grant| {
            json!({
                "value": grant.as_str(),
                "label": grant.label(),
                "checked": form.grant_types.iter().any(|name| name == grant.as_str()),
            })
        })
        .collect();
    let algorithms: Vec<Value> = Algorithm::ALL
        .iter()
        .map(|algorithm| {
            json!({
                "value": algorithm.as_str(),
                "label": if *algorithm == Algorithm::None { "No OIDC support" } else { algorithm.as_str() },
            })
        })
        .collect();
    json!({"form": form, "grant_type_choices": grant_types, "algorithm_choices": algorithms})
}

fn now(state: &AppState) -> Timestamp {
    Timestamp::from_datetime(state.clock.now())
}

/// A new secret: the text to show, and what to store.
async fn new_secret(state: &AppState, hashed: bool) -> Result<(String, String), WebError> {
    let secret = random::alphanumeric(CLIENT_SECRET_LENGTH)?;
    let stored = if hashed {
        state
            .hasher
            .hash(secret.clone())
            .await
            .map_err(|error| WebError::Internal(error.to_string()))?
    } else {
        secret.clone()
    };
    Ok((secret, stored))
}

/// A refusal to show on the form (the only unique field an application has is its client
/// id), or a failure.
fn refusal(error: StoreError) -> Result<Refusal, WebError> {
    match error {
        StoreError::Duplicate { .. } => Ok(Refusal::of(
            "client_id",
            "An application with this client id already exists: choose another, or leave the \
             field empty to generate one.",
        )),
        other => Err(other.into()),
    }
}

/// Registers an application; the error is a message for the form.
pub async fn create(
    state: &AppState,
    form: &ApplicationForm,
    registrar: Registrar,
    owner: Option<u64>,
) -> Result<Result<Saved, Refusal>, WebError> {
    let valid = match form.validate(&state.settings.oauth2_provider, registrar, None) {
        Ok(valid) => valid,
        Err(refused) => return Ok(Err(refused)),
    };
    let secret = if valid.client_type == ClientType::Confidential {
        Some(new_secret(state, valid.hash_client_secret).await?)
    } else {
        None
    };
    let generated_id = random::alphanumeric(CLIENT_ID_LENGTH)?;
    let now = now(state);
    let stored_secret = secret
        .as_ref()
        .map(|(_, stored)| stored.clone())
        .unwrap_or_default();
    let result = state
        .store
        .write(move |tx| {
            let id = tx.fresh_application_id()?;
            let mut application =
                valid
                    .clone()
                    .into_application(None, id, generated_id.clone(), owner, now);
            application.client_secret.clone_from(&stored_secret);
            tx.put_application(&application)?;
            Ok(application)
        })
        .await;
    Ok(match result {
        Ok(application) => Ok(Saved {
            application,
            secret: secret.map(|(shown, _)| shown),
        }),
        Err(error) => Err(refusal(error)?),
    })
}

/// Saves edits to application `id` (`owner` as the form decided it).
pub async fn update(
    state: &AppState,
    id: u64,
    form: &ApplicationForm,
    registrar: Registrar,
    owner: Option<u64>,
) -> Result<Result<Saved, Refusal>, WebError> {
    let Some(current) = state.store.read(|tx| tx.application(id))? else {
        return Err(WebError::NotFound("There is no such application."));
    };
    let valid: ValidApplication =
        match form.validate(&state.settings.oauth2_provider, registrar, Some(&current)) {
            Ok(valid) => valid,
            Err(refused) => return Ok(Err(refused)),
        };
    // A hashed secret cannot be turned back into the plain one: stopping the hashing, or
    // becoming confidential without a secret, makes a new secret (shown once).
    let needs_new = valid.client_type == ClientType::Confidential
        && (current.client_secret.is_empty()
            || (current.hash_client_secret && !valid.hash_client_secret));
    let secret = if needs_new {
        Some(new_secret(state, valid.hash_client_secret).await?)
    } else if !current.hash_client_secret
        && valid.hash_client_secret
        && !current.client_secret.is_empty()
    {
        let hashed = state
            .hasher
            .hash(current.client_secret.clone())
            .await
            .map_err(|error| WebError::Internal(error.to_string()))?;
        Some((String::new(), hashed))
    } else {
        None
    };
    let now = now(state);
    // The whole record, not only the secret: the trust flags an owner's edit keeps must be
    // the ones staff set last.
    let expected = current.clone();
    let stored_secret = secret.as_ref().map(|(_, stored)| stored.clone());
    let result = state
        .store
        .write(move |tx| {
            let Some(current) = tx.application(id)? else {
                return Ok(None);
            };
            if current != expected {
                return Ok(Some(Err(Refusal::general(
                    "The application changed meanwhile: load it again.",
                ))));
            }
            let mut application =
                valid
                    .clone()
                    .into_application(Some(current), id, String::new(), owner, now);
            if let Some(stored) = &stored_secret {
                application.client_secret.clone_from(stored);
            }
            tx.put_application(&application)?;
            Ok(Some(Ok(application)))
        })
        .await;
    let shown = secret
        .map(|(shown, _)| shown)
        .filter(|shown| !shown.is_empty());
    match result {
        Ok(Some(Ok(application))) => Ok(Ok(Saved {
            application,
            secret: shown,
        })),
        Ok(Some(Err(refused))) => Ok(Err(refused)),
        Ok(None) => Err(WebError::NotFound("There is no such application.")),
        Err(error) => Ok(Err(refusal(error)?)),
    }
}

/// Replaces the secret of application `id`; the new one is returned to be shown once.
pub async fn regenerate_secret(state: &AppState, id: u64) -> Result<Saved, WebError> {
    let Some(current) = state.store.read(|tx| tx.application(id))? else {
        return Err(WebError::NotFound("There is no such application."));
    };
    if current.client_type != ClientType::Confidential {
        return Err(WebError::BadRequest(
            "A public client has no secret.".to_owned(),
        ));
    }
    let (shown, stored) = new_secret(state, current.hash_client_secret).await?;
    let now = now(state);
    let application = state
        .store
        .write(move |tx| {
            let Some(mut application) = tx.application(id)? else {
                return Ok(None);
            };
            application.client_secret.clone_from(&stored);
            application.updated = now;
            tx.put_application(&application)?;
            Ok(Some(application))
        })
        .await?
        .ok_or(WebError::NotFound("There is no such application."))?;
    Ok(Saved {
        application,
        secret: Some(shown),
    })
}

/// The application as lists and detail pages show it (never the secret itself).
pub fn summary(application: &Application) -> Value {
    json!({
        "id": application.id,
        "name": crate::web::application_label(application),
        "client_id": application.client_id,
        "client_type": match application.client_type {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        },
        "grant_types": application.grant_types.iter().map(|grant| grant.as_str()).collect::<Vec<_>>(),
        "grant_type_labels": application.grant_types.iter().map(|grant| grant.label()).collect::<Vec<_>>(),
        "redirect_uris": application.redirect_uris,
        "post_logout_redirect_uris": application.post_logout_redirect_uris,
        "allowed_origins": application.allowed_origins,
        "algorithm": application.algorithm.as_str(),
        "skip_authorization": application.skip_authorization,
        "hash_client_secret": application.hash_client_secret,
        "has_secret": !application.client_secret.is_empty(),
        "created": application.created.to_rfc3339(),
        "updated": application.updated.to_rfc3339(),
    })
}
