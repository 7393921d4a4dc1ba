//! CORS for the endpoints browsers call directly (token, revocation, introspection, userinfo): an origin
//! gets CORS headers only when it is in the `allowed_origins` of the client the request names.
//! Preflights are answered for origins some application allows.

use rocket::http::{Header, Status};
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder, Response};
use rocket::{Route, State, options, routes};

use crate::applications::Applications;
use crate::store::Application;
use crate::web::AppState;

/// The request's `Origin` header.
pub struct Origin(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Origin {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        request::Outcome::Success(Origin(
            req.headers()
                .get_one("Origin")
                .filter(|origin| *origin != "null")
                .map(str::to_owned),
        ))
    }
}

fn same_origin(allowed: &str, origin: &str) -> bool {
    allowed.trim_end_matches('/').eq_ignore_ascii_case(origin)
}

pub fn application_allows(application: &Application, origin: &str) -> bool {
    application
        .allowed_origins
        .iter()
        .any(|allowed| same_origin(allowed, origin))
}

impl Origin {
    /// The origin, when the client named `client_id` allows it.
    pub async fn allowed_for(
        &self,
        applications: &Applications,
        client_id: Option<&str>,
    ) -> Option<String> {
        let origin = self.0.as_deref()?;
        let client_id = client_id?;
        let application = applications.by_client_id(client_id).await.ok()??;
        application_allows(&application, origin).then(|| origin.to_owned())
    }
}

/// A response that carries CORS headers for `origin` when there is one.
pub struct Cors<R> {
    pub inner: R,
    pub origin: Option<String>,
}

impl<R> Cors<R> {
    pub fn new(inner: R, origin: Option<String>) -> Self {
        Self { inner, origin }
    }
}

impl<'r, R: Responder<'r, 'static>> Responder<'r, 'static> for Cors<R> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.inner.respond_to(req)?;
        response.set_header(Header::new("Vary", "Origin"));
        if let Some(origin) = self.origin {
            response.set_header(Header::new("Access-Control-Allow-Origin", origin));
        }
        Ok(response)
    }
}

struct Preflight {
    origin: Option<String>,
    methods: &'static str,
}

impl<'r> Responder<'r, 'static> for Preflight {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .status(Status::NoContent)
            .header(Header::new("Vary", "Origin"));
        if let Some(origin) = self.origin {
            response
                .header(Header::new("Access-Control-Allow-Origin", origin))
                .header(Header::new("Access-Control-Allow-Methods", self.methods))
                .header(Header::new(
                    "Access-Control-Allow-Headers",
                    "Authorization, Content-Type",
                ))
                .header(Header::new("Access-Control-Max-Age", "600"));
        }
        response.ok()
    }
}

/// A preflight names no client, so any application's allowed origin passes it; the actual
/// request is then checked against the client it names.
async fn preflight(state: &AppState, origin: &Origin, methods: &'static str) -> Preflight {
    let allowed = match origin.0.as_deref() {
        Some(origin) => state
            .applications
            .all()
            .await
            .ok()
            .filter(|applications| {
                applications
                    .iter()
                    .any(|application| application_allows(application, origin))
            })
            .map(|_| origin.to_owned()),
        None => None,
    };
    Preflight {
        origin: allowed,
        methods,
    }
}

#[options("/o/token")]
async fn token_preflight(origin: Origin, state: &State<AppState>) -> Preflight {
    preflight(state, &origin, "POST, OPTIONS").await
}

#[options("/o/revoke_token")]
async fn revoke_preflight(origin: Origin, state: &State<AppState>) -> Preflight {
    preflight(state, &origin, "POST, OPTIONS").await
}

#[options("/o/introspect")]
async fn introspect_preflight(origin: Origin, state: &State<AppState>) -> Preflight {
    preflight(state, &origin, "GET, POST, OPTIONS").await
}

#[options("/o/userinfo")]
async fn userinfo_preflight(origin: Origin, state: &State<AppState>) -> Preflight {
    preflight(state, &origin, "GET, POST, OPTIONS").await
}

pub fn routes() -> Vec<Route> {
    routes![
        token_preflight,
        revoke_preflight,
        introspect_preflight,
        userinfo_preflight
    ]
}
