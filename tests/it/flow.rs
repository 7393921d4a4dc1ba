//! The authorization code flow as tests drive it: the tutorial's request, consent, exchange.

use base64::Engine as _;
use rocket::http::{ContentType, Header};
use serde_json::Value;
use sha2::Digest as _;

use crate::support::{App, enc, header};

pub const POSTMAN: &str = "https://oauth.pstmn.io/v1/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The tutorial's request: hash1, Postman's callback, PKCE S256, a state.
pub fn tutorial_request() -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".to_owned()),
        ("client_id", "hash1".to_owned()),
        ("redirect_uri", POSTMAN.to_owned()),
        ("scope", "read write".to_owned()),
        ("state", "xyz-123".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ]
}

pub fn url_for(pairs: &[(&'static str, String)]) -> String {
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("/o/authorize/?{}", query(&borrowed))
}

pub fn with(
    mut pairs: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    pairs.retain(|(key, _)| *key != name);
    if let Some(value) = value {
        pairs.push((name, value.to_owned()));
    }
    pairs
}

/// The query parameters of a redirect.
pub fn location_params(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(location: &str, name: &str) -> Option<String> {
    location_params(location)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

pub fn logged_in() -> App {
    let app = App::demo();
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    app
}

/// Approves the consent page for `pairs` and returns the redirect location.
pub fn approve(app: &App, pairs: &[(&'static str, String)]) -> String {
    let page = app.client.get(url_for(pairs)).dispatch();
    assert_eq!(page.status().code, 200);
    let mut body = format!("csrfmiddlewaretoken={}&allow=Authorize", app.csrf());
    for (name, value) in pairs {
        body.push_str(&format!("&{name}={}", enc(value)));
    }
    let response = app.post_form("/o/authorize/", &body);
    assert_eq!(response.status().code, 302);
    header(&response, "Location").unwrap().to_owned()
}

pub fn exchange(app: &App, code: &str, extra: &str, auth: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = app
        .client
        .post("/o/token/")
        .header(ContentType::Form)
        .body(format!("grant_type=authorization_code&code={code}{extra}"));
    if let Some((id, secret)) = auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        request = request.header(Header::new("Authorization", format!("Basic {encoded}")));
    }
    let response = request.dispatch();
    let status = response.status().code;
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

pub fn tutorial_exchange(app: &App, code: &str) -> (u16, Value) {
    exchange(
        app,
        code,
        &format!("&redirect_uri={}&code_verifier={VERIFIER}", enc(POSTMAN)),
        Some(("hash1", "hashed")),
    )
}

/// The status `/api/hello` answers for a bearer token.
pub fn hello(app: &App, access_token: &str) -> u16 {
    app.client
        .get("/api/hello")
        .header(Header::new(
            "Authorization",
            format!("Bearer {access_token}"),
        ))
        .dispatch()
        .status()
        .code
}
