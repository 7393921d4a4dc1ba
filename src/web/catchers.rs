//! Answers for requests no route took: 404, 405 (with `Allow`), 413, 422 and the rest, as JSON
//! on API paths and as a page elsewhere.

use rocket::http::{Header, Method, Status};
use rocket::{Catcher, Request, catcher};

use crate::web::error::{error_response, is_api_path};

/// A page that needs a signed-in user sends the browser to log in, and back here afterwards.
fn login_redirect(req: &Request<'_>) -> rocket::Response<'static> {
    let here = req.uri().to_string();
    let form = if here.starts_with("/admin") {
        "/admin/login/"
    } else {
        "/accounts/login/"
    };
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    rocket::Response::build()
        .status(Status::SeeOther)
        .header(Header::new("Location", format!("{form}?next={next}")))
        .finalize()
}

pub fn all() -> Vec<Catcher> {
    vec![Catcher::new(None, handle)]
}

fn handle<'r>(status: Status, req: &'r Request<'_>) -> catcher::BoxFuture<'r> {
    Box::pin(async move {
        if status == Status::NotFound {
            let allowed = allowed_methods(req);
            if !allowed.is_empty() {
                let mut response =
                    error_response(req, Status::MethodNotAllowed, "method not allowed here");
                response.set_header(Header::new("Allow", allowed.join(", ")));
                return Ok(response);
            }
        }
        if status == Status::Unauthorized && !is_api_path(req.uri().path().as_str()) {
            return Ok(login_redirect(req));
        }
        let message = match status.code {
            400 => "The request is malformed.",
            403 => "Your account may not use this page.",
            404 => "There is nothing at this address.",
            413 => "The request is too large.",
            415 => "The request body has the wrong content type.",
            422 => "The request could not be understood.",
            code if code >= 500 => "Something went wrong on our side.",
            _ => status.reason_lossy(),
        };
        let status = if status.code == 422 {
            Status::BadRequest
        } else {
            status
        };
        Ok(error_response(req, status, message))
    })
}

/// Methods of the routes whose path matches this request's path.
fn allowed_methods(req: &Request<'_>) -> Vec<&'static str> {
    let path = req.uri().path();
    let mut methods: Vec<&'static str> = req
        .rocket()
        .routes()
        .filter(|route| route.method != req.method())
        .filter(|route| path_matches(route.uri.path(), path.as_str()))
        .map(|route| route.method.as_str())
        .collect();
    if methods.contains(&Method::Get.as_str()) && !methods.contains(&Method::Head.as_str()) {
        methods.push(Method::Head.as_str());
    }
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// Rocket 0.5 ignores empty segments (so `/a/` and `/a` are one path); so does this.
fn path_matches(template: &str, path: &str) -> bool {
    let mut wanted = template.split('/').filter(|segment| !segment.is_empty());
    let mut given = path.split('/').filter(|segment| !segment.is_empty());
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(segment), _) if segment.starts_with('<') && segment.ends_with("..>") => {
                return true;
            }
            (Some(segment), Some(actual)) if segment.starts_with('<') => {
                if actual.is_empty() {
                    return false;
                }
            }
            (Some(segment), Some(actual)) if segment == actual => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn route_templates_match_paths() {
        assert!(path_matches("/accounts/login", "/accounts/login/"));
        assert!(path_matches("/accounts/login", "/accounts/login"));
        assert!(!path_matches("/accounts/login", "/accounts/login/x"));
        assert!(path_matches("/static/<path..>", "/static/a/b.css"));
        assert!(path_matches("/admin/users/<id>", "/admin/users/7/"));
        assert!(!path_matches("/admin/users/<id>", "/admin/users/"));
    }
}
