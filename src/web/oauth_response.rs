//! OAuth answers over HTTP: JSON bodies, `Cache-Control: no-store` and `Pragma: no-cache`
//! (RFC 6749 §5.1), RFC 6749 §5.2 errors, and RFC 6750 bearer challenges.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder, Response};
use serde::Serialize;

use crate::oauth::{BearerError, OAuthError};

fn json_response(status: u16, body: String) -> Response<'static> {
    Response::build()
        .status(Status::new(status))
        .header(ContentType::JSON)
        .header(Header::new("Cache-Control", "no-store"))
        .header(Header::new("Pragma", "no-cache"))
        .sized_body(body.len(), Cursor::new(body))
        .finalize()
}

/// A successful OAuth JSON answer.
pub struct OAuthJson<T>(pub T);

impl<'r, T: Serialize> Responder<'r, 'static> for OAuthJson<T> {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = serde_json::to_string(&self.0).map_err(|_| Status::InternalServerError)?;
        Ok(json_response(200, body))
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    error_description: String,
}

impl<'r> Responder<'r, 'static> for OAuthError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match &self {
            OAuthError::Server(detail) => {
                tracing::error!(path = req.uri().path().as_str(), "{detail}");
            }
            OAuthError::Unavailable(detail) => {
                tracing::warn!(path = req.uri().path().as_str(), "{detail}");
            }
            _ => {}
        }
        let body = serde_json::to_string(&ErrorBody {
            error: self.code(),
            error_description: self.description(),
        })
        .map_err(|_| Status::InternalServerError)?;
        let mut response = json_response(self.status(), body);
        match &self {
            OAuthError::InvalidClient {
                used_basic: true, ..
            } => {
                response.set_header(Header::new(
                    "WWW-Authenticate",
                    "Basic realm=\"oxidot\", charset=\"UTF-8\"",
                ));
            }
            OAuthError::TooManyAttempts { retry_after } => {
                response.set_header(Header::new("Retry-After", retry_after.to_string()));
            }
            OAuthError::Unavailable(_) => {
                response.set_header(Header::new("Retry-After", "1"));
            }
            _ => {}
        }
        Ok(response)
    }
}

impl<'r> Responder<'r, 'static> for BearerError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let (status, challenge) = match &self {
            // RFC 6750 §3.1: no error code when the request had no token at all.
            BearerError::Missing => (401, "Bearer realm=\"oxidot\"".to_owned()),
            BearerError::InvalidToken => (
                401,
                "Bearer realm=\"oxidot\", error=\"invalid_token\", error_description=\"The access token is invalid, expired or revoked\"".to_owned(),
            ),
            BearerError::InsufficientScope(scope) => (
                403,
                format!("Bearer realm=\"oxidot\", error=\"insufficient_scope\", scope=\"{scope}\""),
            ),
            BearerError::InvalidRequest(_) => (
                400,
                "Bearer realm=\"oxidot\", error=\"invalid_request\"".to_owned(),
            ),
            BearerError::Server(detail) => {
                tracing::error!(path = req.uri().path().as_str(), "{detail}");
                (500, "Bearer realm=\"oxidot\"".to_owned())
            }
            BearerError::Unavailable(detail) => {
                tracing::warn!(path = req.uri().path().as_str(), "{detail}");
                (503, "Bearer realm=\"oxidot\"".to_owned())
            }
        };
        let code = match &self {
            BearerError::InvalidRequest(_) => "invalid_request",
            BearerError::Missing | BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope(_) => "insufficient_scope",
            BearerError::Server(_) => "server_error",
            BearerError::Unavailable(_) => "temporarily_unavailable",
        };
        let body = serde_json::to_string(&ErrorBody {
            error: code.to_owned(),
            error_description: self.to_string(),
        })
        .map_err(|_| Status::InternalServerError)?;
        let mut response = json_response(status, body);
        response.set_header(Header::new("WWW-Authenticate", challenge));
        if status == 503 {
            response.set_header(Header::new("Retry-After", "1"));
        }
        Ok(response)
    }
}

/// The raw `Authorization` header, for client authentication and bearer tokens.
pub struct Authorization(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Authorization {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        request::Outcome::Success(Authorization(
            req.headers().get_one("Authorization").map(str::to_owned),
        ))
    }
}

impl Authorization {
    /// The token of `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.0.as_deref()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}
