//! The one mapping from errors to HTTP responses for pages. Errors on API paths answer JSON.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde::Serialize;

use crate::accounts::AccountError;
use crate::random::RandomError;
use crate::store::StoreError;
use crate::web::AppState;
use crate::web::form::FormError;
use crate::web::templates::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("CSRF verification failed: {0}")]
    Csrf(&'static str),
    #[error(transparent)]
    Form(#[from] FormError),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("internal error")]
    Internal(String),
    /// The database cannot be reached now: 503, try again.
    #[error("The service is unavailable for a moment; try again.")]
    Unavailable(String),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => WebError::Unavailable(error.to_string()),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<RandomError> for WebError {
    fn from(error: RandomError) -> Self {
        WebError::Internal(error.to_string())
    }
}

impl From<TemplateError> for WebError {
    fn from(error: TemplateError) -> Self {
        WebError::Internal(error.to_string())
    }
}

impl From<AccountError> for WebError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Throttled { retry_after } => WebError::TooManyRequests {
                message: error.to_string(),
                retry_after,
            },
            AccountError::InvalidCredentials
            | AccountError::Invalid { .. }
            | AccountError::UnknownUser(_) => WebError::BadRequest(error.to_string()),
            AccountError::Store(error) => error.into(),
            other => WebError::Internal(other.to_string()),
        }
    }
}

/// An OAuth failure met by a page (a revocation made from a page): only the database's
/// unavailability is the user's business; the rest is ours.
impl From<crate::oauth::OAuthError> for WebError {
    fn from(error: crate::oauth::OAuthError) -> Self {
        match error {
            crate::oauth::OAuthError::Unavailable(detail) => WebError::Unavailable(detail),
            other => WebError::Internal(format!("{other:?}")),
        }
    }
}

impl From<crate::applications::ApplicationError> for WebError {
    fn from(error: crate::applications::ApplicationError) -> Self {
        use crate::applications::ApplicationError;
        match error {
            ApplicationError::NotFound => WebError::NotFound("There is no such application."),
            ApplicationError::PublicClient => {
                WebError::BadRequest("A public client has no secret.".to_owned())
            }
            ApplicationError::Store(error) => error.into(),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl WebError {
    pub fn status(&self) -> Status {
        match self {
            WebError::BadRequest(_) => Status::BadRequest,
            WebError::Csrf(_) => Status::Forbidden,
            WebError::Form(error) => crate::web::form::status_of(error),
            WebError::TooManyRequests { .. } => Status::TooManyRequests,
            WebError::Internal(_) => Status::InternalServerError,
            WebError::Unavailable(_) => Status::ServiceUnavailable,
            WebError::Forbidden(_) => Status::Forbidden,
            WebError::NotFound(_) => Status::NotFound,
        }
    }

    fn public_message(&self) -> String {
        match self {
            // Details of internal errors go to the log, not to the browser.
            WebError::Internal(_) => "Something went wrong on our side.".to_owned(),
            // What is unavailable (host, port, cause) goes to the log.
            WebError::Unavailable(_) => {
                "The service is unavailable for a moment; try again.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl<'r> Responder<'r, 'static> for WebError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match &self {
            WebError::Internal(detail) => {
                tracing::error!(path = req.uri().path().as_str(), "{detail}");
            }
            WebError::Unavailable(detail) => {
                tracing::warn!(path = req.uri().path().as_str(), "{detail}");
            }
            _ => {}
        }
        let mut response = error_response(req, self.status(), &self.public_message());
        match &self {
            WebError::TooManyRequests { retry_after, .. } => {
                response.set_header(Header::new("Retry-After", retry_after.to_string()));
            }
            WebError::Unavailable(_) => {
                response.set_header(Header::new("Retry-After", "1"));
            }
            _ => {}
        }
        Ok(response)
    }
}

/// Paths whose clients are programs: errors answer JSON there, pages elsewhere.
pub fn is_api_path(path: &str) -> bool {
    const PAGES_UNDER_O: [&str; 5] = [
        "/o/authorize",
        "/o/applications",
        "/o/authorized_tokens",
        "/o/device",
        "/o/logout",
    ];
    let page_under_o = PAGES_UNDER_O.iter().any(|page| {
        path.strip_prefix(page)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    path == "/healthz"
        || path.starts_with("/api/")
        || path.starts_with("/.well-known/")
        || (path.starts_with("/o/") && !page_under_o)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// An error in the shape the path's clients expect: JSON (`error`, `error_description`) on API
/// paths, an HTML page elsewhere.
pub fn error_response(req: &Request<'_>, status: Status, message: &str) -> Response<'static> {
    let path = req.uri().path();
    if is_api_path(path.as_str()) {
        let code = match status.code {
            400 | 413 | 415 => "invalid_request",
            404 => "not_found",
            405 => "method_not_allowed",
            429 => "too_many_requests",
            503 => "temporarily_unavailable",
            _ => "server_error",
        };
        let body = serde_json::to_string(&ErrorBody {
            error: code,
            error_description: message,
        })
        .unwrap_or_default();
        return Response::build()
            .status(status)
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body))
            .finalize();
    }
    let html = req
        .rocket()
        .state::<AppState>()
        .and_then(|state| {
            // The page's bar shows who is signed in (and a working log-out form), as every
            // other page does; a store failure here only loses that.
            let signed_in = crate::web::session::looked_up(req);
            let csrf_token = signed_in
                .as_ref()
                .and_then(|_| {
                    crate::web::csrf::token(req.cookies(), state.settings.public_https()).ok()
                })
                .unwrap_or_default();
            state
                .templates
                .render(
                    "error.html.tera",
                    &serde_json::json!({
                        "status": status.code,
                        "reason": status.reason_lossy(),
                        "message": message,
                        "user": signed_in.map(|signed_in| serde_json::json!({
                            "username": signed_in.user.username,
                            "is_staff": signed_in.user.is_staff,
                            "is_superuser": signed_in.user.is_superuser,
                        })),
                        "csrf_token": csrf_token,
                    }),
                )
                .ok()
        })
        .unwrap_or_else(|| format!("{} {}: {message}", status.code, status.reason_lossy()));
    Response::build()
        .status(status)
        .header(ContentType::HTML)
        .sized_body(html.len(), Cursor::new(html))
        .finalize()
}

/// An HTML page with a status of its own (a form shown again with an error, say).
pub struct Page {
    pub status: Status,
    pub html: String,
    pub headers: Vec<Header<'static>>,
}

impl Page {
    pub fn ok(html: String) -> Self {
        Self {
            status: Status::Ok,
            html,
            headers: Vec::new(),
        }
    }

    /// A page showing a form: 400 when it carries an error message for the user.
    pub fn form(html: String, message: Option<&str>) -> Self {
        Self {
            status: if message.is_some() {
                Status::BadRequest
            } else {
                Status::Ok
            },
            html,
            headers: Vec::new(),
        }
    }

    /// Kept out of every cache (a page that shows a secret once).
    pub fn no_store(mut self) -> Self {
        self.headers.push(Header::new("Cache-Control", "no-store"));
        self
    }

    /// The error page: `reason` as its title, `message` to explain.
    pub fn error(
        state: &crate::web::AppState,
        user: &crate::web::session::CurrentUser,
        status: Status,
        reason: &str,
        message: &str,
    ) -> Result<Self, WebError> {
        let html = state.templates.render(
            "error.html.tera",
            &serde_json::json!({
                "status": status.code, "reason": reason,
                "message": message, "user": user.view(), "csrf_token": "",
            }),
        )?;
        Ok(Self {
            status,
            html,
            headers: Vec::new(),
        })
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .status(self.status)
            .header(ContentType::HTML)
            .sized_body(self.html.len(), Cursor::new(self.html));
        for header in self.headers {
            response.header(header);
        }
        response.ok()
    }
}

/// `303 See Other` to a location we built ourselves (validated local paths, never user URLs
/// taken as they are).
pub struct SeeOther(pub String);

impl<'r> Responder<'r, 'static> for SeeOther {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .status(Status::SeeOther)
            .header(Header::new("Location", self.0))
            .ok()
    }
}

/// `302 Found`, the redirect of the authorization endpoint (RFC 6749 §4.1.2).
pub struct Found(pub String);

impl<'r> Responder<'r, 'static> for Found {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .status(Status::Found)
            .header(Header::new("Location", self.0))
            .header(Header::new("Cache-Control", "no-store"))
            .ok()
    }
}
