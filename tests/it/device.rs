//! The device authorization grant (RFC 8628) end to end over HTTP.

use rocket::http::ContentType;
use serde_json::Value;

use crate::support::{App, enc, header};

const FIXTURE: &str = r#"
- model: oauth2_provider.application
  pk: 60
  fields: {client_id: tv, user: 1, client_type: public, name: Living room TV,
           authorization_grant_type: "urn:ietf:params:oauth:grant-type:device_code"}
- model: oauth2_provider.application
  pk: 61
  fields: {client_id: other-tv, user: 1, client_type: public, name: Other TV,
           authorization_grant_type: "urn:ietf:params:oauth:grant-type:device_code"}
"#;

fn app() -> App {
    App::with(
        |settings| settings.login_throttle.max_failures_per_source = 3,
        {
            let mut files = oxidot::server::demo_fixture_files();
            files.push(oxidot::fixtures::FixtureFile {
                name: "tv.yaml".to_owned(),
                contents: FIXTURE.to_owned(),
            });
            files
        },
    )
}

fn json_post(app: &App, path: &str, body: &str) -> (u16, Value) {
    let response = app.post_form(path, body);
    let status = response.status().code;
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

fn start(app: &App, client: &str) -> Value {
    let (status, body) = json_post(
        app,
        "/o/device-authorization/",
        &format!("client_id={client}&scope=read"),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn poll(app: &App, client: &str, device_code: &str) -> (u16, Value) {
    json_post(
        app,
        "/o/token/",
        &format!(
            "grant_type={}&client_id={client}&device_code={device_code}",
            enc("urn:ietf:params:oauth:grant-type:device_code")
        ),
    )
}

fn enter_and_decide(app: &App, user_code: &str, action: &str) -> String {
    let csrf = app.csrf();
    let confirm = app.post_form(
        "/o/device/",
        &format!("csrfmiddlewaretoken={csrf}&user_code={}", enc(user_code)),
    );
    assert_eq!(confirm.status().code, 200);
    let html = confirm.into_string().unwrap();
    assert!(html.contains("Authorize Living room TV?"), "{html}");
    let done = app.post_form(
        "/o/device/confirm/",
        &format!(
            "csrfmiddlewaretoken={csrf}&user_code={}&action={action}",
            enc(user_code)
        ),
    );
    assert_eq!(done.status().code, 200);
    done.into_string().unwrap()
}

#[test]
fn a_device_gets_tokens_after_the_user_approves() {
    let app = app();
    let started = start(&app, "tv");
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(started["verification_uri"], "http://localhost/o/device/");
    assert_eq!(
        started["verification_uri_complete"],
        format!("http://localhost/o/device/?user_code={user_code}")
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);

    let (status, body) = poll(&app, "tv", &device_code);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (status, body) = poll(&app, "tv", &device_code);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("slow_down")),
        "polled too soon"
    );
    app.clock.advance(time::Duration::seconds(10));
    let (_, body) = poll(&app, "tv", &device_code);
    assert_eq!(body["error"], "authorization_pending");

    // The user: sent to log in first, then back to the code page with the code filled in.
    let page = app
        .client
        .get(format!("/o/device/?user_code={user_code}"))
        .dispatch();
    assert_eq!(page.status().code, 303);
    let to_login = header(&page, "Location").unwrap().to_owned();
    assert!(to_login.starts_with("/accounts/login/?next="));
    drop(page);
    app.login("admin", "admin123");
    let page = app
        .client
        .get(format!("/o/device/?user_code={user_code}"))
        .dispatch();
    assert!(
        page.into_string()
            .unwrap()
            .contains(&format!("value=\"{user_code}\""))
    );
    // Typed in lower case without the dash: still found.
    let typed = user_code.replace('-', "").to_lowercase();
    let done = enter_and_decide(&app, &typed, "approve");
    assert!(done.contains("Device connected"));

    app.clock.advance(time::Duration::seconds(20));
    let (status, tokens) = poll(&app, "tv", &device_code);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "read");
    assert!(tokens["refresh_token"].as_str().is_some());
    let hello = app
        .client
        .get("/api/hello")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
        ))
        .dispatch();
    assert_eq!(hello.status().code, 200);

    // The device code is single-use.
    app.clock.advance(time::Duration::seconds(20));
    let (_, body) = poll(&app, "tv", &device_code);
    assert_eq!(body["error"], "invalid_grant");
}

#[test]
fn denial_expiry_and_other_clients() {
    let app = app();
    app.login("admin", "admin123");
    let started = start(&app, "tv");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let (_, body) = poll(&app, "other-tv", &device_code);
    assert_eq!(
        body["error"], "invalid_grant",
        "another client's device code"
    );
    let done = enter_and_decide(&app, started["user_code"].as_str().unwrap(), "deny");
    assert!(done.contains("Request denied"));
    app.clock.advance(time::Duration::seconds(10));
    let (_, body) = poll(&app, "tv", &device_code);
    assert_eq!(body["error"], "access_denied");

    let late = start(&app, "tv");
    app.clock.advance(time::Duration::seconds(600));
    let (_, body) = poll(&app, "tv", late["device_code"].as_str().unwrap());
    assert_eq!(body["error"], "expired_token");
    // An expired code is no longer offered to the user either.
    let csrf = app.csrf();
    let response = app.post_form(
        "/o/device/",
        &format!(
            "csrfmiddlewaretoken={csrf}&user_code={}",
            enc(late["user_code"].as_str().unwrap())
        ),
    );
    assert_eq!(response.status().code, 400);

    // A client without the grant cannot start one.
    let (status, body) = json_post(
        &app,
        "/o/device-authorization/",
        "client_id=hash1&client_secret=hashed",
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, body) = json_post(&app, "/o/device-authorization/", "client_id=nobody");
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[test]
fn wrong_user_codes_are_refused_then_throttled_and_csrf_is_checked() {
    let app = app();
    app.login("admin", "admin123");
    let csrf = app.csrf();
    for _ in 0..3 {
        let response = app.post_form(
            "/o/device/",
            &format!("csrfmiddlewaretoken={csrf}&user_code=BCDF-GHJK"),
        );
        assert_eq!(response.status().code, 400);
        assert!(
            response
                .into_string()
                .unwrap()
                .contains("not valid, or has expired")
        );
    }
    let response = app.post_form(
        "/o/device/",
        &format!("csrfmiddlewaretoken={csrf}&user_code=BCDF-GHJK"),
    );
    assert_eq!(response.status().code, 429);
    assert!(header(&response, "Retry-After").is_some());
    drop(response);
    let started = start(&app, "tv");
    let forged = app.post_form(
        "/o/device/confirm/",
        &format!(
            "user_code={}&action=approve",
            enc(started["user_code"].as_str().unwrap())
        ),
    );
    assert_eq!(forged.status().code, 403);
}
