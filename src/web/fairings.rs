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

/// A short random id per request: in the `X-Request-Id` header and on every log line the
/// request's handler writes (its span), so one request's lines can be found together.
#[derive(Clone)]
pub struct RequestId(pub String);

/// Ids need to be unique, not unguessable: a counter from a random start, no system call per
/// request (this runs on every request, the token endpoint's included).
fn request_id<'r>(req: &'r Request<'_>) -> &'r RequestId {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: std::sync::LazyLock<AtomicU32> = std::sync::LazyLock::new(|| {
        let mut seed = [0u8; 4];
        let _ = getrandom::fill(&mut seed);
        AtomicU32::new(u32::from_le_bytes(seed))
    });
    req.local_cache(|| RequestId(format!("{:08x}", NEXT.fetch_add(1, Ordering::Relaxed))))
}

/// Runs each route's handler inside a `request` span carrying the request id.
#[derive(Clone)]
struct Traced(Box<dyn rocket::route::Handler>);

#[rocket::async_trait]
impl rocket::route::Handler for Traced {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> rocket::route::Outcome<'r> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("request", id = %request_id(req).0);
        self.0.handle(req, data).instrument(span).await
    }
}

pub fn traced(routes: Vec<rocket::Route>) -> Vec<rocket::Route> {
    routes
        .into_iter()
        .map(|mut route| {
            route.handler = Box::new(Traced(route.handler));
            route
        })
        .collect()
}

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
        request_id(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let started = req.local_cache(|| Started(Instant::now()));
        let elapsed = started.0.elapsed();
        let id = request_id(req);
        res.set_header(Header::new("X-Request-Id", id.0.clone()));
        // The route's template, never the path itself (paths can hold ids; unmatched paths
        // are unbounded).
        let route = req.route().map_or_else(
            || "unmatched".to_owned(),
            |route| {
                route
                    .uri
                    .as_str()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            },
        );
        // The access log: the route's template, never the path or the query string (codes,
        // tokens and ids travel there).
        tracing::info!(
            target: "oxidot::access",
            request_id = %id.0,
            method = %req.method(),
            route = %route,
            status = res.status().code,
            millis = format_args!("{:.2}", elapsed.as_secs_f64() * 1000.0),
            "request"
        );
        let metrics = crate::metrics::global();
        metrics
            .requests
            .get_or_create(&crate::metrics::RequestLabels {
                method: req.method().as_str(),
                route: route.clone(),
                status: res.status().code,
            })
            .inc();
        metrics
            .request_seconds
            .get_or_create(&crate::metrics::RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }
}
