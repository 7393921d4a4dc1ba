//! `/o/authorize/` with consent, and the authorization code grant with PKCE, over HTTP.

use base64::Engine as _;
use rocket::http::{ContentType, Header};

use crate::flow::*;
use crate::support::{App, enc, header};

#[test]
fn the_tutorial_flow_login_consent_code_pkce_token_hello() {
    let app = App::demo();
    // Not logged in: to the login page, which brings the user back.
    let request = tutorial_request();
    let response = app.client.get(url_for(&request)).dispatch();
    assert_eq!(response.status().code, 302);
    let login = header(&response, "Location").unwrap().to_owned();
    assert!(login.starts_with("/accounts/login/?next="), "{login}");
    drop(response);
    let next = url::form_urlencoded::parse(login.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    let body = format!(
        "csrfmiddlewaretoken={}&username=admin&password=admin123&next={}",
        app.csrf(),
        enc(&next)
    );
    let back = app.post_form("/accounts/login/", &body);
    assert_eq!(back.status().code, 303);
    let back_to = header(&back, "Location").unwrap().to_owned();
    assert!(back_to.starts_with("/o/authorize/?"));
    drop(back);

    let page = app.client.get(back_to).dispatch();
    assert_eq!(page.status().code, 200);
    assert_eq!(header(&page, "X-Frame-Options"), Some("DENY"));
    let html = page.into_string().unwrap();
    assert!(
        html.contains("<h1>Authorize hashed secret 1?</h1>"),
        "{html}"
    );
    assert!(html.contains("Reading scope") && html.contains("Writing scope"));
    assert!(html.contains("Cancel"));

    let location = approve(&app, &request);
    assert!(location.starts_with(POSTMAN), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("xyz-123"));
    let code = param(&location, "code").unwrap();

    let (status, tokens) = tutorial_exchange(&app, &code);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "read write");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].as_str().is_some());
    assert_eq!(hello(&app, tokens["access_token"].as_str().unwrap()), 200);
}

#[test]
fn unknown_clients_and_unregistered_redirects_get_a_page_never_a_redirect() {
    let app = logged_in();
    let cases = vec![
        with(tutorial_request(), "client_id", None),
        with(tutorial_request(), "client_id", Some("nobody")),
        with(
            tutorial_request(),
            "redirect_uri",
            Some("https://evil.example/cb"),
        ),
        with(
            tutorial_request(),
            "redirect_uri",
            Some("https://oauth.pstmn.io/v1/callback/../../evil"),
        ),
        with(
            tutorial_request(),
            "redirect_uri",
            Some("https://oauth.pstmn.io/v1/callback#frag"),
        ),
        // hash1 has several URIs: the request must name one.
        with(tutorial_request(), "redirect_uri", None),
    ];
    for pairs in cases {
        let response = app.client.get(url_for(&pairs)).dispatch();
        assert_eq!(response.status().code, 400, "{pairs:?}");
        assert!(header(&response, "Location").is_none());
        assert_eq!(response.content_type(), Some(ContentType::HTML));
    }
    // Malformed queries too.
    for raw in ["client_id=hash1&client_id=hash2", "client_id=%FF"] {
        let response = app.client.get(format!("/o/authorize/?{raw}")).dispatch();
        assert_eq!(response.status().code, 400);
        assert!(header(&response, "Location").is_none());
    }
}

#[test]
fn later_errors_redirect_with_error_description_and_state() {
    let app = logged_in();
    let cases = vec![
        (
            with(tutorial_request(), "response_type", Some("code device")),
            "unsupported_response_type",
        ),
        (
            with(tutorial_request(), "response_type", None),
            "invalid_request",
        ),
        (
            with(tutorial_request(), "scope", Some("read admin")),
            "invalid_scope",
        ),
        (
            with(tutorial_request(), "code_challenge", None),
            "invalid_request",
        ),
        (
            with(tutorial_request(), "code_challenge", Some("too-short")),
            "invalid_request",
        ),
        (
            with(tutorial_request(), "code_challenge_method", Some("S512")),
            "invalid_request",
        ),
        (
            with(tutorial_request(), "prompt", Some("sometimes")),
            "invalid_request",
        ),
        (
            with(tutorial_request(), "prompt", Some("none login")),
            "invalid_request",
        ),
        (
            with(tutorial_request(), "nonce", Some("a"))
                .into_iter()
                .chain([("nonce", "b".to_owned())])
                .collect(),
            "invalid_request",
        ),
    ];
    for (pairs, error) in cases {
        let response = app.client.get(url_for(&pairs)).dispatch();
        assert_eq!(response.status().code, 302, "{pairs:?}");
        let location = header(&response, "Location").unwrap();
        assert!(location.starts_with(POSTMAN));
        assert_eq!(
            param(location, "error").as_deref(),
            Some(error),
            "{pairs:?}"
        );
        assert!(param(location, "error_description").is_some_and(|d| !d.is_empty()));
        assert_eq!(param(location, "state").as_deref(), Some("xyz-123"));
    }
    let grants = app.store.read(|tx| tx.access_token_count()).unwrap();
    assert_eq!(grants, 0);
}

#[test]
fn plain_pkce_can_be_switched_off_and_public_clients_always_need_pkce() {
    let plain = with(tutorial_request(), "code_challenge", Some(VERIFIER));
    let plain = with(plain, "code_challenge_method", Some("plain"));
    let app = logged_in();
    assert_eq!(
        app.client.get(url_for(&plain)).dispatch().status().code,
        200
    );

    let strict = App::with(
        |s| s.oauth2_provider.pkce_plain_allowed = false,
        oxidot::server::demo_fixture_files(),
    );
    strict.login("admin", "admin123");
    let response = strict.client.get(url_for(&plain)).dispatch();
    assert_eq!(
        param(header(&response, "Location").unwrap(), "error").as_deref(),
        Some("invalid_request")
    );

    // pkce_required off: a confidential client may skip PKCE, a public one may not.
    let relaxed = App::with(
        |s| s.oauth2_provider.pkce_required = false,
        vec![crate::fixtures::sample("dot-3.4.1-dumpdata.yaml")],
    );
    relaxed.login("admin", "admin123");
    let no_pkce = with(
        with(tutorial_request(), "code_challenge", None),
        "code_challenge_method",
        None,
    );
    // The DOT sample registers Postman's older callback.
    let no_pkce = with(
        no_pkce,
        "redirect_uri",
        Some("https://www.getpostman.com/oauth2/callback"),
    );
    assert_eq!(
        relaxed
            .client
            .get(url_for(&no_pkce))
            .dispatch()
            .status()
            .code,
        200
    );
    let public = with(
        with(no_pkce.clone(), "client_id", Some("public-pkce")),
        "redirect_uri",
        Some("http://localhost:8765/callback"),
    );
    let response = relaxed.client.get(url_for(&public)).dispatch();
    assert_eq!(response.status().code, 302);
    assert_eq!(
        param(header(&response, "Location").unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
}

#[test]
fn cancel_is_access_denied_and_a_consent_post_without_csrf_is_refused() {
    let app = logged_in();
    let request = tutorial_request();
    let mut body = format!("csrfmiddlewaretoken={}&cancel=Cancel", app.csrf());
    for (name, value) in &request {
        body.push_str(&format!("&{name}={}", enc(value)));
    }
    let response = app.post_form("/o/authorize/", &body);
    assert_eq!(response.status().code, 302);
    let location = header(&response, "Location").unwrap();
    assert_eq!(param(location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(location, "state").as_deref(), Some("xyz-123"));
    assert!(param(location, "code").is_none());
    drop(response);

    let mut forged = "allow=Authorize".to_owned();
    for (name, value) in &request {
        forged.push_str(&format!("&{name}={}", enc(value)));
    }
    let response = app.post_form("/o/authorize/", &forged);
    assert_eq!(response.status().code, 403);
    assert!(header(&response, "Location").is_none());
    drop(response);
    let consents = app.store.read(|tx| tx.consent(1, 3)).unwrap();
    assert!(consents.is_none());
}

#[test]
fn skip_authorization_and_approval_prompt_auto_skip_the_page() {
    let app = logged_in();
    // approval_prompt=auto with no earlier approval: the page.
    let auto = with(tutorial_request(), "approval_prompt", Some("auto"));
    assert_eq!(app.client.get(url_for(&auto)).dispatch().status().code, 200);
    approve(&app, &auto);
    // Now approved: straight back with a code.
    let response = app.client.get(url_for(&auto)).dispatch();
    assert_eq!(response.status().code, 302);
    assert!(param(header(&response, "Location").unwrap(), "code").is_some());
    // A scope not approved before asks again; force always asks.
    let wider = with(auto.clone(), "scope", Some("read write openid"));
    assert_eq!(
        app.client.get(url_for(&wider)).dispatch().status().code,
        200
    );
    let forced = with(tutorial_request(), "approval_prompt", Some("force"));
    assert_eq!(
        app.client.get(url_for(&forced)).dispatch().status().code,
        200
    );
    // prompt=consent asks even when auto would not.
    let consent = with(auto, "prompt", Some("consent"));
    assert_eq!(
        app.client.get(url_for(&consent)).dispatch().status().code,
        200
    );

    app.store
        .write_blocking(|tx| {
            let mut application = tx.application(3)?.unwrap();
            application.skip_authorization = true;
            tx.put_application(&application)
        })
        .unwrap();
    let response = app.client.get(url_for(&tutorial_request())).dispatch();
    assert_eq!(response.status().code, 302);
    assert!(param(header(&response, "Location").unwrap(), "code").is_some());
}

#[test]
fn the_auto_setting_applies_without_the_parameter() {
    let app = App::with(
        |s| s.oauth2_provider.request_approval_prompt = oxidot::config::ApprovalPrompt::Auto,
        oxidot::server::demo_fixture_files(),
    );
    app.login("admin", "admin123");
    approve(&app, &tutorial_request());
    let response = app.client.get(url_for(&tutorial_request())).dispatch();
    assert_eq!(response.status().code, 302);
}

#[test]
fn prompt_none_never_shows_a_page() {
    let app = App::demo();
    let silent = with(tutorial_request(), "prompt", Some("none"));
    let response = app.client.get(url_for(&silent)).dispatch();
    assert_eq!(response.status().code, 302);
    assert_eq!(
        param(header(&response, "Location").unwrap(), "error").as_deref(),
        Some("login_required")
    );
    drop(response);

    app.login("admin", "admin123");
    let response = app.client.get(url_for(&silent)).dispatch();
    assert_eq!(
        param(header(&response, "Location").unwrap(), "error").as_deref(),
        Some("consent_required")
    );
    drop(response);

    approve(&app, &tutorial_request());
    let auto_silent = with(silent, "approval_prompt", Some("auto"));
    let response = app.client.get(url_for(&auto_silent)).dispatch();
    assert!(param(header(&response, "Location").unwrap(), "code").is_some());
}

#[test]
fn prompt_login_asks_again_even_with_a_session() {
    let app = logged_in();
    let again = with(tutorial_request(), "prompt", Some("login"));
    let response = app.client.get(url_for(&again)).dispatch();
    assert_eq!(response.status().code, 302);
    let location = header(&response, "Location").unwrap();
    assert!(location.starts_with("/accounts/login/?next="));
    let next = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    assert!(!next.contains("prompt=login"), "{next}");
    assert!(next.contains("client_id=hash1"));
}

#[test]
fn codes_are_single_use_and_a_replay_revokes_what_they_produced() {
    let app = logged_in();
    let code = param(&approve(&app, &tutorial_request()), "code").unwrap();
    let (status, tokens) = tutorial_exchange(&app, &code);
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(hello(&app, access), 200);

    let (status, error) = tutorial_exchange(&app, &code);
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        hello(&app, access),
        401,
        "tokens from the replayed code are revoked"
    );
    let (status, _) = exchange(&app, "", "", None);
    assert_eq!(status, 401, "no client at all");
    let response = app
        .client
        .post("/o/token/")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("hash1:hashed")
            ),
        ))
        .body(format!("grant_type=refresh_token&refresh_token={refresh}"))
        .dispatch();
    assert_eq!(
        response.status().code,
        400,
        "the refresh token is revoked too"
    );
}

#[test]
fn codes_are_bound_to_client_redirect_uri_verifier_and_lifetime() {
    let app = logged_in();
    let fresh_code = || param(&approve(&app, &tutorial_request()), "code").unwrap();
    type Case<'a> = (String, Option<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        // Another client.
        (
            format!("&redirect_uri={}&code_verifier={VERIFIER}", enc(POSTMAN)),
            Some(("hash2", "hashed")),
            "another client",
        ),
        // Redirect URI missing or different.
        (
            format!("&code_verifier={VERIFIER}"),
            Some(("hash1", "hashed")),
            "redirect_uri missing",
        ),
        (
            format!(
                "&redirect_uri={}&code_verifier={VERIFIER}",
                enc("https://www.getpostman.com/oauth2/callback")
            ),
            Some(("hash1", "hashed")),
            "other redirect_uri",
        ),
        // PKCE wrong, missing, malformed.
        (
            format!(
                "&redirect_uri={}&code_verifier={}",
                enc(POSTMAN),
                "x".repeat(43)
            ),
            Some(("hash1", "hashed")),
            "wrong verifier",
        ),
        (
            format!("&redirect_uri={}", enc(POSTMAN)),
            Some(("hash1", "hashed")),
            "no verifier",
        ),
        (
            format!("&redirect_uri={}&code_verifier=short", enc(POSTMAN)),
            Some(("hash1", "hashed")),
            "malformed verifier",
        ),
    ];
    for (extra, auth, what) in cases {
        let code = fresh_code();
        let (status, error) = exchange(&app, &code, &extra, auth);
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some("invalid_grant")),
            "{what}"
        );
        // A failed exchange does not burn the code for its rightful client.
        let (status, _) = tutorial_exchange(&app, &code);
        assert_eq!(status, 200, "{what}");
    }
    let code = fresh_code();
    app.clock.advance(time::Duration::seconds(60));
    let (status, error) = tutorial_exchange(&app, &code);
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant")),
        "expired"
    );
    let (status, error) = tutorial_exchange(&app, "not-a-code");
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[test]
fn public_clients_exchange_with_pkce_and_loopback_ports_are_free() {
    let fixture = r#"
- model: oauth2_provider.application
  pk: 50
  fields: {client_id: native, user: 1, client_type: public, authorization_grant_type: authorization-code,
           redirect_uris: "http://127.0.0.1/callback", name: Native app}
"#;
    let mut files = oxidot::server::demo_fixture_files();
    files.push(oxidot::fixtures::FixtureFile {
        name: "native.yaml".to_owned(),
        contents: fixture.to_owned(),
    });
    let app = App::with(|_| {}, files);
    app.login("admin", "admin123");
    let request = vec![
        ("response_type", "code".to_owned()),
        ("client_id", "native".to_owned()),
        ("redirect_uri", "http://127.0.0.1:49152/callback".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ];
    let location = approve(&app, &request);
    assert!(location.starts_with("http://127.0.0.1:49152/callback?code="));
    let code = param(&location, "code").unwrap();
    let (status, tokens) = exchange(
        &app,
        &code,
        &format!(
            "&client_id=native&redirect_uri={}&code_verifier={VERIFIER}",
            enc("http://127.0.0.1:49152/callback")
        ),
        None,
    );
    assert_eq!(status, 200, "{tokens}");
    // No scope requested: the default scopes, less `openid` for a client with no ID token
    // algorithm (it did not ask for OpenID Connect).
    let scope = tokens["scope"].as_str().unwrap();
    assert!(scope.contains("read"), "{scope}");
    assert!(!scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(tokens.get("id_token").is_none());
}
