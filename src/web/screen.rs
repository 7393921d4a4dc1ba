//! Rendering a page for a signed-in user: the template's own context plus what every page's
//! layout needs (who is signed in, the CSRF token for its forms).

use rocket::http::{Cookie, CookieJar, SameSite};
use serde_json::Value;

use crate::applications::Refusal;

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

/// Carries a message from a change to the page after it (Django's messages framework): set
/// with the redirect, shown by the next page rendered, and deleted then.
const FLASH_COOKIE: &str = "oxidot_messages";
/// A message longer than this is not one oxidot wrote.
const FLASH_MAX_BYTES: usize = 600;

impl Screen<'_> {
    /// A success message for the next page this user sees, once.
    pub fn flash(&self, message: impl Into<String>) {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(message.into());
        self.cookies.add(
            Cookie::build((FLASH_COOKIE, encoded))
                .path("/")
                .http_only(true)
                .secure(self.state.settings.public_https())
                .same_site(SameSite::Lax),
        );
    }

    /// The message a change left for this page, taken (so a reload does not show it again).
    fn take_flash(&self) -> Option<String> {
        use base64::Engine;
        let cookie = self.cookies.get(FLASH_COOKIE)?;
        let value = cookie.value().to_owned();
        self.cookies.remove(Cookie::build(FLASH_COOKIE).path("/"));
        if value.len() > FLASH_MAX_BYTES {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Renders a form refused for `refusal`: a message about one field is shown next to
    /// that field (`errors.<name>`, which the template marks `aria-invalid`), with a summary
    /// on top; any other is shown on top.
    pub fn render_refused(
        &self,
        template: &str,
        mut context: Value,
        refusal: Option<&Refusal>,
    ) -> Result<Page, WebError> {
        let summary = match refusal {
            Some(Refusal {
                field: Some(field),
                message,
            }) => {
                context["errors"] = serde_json::json!({ *field: message });
                Some("Please correct the error below.")
            }
            Some(Refusal {
                field: None,
                message,
            }) => Some(message.as_str()),
            None => None,
        };
        self.render(template, context, summary)
    }

    /// Renders `template`; with a `message` the page is a refused form (400).
    pub fn render(
        &self,
        template: &str,
        mut context: Value,
        message: Option<&str>,
    ) -> Result<Page, WebError> {
        let flash = self.take_flash();
        if let Value::Object(fields) = &mut context {
            fields.insert("flash".to_owned(), flash.map_or(Value::Null, Value::from));
            fields
                .entry("errors".to_owned())
                .or_insert_with(|| serde_json::json!({}));
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
                "Your account lacks the permission this action needs.",
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
