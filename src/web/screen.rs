//! Rendering a page for a signed-in user: the template's own context plus what every page's
//! layout needs (who is signed in, the CSRF token for its forms).

use rocket::http::CookieJar;
use serde_json::Value;

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
        }
        let html = self.state.templates.render(template, &context)?;
        Ok(Page::form(html, message))
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
