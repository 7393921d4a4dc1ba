use rocket::http::ContentType;
use rocket::{Route, get, routes};

/// Liveness: the process answers HTTP.
#[get("/healthz")]
fn healthz() -> (ContentType, &'static str) {
    (ContentType::JSON, r#"{"status":"ok"}"#)
}

pub fn routes() -> Vec<Route> {
    routes![healthz]
}
