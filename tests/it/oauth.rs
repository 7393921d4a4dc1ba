//! The token endpoint (client credentials, password, refresh), client authentication,
//! revocation, introspection and the protected `/api/hello`, over HTTP.

use base64::Engine as _;
use rocket::http::{ContentType, Header};
use rocket::local::blocking::LocalResponse;
use serde_json::Value;

use crate::fixtures::sample;
use crate::flow::hello;
use crate::support::{App, header};

/// The DOT 3.4.1 sample: `cc-client`, `password-client`, `introspector` (secret `<id>-secret`),
/// user alice / alice-pass-123.
/// The access and refresh tokens the sample dump itself holds.
const SAMPLE_TOKENS: (u64, u64) = (2, 1);

pub fn app() -> App {
    App::with(|_| {}, vec![sample("dot-3.4.1-dumpdata.yaml")])
}

fn app_with(adjust: impl FnOnce(&mut oxidot::config::Settings)) -> App {
    App::with(adjust, vec![sample("dot-3.4.1-dumpdata.yaml")])
}

pub fn basic(id: &str, secret: &str) -> Header<'static> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    Header::new("Authorization", format!("Basic {encoded}"))
}

pub fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

pub fn post<'a>(
    app: &'a App,
    path: &str,
    auth: Option<Header<'static>>,
    body: &str,
) -> LocalResponse<'a> {
    let mut request = app
        .client
        .post(path.to_owned())
        .header(ContentType::Form)
        .body(body);
    if let Some(auth) = auth {
        request = request.header(auth);
    }
    request.dispatch()
}

pub fn json(response: LocalResponse<'_>) -> (u16, Value) {
    let status = response.status().code;
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    let body = response.into_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub fn client_credentials(app: &App, scope: &str) -> Value {
    let (status, body) = json(post(
        app,
        "/o/token/",
        Some(basic("cc-client", "cc-client-secret")),
        &format!("grant_type=client_credentials&scope={scope}"),
    ));
    assert_eq!(status, 200, "{body}");
    body
}

pub fn password_grant(app: &App, scope: &str) -> Value {
    let (status, body) = json(post(
        app,
        "/o/token/",
        Some(basic("password-client", "password-client-secret")),
        &format!("grant_type=password&username=alice&password=alice-pass-123&scope={scope}"),
    ));
    assert_eq!(status, 200, "{body}");
    body
}

fn refresh(app: &App, token: &str, extra: &str) -> (u16, Value) {
    json(post(
        app,
        "/o/token/",
        Some(basic("password-client", "password-client-secret")),
        &format!("grant_type=refresh_token&refresh_token={token}{extra}"),
    ))
}

fn token_counts(app: &App) -> (u64, u64) {
    app.store
        .read(|tx| Ok((tx.access_token_count()?, tx.refresh_token_count()?)))
        .unwrap()
}

#[test]
fn client_credentials_issue_a_bearer_token_in_dots_shape() {
    let app = app();
    let response = post(
        &app,
        "/o/token/",
        Some(basic("cc-client", "cc-client-secret")),
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
    assert_eq!(header(&response, "Pragma"), Some("no-cache"));
    let text = response.into_string().unwrap();
    let keys: Vec<&str> = ["access_token", "expires_in", "token_type", "scope"]
        .into_iter()
        .filter(|key| text.contains(&format!("\"{key}\"")))
        .collect();
    assert_eq!(keys.len(), 4, "{text}");
    let order: Vec<usize> = keys.iter().map(|key| text.find(key).unwrap()).collect();
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "DOT's field order: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 36000);
    assert_eq!(body["scope"], "read");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        token.len(),
        54,
        "an 8-byte ordering prefix and 256 random bits, base64url"
    );
    assert_eq!(hello(&app, token), 200);

    // Stored by hash, never by value.
    let key = oxidot::store::SecretKey::of_token(token);
    let stored = app.store.read(|tx| tx.access_token(&key)).unwrap().unwrap();
    assert_eq!(stored.user, None);
    assert_eq!(stored.tail, token[50..]);
    let file = std::fs::read(app.store.path()).unwrap();
    assert!(
        !file
            .windows(token.len())
            .any(|window| window == token.as_bytes())
    );
}

#[test]
fn the_dot_pbkdf2_client_secret_is_upgraded_on_first_use_and_keeps_working() {
    let app = app();
    let before = app
        .store
        .read(|tx| tx.application_by_client_id("cc-client"))
        .unwrap()
        .unwrap();
    assert!(before.client_secret.starts_with("pbkdf2_sha256$"));
    client_credentials(&app, "read");
    let after = app
        .store
        .read(|tx| tx.application_by_client_id("cc-client"))
        .unwrap()
        .unwrap();
    assert!(after.client_secret.starts_with("argon2$argon2id$"));
    for _ in 0..3 {
        client_credentials(&app, "read");
    }
}

#[test]
fn client_secret_post_and_no_scope_gives_the_default_scopes() {
    let app = app();
    let (status, body) = json(post(
        &app,
        "/o/token/",
        None,
        "grant_type=client_credentials&client_id=cc-client&client_secret=cc-client-secret",
    ));
    assert_eq!(status, 200);
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.contains("read") && scope.contains("write") && scope.contains("openid"));
}

#[test]
fn bad_client_authentication_is_invalid_client_with_the_right_challenge() {
    let app = app();
    let cases: Vec<(Option<Header<'static>>, &str, bool)> = vec![
        (
            Some(basic("cc-client", "wrong")),
            "grant_type=client_credentials",
            true,
        ),
        (
            Some(basic("nobody", "secret")),
            "grant_type=client_credentials",
            true,
        ),
        (
            None,
            "grant_type=client_credentials&client_id=cc-client&client_secret=wrong",
            false,
        ),
        (
            None,
            "grant_type=client_credentials&client_id=cc-client",
            false,
        ),
        (None, "grant_type=client_credentials", false),
        (
            Some(Header::new("Authorization", "Basic not-base64!")),
            "grant_type=client_credentials",
            true,
        ),
    ];
    for (auth, body, used_basic) in cases {
        let response = post(&app, "/o/token/", auth, body);
        let challenge = header(&response, "WWW-Authenticate").map(str::to_owned);
        let (status, json) = json(response);
        assert_eq!(status, 401, "{body}");
        assert_eq!(json["error"], "invalid_client", "{body}");
        assert_eq!(challenge.is_some(), used_basic, "{body}");
    }
    assert_eq!(token_counts(&app), SAMPLE_TOKENS);
}

#[test]
fn grants_the_client_may_not_use_and_unknown_grants_are_refused() {
    let app = app();
    let (status, body) = json(post(
        &app,
        "/o/token/",
        Some(basic("hash1", "hashed")),
        "grant_type=client_credentials",
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, body) = json(post(
        &app,
        "/o/token/",
        Some(basic("cc-client", "cc-client-secret")),
        "grant_type=magic",
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = json(post(
        &app,
        "/o/token/",
        Some(basic("cc-client", "cc-client-secret")),
        "grant_type=client_credentials&scope=read+admin",
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert_eq!(token_counts(&app), SAMPLE_TOKENS);
}

#[test]
fn malformed_token_requests_get_invalid_request_and_change_nothing() {
    let app = app();
    let auth = || Some(basic("cc-client", "cc-client-secret"));
    let cases: Vec<(ContentType, Vec<u8>)> = vec![
        (
            ContentType::JSON,
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (
            ContentType::Plain,
            b"grant_type=client_credentials".to_vec(),
        ),
        (
            ContentType::Form,
            b"grant_type=client_credentials&grant_type=password".to_vec(),
        ),
        (
            ContentType::Form,
            b"grant_type=client_credentials&scope=\xff".to_vec(),
        ),
        (
            ContentType::Form,
            b"grant_type=client_credentials&scope=%FF".to_vec(),
        ),
        (ContentType::Form, b"".to_vec()),
        (ContentType::Form, b"grant_type=".to_vec()),
        (
            ContentType::Form,
            format!("grant_type=client_credentials&pad={}", "x".repeat(100_000)).into_bytes(),
        ),
    ];
    for (content_type, body) in cases {
        let mut request = app
            .client
            .post("/o/token/")
            .header(content_type.clone())
            .body(body.clone());
        if let Some(auth) = auth() {
            request = request.header(auth);
        }
        let (status, json) = json(request.dispatch());
        assert_eq!(
            status,
            400,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        assert_eq!(json["error"], "invalid_request");
        assert!(
            json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    // Wrong method: 405 in JSON.
    let response = app.client.get("/o/token/").dispatch();
    assert_eq!(response.status().code, 405);
    assert_eq!(header(&response, "Allow"), Some("OPTIONS, POST"));
    assert_eq!(token_counts(&app), SAMPLE_TOKENS);
}

#[test]
fn api_hello_needs_a_live_token_with_the_read_scope() {
    let app = app();
    let read = client_credentials(&app, "read")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .get("/api/hello")
        .header(bearer(&read))
        .dispatch();
    assert_eq!(response.status().code, 200);
    assert_eq!(response.into_string().unwrap(), "Hello, OAuth2!");

    let missing = app.client.get("/api/hello").dispatch();
    assert_eq!(missing.status().code, 401);
    assert!(
        header(&missing, "WWW-Authenticate")
            .unwrap()
            .starts_with("Bearer")
    );

    let bogus = app
        .client
        .get("/api/hello")
        .header(bearer("nope"))
        .dispatch();
    assert_eq!(bogus.status().code, 401);
    assert!(
        header(&bogus, "WWW-Authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(json(bogus).1["error"], "invalid_token");

    let write = client_credentials(&app, "write")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong_scope = app
        .client
        .get("/api/hello")
        .header(bearer(&write))
        .dispatch();
    assert_eq!(wrong_scope.status().code, 403);
    let challenge = header(&wrong_scope, "WWW-Authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"read\"")
    );

    app.clock.advance(time::Duration::seconds(36_000));
    assert_eq!(hello(&app, &read), 401, "expired");
}

#[test]
fn the_protected_scope_is_configurable() {
    let app = app_with(|settings| settings.protected_resource_scope = "write".to_owned());
    let read = client_credentials(&app, "read")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let write = client_credentials(&app, "write")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(hello(&app, &read), 403);
    assert_eq!(hello(&app, &write), 200);
}

#[test]
fn password_grant_issues_access_and_refresh_tokens() {
    let app = app();
    let body = password_grant(&app, "read+write");
    assert_eq!(body["scope"], "read write");
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), 54);
    assert_eq!(hello(&app, body["access_token"].as_str().unwrap()), 200);
    assert_eq!(
        token_counts(&app),
        (SAMPLE_TOKENS.0 + 1, SAMPLE_TOKENS.1 + 1)
    );

    let (status, error) = json(post(
        &app,
        "/o/token/",
        Some(basic("password-client", "password-client-secret")),
        "grant_type=password&username=alice&password=wrong",
    ));
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, error) = json(post(
        &app,
        "/o/token/",
        Some(basic("password-client", "password-client-secret")),
        "grant_type=password&username=alice",
    ));
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(
        token_counts(&app),
        (SAMPLE_TOKENS.0 + 1, SAMPLE_TOKENS.1 + 1)
    );
}

#[test]
fn password_grant_is_throttled_like_the_login_page() {
    let app = app_with(|settings| settings.login_throttle.max_failures_per_source = 2);
    for _ in 0..2 {
        let (status, _) = json(post(
            &app,
            "/o/token/",
            Some(basic("password-client", "password-client-secret")),
            "grant_type=password&username=alice&password=guess",
        ));
        assert_eq!(status, 400);
    }
    let response = post(
        &app,
        "/o/token/",
        Some(basic("password-client", "password-client-secret")),
        "grant_type=password&username=alice&password=alice-pass-123",
    );
    assert!(header(&response, "Retry-After").is_some());
    let (status, body) = json(response);
    assert_eq!(status, 429);
    assert_eq!(body["error"], "temporarily_unavailable");
    // The login page shares the lock.
    assert_eq!(app.login("alice", "alice-pass-123").status().code, 429);
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = app();
    let first = password_grant(&app, "read+write");
    let first_access = first["access_token"].as_str().unwrap();
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let (status, second) = refresh(&app, first_refresh, "");
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["scope"], "read write");
    let second_access = second["access_token"].as_str().unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_eq!(
        hello(&app, first_access),
        401,
        "the old access token is gone"
    );
    assert_eq!(hello(&app, second_access), 200);

    // Reusing the rotated token: refused, and everything from this grant is revoked.
    let (status, error) = refresh(&app, first_refresh, "");
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(hello(&app, second_access), 401, "family revoked");
    let (status, _) = refresh(&app, second_refresh, "");
    assert_eq!(status, 400, "the newest refresh token is revoked too");
}

#[test]
fn without_reuse_protection_a_reused_token_is_only_refused() {
    let app = app_with(|s| s.oauth2_provider.refresh_token_reuse_protection = false);
    let first = password_grant(&app, "read");
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let (_, second) = refresh(&app, first_refresh, "");
    let (status, _) = refresh(&app, first_refresh, "");
    assert_eq!(status, 400);
    assert_eq!(hello(&app, second["access_token"].as_str().unwrap()), 200);
}

#[test]
fn the_grace_period_lets_a_rotated_token_be_used_again_briefly() {
    let app = app_with(|s| s.oauth2_provider.refresh_token_grace_period_seconds = 30);
    let first = password_grant(&app, "read");
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let (_, second) = refresh(&app, first_refresh, "");
    app.clock.advance(time::Duration::seconds(29));
    let (status, third) = refresh(&app, first_refresh, "");
    assert_eq!(status, 200, "within the grace period");
    assert_eq!(hello(&app, third["access_token"].as_str().unwrap()), 200);
    // The pair from the first rotation stays usable too: the grace period exists for the
    // client that lost a race, and both pairs belong to one family.
    assert_eq!(hello(&app, second["access_token"].as_str().unwrap()), 200);
    app.clock.advance(time::Duration::seconds(1));
    let (status, _) = refresh(&app, first_refresh, "");
    assert_eq!(status, 400, "after the grace period");
    assert_eq!(
        hello(&app, third["access_token"].as_str().unwrap()),
        401,
        "family revoked"
    );
}

#[test]
fn without_rotation_the_refresh_token_stays_and_the_access_token_changes() {
    let app = app_with(|s| s.oauth2_provider.rotate_refresh_token = false);
    let first = password_grant(&app, "read");
    let token = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&app, token, "");
    assert_eq!(status, 200);
    assert_eq!(second["refresh_token"], token);
    assert_eq!(hello(&app, first["access_token"].as_str().unwrap()), 401);
    let (status, _) = refresh(&app, token, "");
    assert_eq!(status, 200, "still usable");
    assert_eq!(
        token_counts(&app),
        (SAMPLE_TOKENS.0 + 1, SAMPLE_TOKENS.1 + 1)
    );
}

#[test]
fn refresh_may_narrow_but_not_widen_the_scope_and_is_bound_to_its_client() {
    let app = app();
    let first = password_grant(&app, "read+write");
    let token = first["refresh_token"].as_str().unwrap();
    let (status, error) = refresh(&app, token, "&scope=read+openid");
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, error) = json(post(
        &app,
        "/o/token/",
        Some(basic("cc-client", "cc-client-secret")),
        &format!("grant_type=refresh_token&refresh_token={token}"),
    ));
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, narrowed) = refresh(&app, token, "&scope=read");
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "read");
    // The refresh token keeps the scope originally granted.
    let (status, again) = refresh(
        &app,
        narrowed["refresh_token"].as_str().unwrap(),
        "&scope=write",
    );
    assert_eq!(status, 200, "{again}");
}

#[test]
fn refresh_tokens_expire_when_configured() {
    let app = app_with(|s| {
        s.oauth2_provider.refresh_token_expire_seconds = Some(600);
        s.oauth2_provider.access_token_expire_seconds = 3600;
    });
    let live_tokens = |app: &App| -> String {
        let page = app
            .client
            .get("/o/authorized_tokens/")
            .dispatch()
            .into_string()
            .unwrap();
        let end = page.find(" live token").expect("a granted application");
        page[page[..end].rfind('>').unwrap() + 1..end].to_owned()
    };
    assert_eq!(app.login("alice", "alice-pass-123").status().code, 303);
    // Alice's refresh token imported from DOT (application 13) has no expiry of its own and
    // was created days ago: past the configured lifetime, so not live.
    let granted = app
        .client
        .get("/o/authorized_tokens/")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(
        !granted.contains("/o/authorized_tokens/13/delete/"),
        "{granted}"
    );
    let first = password_grant(&app, "read");
    assert_eq!(live_tokens(&app), "2");
    app.clock.advance(time::Duration::seconds(600));
    // Every place that judges the refresh token agrees it has expired: the token endpoint,
    // introspection, and the user's list of what they granted (the access token lives on).
    let (status, error) = refresh(&app, first["refresh_token"].as_str().unwrap(), "");
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (_, introspected) = json(post(
        &app,
        "/o/introspect/",
        Some(basic("password-client", "password-client-secret")),
        &format!("token={}", first["refresh_token"].as_str().unwrap()),
    ));
    assert_eq!(introspected["active"], false, "{introspected}");
    assert_eq!(live_tokens(&app), "1");
    // And the cleanup by the same rule: the imported token (no expiry row of its own before
    // schema 4) goes with the one minted here.
    let stored = app.store.read(|tx| tx.refresh_token_count()).unwrap();
    assert_eq!(stored, 2);
    let provider = oxidot::config::OAuth2Provider {
        refresh_token_expire_seconds: Some(600),
        ..Default::default()
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(oxidot::cleanup::clear_expired(
            &app.store,
            &provider,
            &app.clock,
            &std::sync::atomic::AtomicBool::new(false),
        ))
        .unwrap();
    assert_eq!(report.expired_refresh_tokens, Some(2), "{report:?}");
    assert_eq!(app.store.read(|tx| tx.refresh_token_count()).unwrap(), 0);
    assert_eq!(live_tokens(&app), "1");
}

#[test]
fn revoking_either_token_of_a_pair_revokes_both() {
    let app = app();
    let auth = || Some(basic("password-client", "password-client-secret"));

    let pair = password_grant(&app, "read");
    let access = pair["access_token"].as_str().unwrap();
    let refresh_token = pair["refresh_token"].as_str().unwrap();
    let response = post(
        &app,
        "/o/revoke_token/",
        auth(),
        &format!("token={access}&token_type_hint=access_token"),
    );
    assert_eq!(response.status().code, 200);
    assert_eq!(hello(&app, access), 401);
    assert_eq!(refresh(&app, refresh_token, "").0, 400);

    let pair = password_grant(&app, "read");
    let access = pair["access_token"].as_str().unwrap();
    let refresh_token = pair["refresh_token"].as_str().unwrap();
    let response = post(
        &app,
        "/o/revoke_token/",
        auth(),
        &format!("token={refresh_token}&token_type_hint=access_token"),
    );
    assert_eq!(
        response.status().code,
        200,
        "a wrong hint only orders the search"
    );
    assert_eq!(hello(&app, access), 401);
    assert_eq!(refresh(&app, refresh_token, "").0, 400);

    // Unknown tokens are fine (RFC 7009 §2.2).
    assert_eq!(
        post(&app, "/o/revoke_token/", auth(), "token=unknown")
            .status()
            .code,
        200
    );
}

#[test]
fn revocation_needs_the_owning_authenticated_client() {
    let app = app();
    let pair = password_grant(&app, "read");
    let access = pair["access_token"].as_str().unwrap();
    let (status, error) = json(post(
        &app,
        "/o/revoke_token/",
        None,
        &format!("token={access}"),
    ));
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, error) = json(post(
        &app,
        "/o/revoke_token/",
        Some(basic("cc-client", "cc-client-secret")),
        &format!("token={access}"),
    ));
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, error) = json(post(
        &app,
        "/o/revoke_token/",
        Some(basic("password-client", "password-client-secret")),
        "token_type_hint=access_token",
    ));
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(hello(&app, access), 200, "still live");
}

#[test]
fn introspection_by_a_client_or_a_bearer_with_the_introspection_scope() {
    let app = app();
    let pair = password_grant(&app, "read");
    let access = pair["access_token"].as_str().unwrap();
    let (status, body) = json(post(
        &app,
        "/o/introspect/",
        Some(basic("introspector", "introspector-secret")),
        &format!("token={access}"),
    ));
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "read");
    assert_eq!(body["client_id"], "password-client");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sub"], "3");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], "http://localhost/o");
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());

    // A resource server's bearer token with scope introspection, by GET.
    let rs = client_credentials(&app, "introspection")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .get(format!("/o/introspect/?token={access}"))
        .header(bearer(&rs))
        .dispatch();
    let (status, body) = json(response);
    assert_eq!((status, body["active"].as_bool()), (200, Some(true)));

    // Refresh tokens introspect too.
    let (_, body) = json(post(
        &app,
        "/o/introspect/",
        Some(basic("introspector", "introspector-secret")),
        &format!("token={}", pair["refresh_token"].as_str().unwrap()),
    ));
    assert_eq!(body["token_type"], "refresh_token");

    // Inactive: unknown, revoked, expired — and nothing else said.
    let (_, body) = json(post(
        &app,
        "/o/introspect/",
        Some(basic("introspector", "introspector-secret")),
        "token=unknown",
    ));
    assert_eq!(body, serde_json::json!({"active": false}));
    app.clock.advance(time::Duration::seconds(36_000));
    let (_, body) = json(post(
        &app,
        "/o/introspect/",
        Some(basic("introspector", "introspector-secret")),
        &format!("token={access}"),
    ));
    assert_eq!(body, serde_json::json!({"active": false}));
}

#[test]
fn introspection_refuses_unauthorised_callers() {
    let app = app();
    let access = client_credentials(&app, "read")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = json(post(
        &app,
        "/o/introspect/",
        None,
        &format!("token={access}"),
    ));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let response = app
        .client
        .post("/o/introspect/")
        .header(ContentType::Form)
        .header(bearer(&access))
        .body(format!("token={access}"))
        .dispatch();
    let (status, _) = json(response);
    assert_eq!(status, 401, "a bearer without the introspection scope");
    let (status, _) = json(post(
        &app,
        "/o/introspect/",
        Some(basic("introspector", "wrong")),
        &format!("token={access}"),
    ));
    assert_eq!(status, 401);

    // A public client proves nothing: naming one (as anyone can) introspects nothing, neither
    // an access token nor a confidential client's refresh token.
    let pair = password_grant(&app, "read");
    for token in [&access, pair["refresh_token"].as_str().unwrap()] {
        let (status, body) = json(post(
            &app,
            "/o/introspect/",
            None,
            &format!("client_id=public-pkce&token={token}"),
        ));
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
        assert!(body.get("active").is_none() && body.get("username").is_none());
    }
}

#[test]
fn concurrent_refreshes_of_one_token_have_one_winner_and_no_5xx() {
    use crate::support::{Server, oxidot};
    let dir = tempfile::tempdir().unwrap();
    let sample = crate::fixtures::sample_dir().join("dot-3.4.1-dumpdata.yaml");
    let loaded = oxidot(dir.path())
        .args(["loaddata", sample.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(loaded.status.success());
    let server = Server::start(dir.path(), &["serve"]);
    let client = reqwest::blocking::Client::new();
    let token_url = format!("{}/o/token/", server.base);
    let grant: Value = client
        .post(&token_url)
        .basic_auth("password-client", Some("password-client-secret"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pass-123"),
            ("scope", "read"),
        ])
        .send()
        .unwrap()
        .text()
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap();
    let refresh_token = grant["refresh_token"].as_str().unwrap().to_owned();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (url, token, barrier) = (token_url.clone(), refresh_token.clone(), barrier.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                barrier.wait();
                client
                    .post(url)
                    .basic_auth("password-client", Some("password-client-secret"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                    ])
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    assert!(server.terminate());
}

#[test]
fn cors_headers_only_for_origins_the_named_client_allows() {
    let app = app();
    let allowed = "http://localhost:8765";
    let preflight = |origin: &str, path: &str| {
        let response = app
            .client
            .options(path.to_owned())
            .header(Header::new("Origin", origin.to_owned()))
            .header(Header::new("Access-Control-Request-Method", "POST"))
            .dispatch();
        assert_eq!(response.status().code, 204);
        (
            header(&response, "Access-Control-Allow-Origin").map(str::to_owned),
            header(&response, "Access-Control-Allow-Headers").map(str::to_owned),
        )
    };
    for path in ["/o/token/", "/o/revoke_token/", "/o/introspect/"] {
        let (origin, headers) = preflight(allowed, path);
        assert_eq!(origin.as_deref(), Some(allowed), "{path}");
        assert!(headers.unwrap().contains("Authorization"));
        assert_eq!(
            preflight("https://evil.example", path),
            (None, None),
            "{path}"
        );
    }

    let token_request = |client: &str, origin: &str| {
        let response = app
            .client
            .post("/o/token/")
            .header(ContentType::Form)
            .header(Header::new("Origin", origin.to_owned()))
            .body(format!(
                "grant_type=refresh_token&refresh_token=nope&client_id={client}"
            ))
            .dispatch();
        assert_eq!(response.status().code, 400);
        header(&response, "Access-Control-Allow-Origin").map(str::to_owned)
    };
    // public-pkce allows the origin: even its errors are readable by the browser app.
    assert_eq!(
        token_request("public-pkce", allowed).as_deref(),
        Some(allowed)
    );
    assert_eq!(token_request("public-pkce", "https://evil.example"), None);
    // Another client does not allow that origin.
    let response = app
        .client
        .post("/o/token/")
        .header(ContentType::Form)
        .header(Header::new("Origin", allowed))
        .header(basic("cc-client", "cc-client-secret"))
        .body("grant_type=client_credentials")
        .dispatch();
    assert_eq!(response.status().code, 200);
    assert!(header(&response, "Access-Control-Allow-Origin").is_none());
}

#[test]
fn repeated_client_authentication_failures_are_throttled() {
    let app = app_with(|settings| settings.login_throttle.max_failures_per_source = 3);
    for _ in 0..3 {
        let (status, _) = json(post(
            &app,
            "/o/token/",
            Some(basic("cc-client", "guess")),
            "grant_type=client_credentials",
        ));
        assert_eq!(status, 401);
    }
    let response = post(
        &app,
        "/o/token/",
        Some(basic("cc-client", "cc-client-secret")),
        "grant_type=client_credentials",
    );
    assert!(header(&response, "Retry-After").is_some());
    let (status, body) = json(response);
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("temporarily_unavailable"))
    );
    // Another client is not locked out by it.
    let (status, _) = json(post(
        &app,
        "/o/token/",
        Some(basic("password-client", "password-client-secret")),
        "grant_type=password&username=alice&password=alice-pass-123",
    ));
    assert_eq!(status, 200);
    app.clock.advance(time::Duration::seconds(300));
    client_credentials(&app, "read");
}

#[test]
fn every_oauth_endpoint_answers_bad_input_with_a_4xx_in_the_rfc_shape() {
    let app = app();
    let before = token_counts(&app);
    let endpoints = [
        "/o/token/",
        "/o/revoke_token/",
        "/o/introspect/",
        "/o/device-authorization/",
    ];
    let auth = || basic("cc-client", "cc-client-secret");
    let bodies: Vec<(ContentType, Vec<u8>)> = vec![
        (ContentType::JSON, br#"{"token":"x"}"#.to_vec()),
        (ContentType::Form, b"token=%FF".to_vec()),
        (ContentType::Form, b"token=\xff\xfe".to_vec()),
        (
            ContentType::Form,
            b"token=a&token=b&grant_type=x&grant_type=y".to_vec(),
        ),
        (ContentType::Form, b"token=&grant_type=".to_vec()),
        (
            ContentType::Form,
            format!("token={}", "x".repeat(80_000)).into_bytes(),
        ),
    ];
    for path in endpoints {
        for (content_type, body) in &bodies {
            let response = app
                .client
                .post(path)
                .header(content_type.clone())
                .header(auth())
                .body(body.clone())
                .dispatch();
            let status = response.status().code;
            assert!((400..500).contains(&status), "{path}: {status}");
            assert_eq!(response.content_type(), Some(ContentType::JSON), "{path}");
            let json: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
            assert!(json["error"].as_str().is_some(), "{path}: {json}");
        }
    }
    assert_eq!(token_counts(&app), before);
}

#[test]
fn a_users_tokens_are_found_through_their_families_after_rotations() {
    let app = app();
    let first = password_grant(&app, "read");
    let (_, second) = refresh(&app, first["refresh_token"].as_str().unwrap(), "");
    let (_, third) = refresh(&app, second["refresh_token"].as_str().unwrap(), "");
    let keys = app.store.read(|tx| tx.token_keys_of_user(3)).unwrap();
    let of = |token: &Value| oxidot::store::SecretKey::of_token(token.as_str().unwrap());
    use oxidot::store::ExpiringKind::{AccessToken, RefreshToken};
    let has = |kind, key| keys.contains(&(kind, key));
    // The live pair, the two rotated refresh tokens (kept for reuse detection), and alice's
    // pair imported from the DOT dump; the replaced access tokens are gone.
    assert!(has(AccessToken, of(&third["access_token"])));
    for token in [&first, &second, &third] {
        assert!(has(RefreshToken, of(&token["refresh_token"])));
    }
    assert!(!has(AccessToken, of(&first["access_token"])));
    assert!(!has(AccessToken, of(&second["access_token"])));
    assert!(has(
        AccessToken,
        oxidot::store::SecretKey::of("ShbiTzXfeQNASljwSjWnvIXgxKp1As")
    ));
    assert_eq!(keys.len(), 6, "{keys:?}");
    // Client-credentials tokens have no user.
    client_credentials(&app, "read");
    assert_eq!(
        app.store.read(|tx| tx.token_keys_of_user(3)).unwrap().len(),
        6
    );
}

#[test]
fn rfc_8414_metadata_tells_the_truth_at_both_locations() {
    let app = app();
    for path in [
        "/o/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/o",
    ] {
        let response = app.client.get(path).dispatch();
        assert_eq!(response.status().code, 200, "{path}");
        assert_eq!(header(&response, "Access-Control-Allow-Origin"), Some("*"));
        let (_, body) = json(response);
        assert_eq!(body["issuer"], "http://localhost/o");
        assert_eq!(body["token_endpoint"], "http://localhost/o/token/");
        assert_eq!(
            body["authorization_endpoint"],
            "http://localhost/o/authorize/"
        );
        let grants = body["grant_types_supported"].as_array().unwrap();
        assert!(
            grants
                .iter()
                .any(|g| g == "urn:ietf:params:oauth:grant-type:device_code")
        );
        assert_eq!(
            body["code_challenge_methods_supported"],
            serde_json::json!(["S256", "plain"])
        );
        assert!(
            body["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "read")
        );
    }
    // Every endpoint it names answers (a GET to a POST-only endpoint is 405, not 404).
    let (_, body) = json(
        app.client
            .get("/o/.well-known/oauth-authorization-server")
            .dispatch(),
    );
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "device_authorization_endpoint",
    ] {
        let path = body[key]
            .as_str()
            .unwrap()
            .trim_start_matches("http://localhost")
            .to_owned();
        let status = app.client.get(path.clone()).dispatch().status().code;
        assert_ne!(status, 404, "{key} {path}");
    }
    let strict = app_with(|s| s.oauth2_provider.pkce_plain_allowed = false);
    let (_, body) = json(
        strict
            .client
            .get("/o/.well-known/oauth-authorization-server")
            .dispatch(),
    );
    assert_eq!(
        body["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}
