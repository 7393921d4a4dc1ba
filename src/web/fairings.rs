//! Response headers every page gets, and one log line per request (path only: query strings
//! can carry codes and tokens, so they are never logged).

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header};
use rocket::{Data, Request, Response};

pub struct SecurityHeaders;

const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                        script-src 'self'; frame-ancestors 'none'; base-uri 'none'";

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, _req: &'r Request<'_>, res: &mut Response<'r>) {
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        if res.content_type().is_some_and(|ct| ct == ContentType::HTML) {
            res.set_header(Header::new("Content-Security-Policy", PAGE_CSP));
            if !res.headers().contains("Cache-Control") {
                res.set_header(Header::new("Cache-Control", "no-store"));
            }
        }
    }
}

pub struct RequestLog;

#[derive(Clone, Copy)]
struct Started(Instant);

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info {
            name: "request log",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let started = req.local_cache(|| Started(Instant::now()));
        tracing::debug!(
            method = %req.method(),
            path = %req.uri().path(),
            status = res.status().code,
            micros = started.0.elapsed().as_micros() as u64,
            "request"
        );
    }
}
