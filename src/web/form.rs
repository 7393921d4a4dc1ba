//! Strict parsing of `application/x-www-form-urlencoded` bodies and query strings.
//!
//! Rocket's own form guards decode leniently and pick one of several repeated values; OAuth
//! wants a repeated parameter refused (RFC 6749 §3.1) and invalid UTF-8 answered with a clear
//! 400, so both bodies and queries go through this one parser.

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::http::{ContentType, Status};
use rocket::request::{self, FromRequest, Request};

pub use crate::params::{FormError, Params};
use crate::web::AppState;

/// The HTTP status for a malformed body or query.
pub fn status_of(error: &FormError) -> Status {
    match error {
        FormError::WrongContentType => Status::UnsupportedMediaType,
        FormError::TooLarge(_) => Status::PayloadTooLarge,
        _ => Status::BadRequest,
    }
}

/// A form body, read up to the configured limit.
#[derive(Debug, Clone)]
pub struct FormBody(pub Params);

#[rocket::async_trait]
impl<'r> FromData<'r> for FormBody {
    type Error = FormError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let fail = |error: FormError| data::Outcome::Error((status_of(&error), error));
        let is_form = req.content_type().is_some_and(|content_type| {
            content_type.media_type() == ContentType::Form.media_type()
        });
        if !is_form {
            return fail(FormError::WrongContentType);
        }
        let limit = req
            .rocket()
            .state::<AppState>()
            .map_or(64 * 1024, |state| state.settings.limits.form);
        let bytes = match data.open(limit.bytes()).into_bytes().await {
            Ok(bytes) if bytes.is_complete() => bytes.into_inner(),
            Ok(_) => return fail(FormError::TooLarge(limit)),
            Err(_) => return fail(FormError::Unreadable),
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return fail(FormError::BadEncoding);
        };
        match Params::parse(text) {
            Ok(params) => data::Outcome::Success(FormBody(params)),
            Err(error) => fail(error),
        }
    }
}

/// The query string, parsed by the same rules as a form body.
#[derive(Debug, Clone)]
pub struct Query(pub Params);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Query {
    type Error = FormError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let raw = req.uri().query().map(|query| query.as_str()).unwrap_or("");
        match Params::parse(raw) {
            Ok(params) => request::Outcome::Success(Query(params)),
            Err(error) => request::Outcome::Error((status_of(&error), error)),
        }
    }
}

/// A form body whose CSRF token matched the cookie (and that no other site submitted): what
/// every state-changing page form is read as.
pub struct CheckedForm(pub Params);

#[rocket::async_trait]
impl<'r> FromData<'r> for CheckedForm {
    type Error = crate::web::error::WebError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        use crate::web::csrf::{CsrfCheck, FIELD};
        let params = match FormBody::from_data(req, data).await {
            data::Outcome::Success(FormBody(params)) => params,
            data::Outcome::Error((status, error)) => {
                return data::Outcome::Error((status, error.into()));
            }
            data::Outcome::Forward(forward) => return data::Outcome::Forward(forward),
        };
        let check = match CsrfCheck::from_request(req).await {
            request::Outcome::Success(check) => check,
            _ => {
                return data::Outcome::Error((
                    Status::Forbidden,
                    crate::web::error::WebError::Csrf("the CSRF check failed"),
                ));
            }
        };
        let verified = params
            .single(FIELD)
            .map_err(crate::web::error::WebError::from)
            .and_then(|token| check.verify(token));
        match verified {
            Ok(()) => data::Outcome::Success(CheckedForm(params)),
            Err(error) => data::Outcome::Error((error.status(), error)),
        }
    }
}
