//! Rendering a page for a signed-in user: the template's own context plus what every page's
//! layout needs (who is signed in, the CSRF token for its forms).

use rocket::http::CookieJar;
use serde_json::Value;

use crate::permissions::{self, Action, Granted, Model};
use crate::web::error::{Page, SeeOther, WebError};
use crate::web::session::SignedIn;
use crate::web::{AppState, csrf};

/// What a page handler answers: a page, or a redirect after a change.
#[derive(rocket::Responder)]
pub enum Answer {
    Page(Page),
    Redirect(SeeOther),
}

impl From<Page> for Answer {
    fn from(page: Page) -> Self {
        Answer::Page(page)
    }
}

pub fn see_other(path: impl Into<String>) -> Answer {
    Answer::Redirect(SeeOther(path.into()))
}

/// Built by the rank guards (`session::Member`, `Staff`, `Superuser`) for their handlers.
pub struct Screen<'r> {
    pub state: &'r AppState,
    pub who: SignedIn,
    /// What the user may do in the admin (nothing, for users who are not staff).
    pub granted: Granted,
    pub cookies: &'r CookieJar<'r>,
}

impl Screen<'_> {
    /// Renders `template`; with a `message` the page is a refused form (400).
    pub fn render(
        &self,
        template: &str,
        mut context: Value,
        message: Option<&str>,
    ) -> Result<Page, WebError> {
        if let Value::Object(fields) = &mut context {
            fields.insert(
                "user".to_owned(),
                serde_json::to_value(self.who.view()).unwrap_or_default(),
            );
            fields.insert(
                "csrf_token".to_owned(),
                Value::String(csrf::token(
                    self.cookies,
                    self.state.settings.public_https(),
                )?),
            );
            fields.insert(
                "message".to_owned(),
                message.map_or(Value::Null, Value::from),
            );
            fields.insert("can".to_owned(), self.sections());
        }
        let html = self.state.templates.render(template, &context)?;
        Ok(Page::form(html, message))
    }

    /// Which admin sections the user may see (the navigation shows only those).
    fn sections(&self) -> Value {
        let view = |model: Model| Value::Bool(self.granted.allows(Action::View, model));
        serde_json::json!({
            "users": view(permissions::USER),
            "groups": view(permissions::GROUP),
            "applications": view(permissions::APPLICATION),
            "access_tokens": view(permissions::ACCESS_TOKEN),
            "refresh_tokens": view(permissions::REFRESH_TOKEN),
            "grants": view(permissions::GRANT),
            "id_tokens": view(permissions::ID_TOKEN),
            "device_grants": view(permissions::DEVICE_GRANT),
            "tasks": view(permissions::PERIODIC_TASK),
            "keys": view(permissions::SIGNING_KEY),
        })
    }

    /// Refuses (403) unless the user holds `action` on `model`: for handlers whose guard
    /// checked a weaker permission and whose form chose a stronger action (delete, revoke).
    pub fn require(&self, action: Action, model: Model) -> Result<(), WebError> {
        if self.granted.allows(action, model) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "your account lacks the permission this action needs",
            ))
        }
    }

    /// Logs an action with who did it (never a secret: callers pass names and ids).
    pub fn audit(&self, action: &str, target: &str) {
        tracing::info!(
            target: "oxidot::admin",
            by = self.who.user.username.as_str(),
            action,
            target,
            "action"
        );
    }
}
