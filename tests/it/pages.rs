//! Pages, static files, health, error shapes and security headers.

use rocket::http::{ContentType, Method};

use crate::support::{App, header};

#[test]
fn home_says_what_this_is_and_links_to_login_admin_and_discovery() {
    let app = App::demo();
    let response = app.client.get("/").dispatch();
    assert_eq!(response.status().code, 200);
    assert_eq!(response.content_type(), Some(ContentType::HTML));
    let html = response.into_string().unwrap();
    assert!(html.contains("OAuth 2.0 authorization server and OpenID Connect provider"));
    for link in [
        "/accounts/login/",
        "/admin/",
        "/o/.well-known/openid-configuration",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert!(html.contains("Issuer: <code>http:&#x2F;&#x2F;localhost&#x2F;o</code>"));
}

#[test]
fn pages_carry_security_headers() {
    let app = App::demo();
    let response = app.client.get("/accounts/login/").dispatch();
    assert_eq!(header(&response, "X-Frame-Options"), Some("DENY"));
    assert_eq!(header(&response, "X-Content-Type-Options"), Some("nosniff"));
    assert!(
        header(&response, "Content-Security-Policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
    let csrf = response.cookies().get("csrftoken").unwrap();
    assert!(csrf.http_only().unwrap_or(false));
}

#[test]
fn cookies_are_secure_when_the_issuer_is_https() {
    let app = App::with(
        |settings| settings.issuer = Some("https://id.example/o".to_owned()),
        oxidot::server::demo_fixture_files(),
    );
    let page = app.client.get("/accounts/login/").dispatch();
    assert_eq!(
        page.cookies().get("csrftoken").unwrap().secure(),
        Some(true)
    );
    drop(page);
    let response = app.login("admin", "admin123");
    assert_eq!(
        response.cookies().get("sessionid").unwrap().secure(),
        Some(true)
    );
}

#[test]
fn static_assets_are_embedded() {
    let app = App::demo();
    let response = app.client.get("/static/oxidot.css").dispatch();
    assert_eq!(response.status().code, 200);
    assert_eq!(response.content_type(), Some(ContentType::CSS));
    assert!(
        header(&response, "Cache-Control")
            .unwrap()
            .contains("max-age")
    );
    assert!(response.into_string().unwrap().contains("--accent"));
    assert_eq!(
        app.client.get("/static/nope.css").dispatch().status().code,
        404
    );
    assert_eq!(
        app.client
            .get("/static/../Cargo.toml")
            .dispatch()
            .status()
            .code,
        404
    );
}

#[test]
fn healthz_answers_json() {
    let app = App::demo();
    let response = app.client.get("/healthz").dispatch();
    assert_eq!(response.status().code, 200);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    assert_eq!(response.into_string().unwrap(), r#"{"status":"ok"}"#);
}

#[test]
fn not_found_is_json_on_api_paths_and_a_page_elsewhere() {
    let app = App::demo();
    let api = app.client.get("/o/no-such-endpoint/").dispatch();
    assert_eq!(api.status().code, 404);
    assert_eq!(api.content_type(), Some(ContentType::JSON));
    let body: serde_json::Value = serde_json::from_str(&api.into_string().unwrap()).unwrap();
    assert_eq!(body["error"], "not_found");

    let page = app.client.get("/no-such-page").dispatch();
    assert_eq!(page.status().code, 404);
    assert_eq!(page.content_type(), Some(ContentType::HTML));
    assert!(page.into_string().unwrap().contains("Not Found"));
}

#[test]
fn wrong_methods_get_405_with_allow() {
    let app = App::demo();
    let response = app.client.delete("/accounts/login/").dispatch();
    assert_eq!(response.status().code, 405);
    assert_eq!(header(&response, "Allow"), Some("GET, HEAD, POST"));
    assert_eq!(response.content_type(), Some(ContentType::HTML));

    let api = app.client.req(Method::Put, "/healthz").dispatch();
    assert_eq!(api.status().code, 405);
    assert_eq!(api.content_type(), Some(ContentType::JSON));
    let body: serde_json::Value = serde_json::from_str(&api.into_string().unwrap()).unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

#[test]
fn malformed_queries_get_400_not_5xx() {
    let app = App::demo();
    for query in ["next=%FF", "next=/a&next=/b", "next=%00"] {
        let response = app
            .client
            .get(format!("/accounts/login/?{query}"))
            .dispatch();
        assert_eq!(response.status().code, 400, "{query}");
    }
}

#[test]
fn login_hint_prefills_the_username() {
    let app = App::demo();
    let html = app
        .client
        .get("/accounts/login/?login_hint=alice%40example.com")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(html.contains(r#"value="alice@example.com""#));
}
