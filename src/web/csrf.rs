//! CSRF protection for every form: a random token in an HttpOnly cookie that each form echoes
//! in `csrfmiddlewaretoken` (Django's names), compared in constant time; a cross-site `Origin`
//! header is refused as well.

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{self, FromRequest, Request};
use subtle::ConstantTimeEq;

use crate::random;
use crate::web::error::WebError;

pub const COOKIE: &str = "csrftoken";
pub const FIELD: &str = "csrfmiddlewaretoken";
const ONE_YEAR: i64 = 365 * 24 * 3600;

/// The token of this browser, created (and sent as a cookie) when it has none yet.
pub fn token(cookies: &CookieJar<'_>, secure: bool) -> Result<String, WebError> {
    if let Some(existing) = cookies.get(COOKIE).map(|cookie| cookie.value().to_owned())
        && is_well_formed(&existing)
    {
        return Ok(existing);
    }
    rotate(cookies, secure)
}

/// A fresh token, as after login (a token known before login must not outlive it).
pub fn rotate(cookies: &CookieJar<'_>, secure: bool) -> Result<String, WebError> {
    let fresh = random::token(32)?;
    cookies.add(
        Cookie::build((COOKIE, fresh.clone()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(rocket::time::Duration::seconds(ONE_YEAR)),
    );
    Ok(fresh)
}

fn is_well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a POST needs to be checked for CSRF: the cookie's token and whether the browser said
/// the request came from another site.
pub struct CsrfCheck {
    cookie: Option<String>,
    cross_site: bool,
}

impl CsrfCheck {
    /// Checks a submitted form's token against the cookie.
    pub fn verify(&self, submitted: Option<&str>) -> Result<(), WebError> {
        if self.cross_site {
            return Err(WebError::Csrf("the form was submitted from another site"));
        }
        match (&self.cookie, submitted) {
            (None, _) => Err(WebError::Csrf(
                "the CSRF cookie is missing; reload the page and try again",
            )),
            (Some(_), None) => Err(WebError::Csrf("the form has no CSRF token")),
            (Some(cookie), Some(submitted)) => {
                if bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes())) {
                    Ok(())
                } else {
                    Err(WebError::Csrf(
                        "the CSRF token is wrong; reload the page and try again",
                    ))
                }
            }
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfCheck {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        // Browsers send `Origin` on cross-site form posts, so a page elsewhere cannot submit our
        // forms even if it managed to plant a cookie.
        let origin = req.headers().get_one("Origin");
        let host = req.headers().get_one("Host");
        let cross_site = match (origin, host) {
            (None, _) | (Some("null"), _) => false,
            (Some(origin), Some(host)) => !origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
            (Some(_), None) => true,
        };
        let cookie = req
            .cookies()
            .get(COOKIE)
            .map(|cookie| cookie.value().to_owned());
        request::Outcome::Success(CsrfCheck { cookie, cross_site })
    }
}
