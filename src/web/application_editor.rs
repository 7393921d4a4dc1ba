//! The application form pages, for the admin console and `/o/applications/` alike: the form
//! shown (again, with a refusal), and the secret shown once after a save. Saving is
//! `crate::applications::Applications`.

use serde_json::{Value, json};

use rocket::http::{Cookie, SameSite};

pub use crate::applications::Saved;
use crate::applications::{ApplicationForm, Refusal, Registrar, SELF_SERVICE_GRANTS};
use crate::store::{Algorithm, Application, ClientType, GrantType};
use crate::web::error::{Page, WebError};
use crate::web::screen::{Answer, Screen, see_other};

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
