//! Login, logout, CSRF, `next`, throttling and malformed login requests, over HTTP.

use rocket::http::ContentType;

use crate::support::{App, enc, header, origin};

#[test]
fn login_succeeds_opens_a_session_and_upgrades_the_django_hash() {
    let app = App::demo();
    let before = app.store.user_by_username("admin").unwrap().unwrap();
    assert!(before.password.starts_with("pbkdf2_sha256$"));
    assert!(before.last_login.is_none());

    let response = app.login("admin", "admin123");
    assert_eq!(response.status().code, 303);
    assert_eq!(header(&response, "Location"), Some("/"));
    let cookie = response
        .cookies()
        .get("sessionid")
        .expect("a session cookie")
        .clone();
    assert!(cookie.http_only().unwrap_or(false));
    assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax));
    assert!(cookie.value().len() >= 43);
    drop(response);

    assert_eq!(app.session_count(), 1);
    assert_eq!(app.signed_in_as().as_deref(), Some("admin"));
    let after = app.store.user_by_username("admin").unwrap().unwrap();
    assert!(
        after.password.starts_with("argon2$argon2id$"),
        "re-hashed at login"
    );
    assert!(after.last_login.is_some());

    // The session records when the user authenticated (OIDC auth_time needs it) and is stored
    // under the SHA-256 of the cookie, not the cookie itself.
    let key = oxidot::store::SecretKey::of(cookie.value());
    let session = app.store.session(&key).unwrap().expect("stored by hash");
    assert_eq!(session.user_id, after.id);
    assert_eq!(
        session.auth_time,
        oxidot::store::Timestamp::from_datetime(app.clock.now())
    );

    // The upgraded hash keeps working.
    assert_eq!(app.login("admin", "admin123").status().code, 303);
}

#[test]
fn the_admin_login_url_of_the_tutorial_works_for_any_active_user() {
    let app = App::demo();
    let page = app.client.get("/admin/login/?next=/admin/").dispatch();
    assert_eq!(page.status().code, 200);
    let html = page.into_string().unwrap();
    assert!(html.contains(r#"action="/admin/login/""#));
    assert!(html.contains(r#"name="next" value="&#x2F;admin&#x2F;""#));
    let body = format!(
        "csrfmiddlewaretoken={}&username=oauthuser&password=oauth123&next=%2Fadmin%2F",
        app.csrf()
    );
    let response = app.post_form("/admin/login/", &body);
    assert_eq!(response.status().code, 303);
    assert_eq!(header(&response, "Location"), Some("/admin/"));
}

#[test]
fn wrong_password_and_unknown_user_are_refused_alike() {
    let app = App::demo();
    let wrong = app.login("admin", "admin124");
    assert_eq!(wrong.status().code, 400);
    assert!(wrong.cookies().get("sessionid").is_none());
    let wrong_page = wrong.into_string().unwrap();
    assert!(wrong_page.contains("Please enter a correct username and password"));
    assert!(
        wrong_page.contains(r#"value="admin""#),
        "the username is kept"
    );

    let unknown = app.login("nobody", "admin123");
    assert_eq!(unknown.status().code, 400);
    assert!(
        unknown
            .into_string()
            .unwrap()
            .contains("Please enter a correct username and password")
    );
    assert_eq!(app.session_count(), 0);
    assert_eq!(app.signed_in_as(), None);
}

#[test]
fn inactive_users_cannot_log_in() {
    let app = App::demo();
    app.store
        .write_blocking(|tx| {
            let mut user = tx.user_by_username("oauthuser")?.unwrap();
            user.is_active = false;
            tx.put_user(&user)
        })
        .unwrap();
    let response = app.login("oauthuser", "oauth123");
    assert_eq!(response.status().code, 400);
    assert!(response.cookies().get("sessionid").is_none());
    assert_eq!(app.session_count(), 0);
}

#[test]
fn a_session_of_a_user_deactivated_later_stops_working() {
    let app = App::demo();
    assert_eq!(app.login("oauthuser", "oauth123").status().code, 303);
    assert_eq!(app.signed_in_as().as_deref(), Some("oauthuser"));
    app.store
        .write_blocking(|tx| {
            let mut user = tx.user_by_username("oauthuser")?.unwrap();
            user.is_active = false;
            tx.put_user(&user)
        })
        .unwrap();
    assert_eq!(app.signed_in_as(), None);
}

#[test]
fn sessions_expire_after_their_lifetime() {
    let app = App::with(
        |settings| settings.sessions.expire_seconds = 60,
        oxidot::server::demo_fixture_files(),
    );
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    app.clock.advance(time::Duration::seconds(59));
    assert_eq!(app.signed_in_as().as_deref(), Some("admin"));
    app.clock.advance(time::Duration::seconds(1));
    assert_eq!(app.signed_in_as(), None);
}

#[test]
fn csrf_missing_wrong_or_cross_site_is_refused_and_changes_nothing() {
    let app = App::demo();
    let token = app.csrf();
    let cases = [
        ("username=admin&password=admin123".to_owned(), None),
        (
            "csrfmiddlewaretoken=wrong-token&username=admin&password=admin123".to_owned(),
            None,
        ),
        (
            format!("csrfmiddlewaretoken={token}&username=admin&password=admin123"),
            Some("https://evil.example"),
        ),
    ];
    for (body, from) in cases {
        let mut request = app
            .client
            .post("/accounts/login/")
            .header(ContentType::Form)
            .body(body.clone());
        if let Some(from) = from {
            request = request.header(origin(from));
        }
        let response = request.dispatch();
        assert_eq!(response.status().code, 403, "{body} from {from:?}");
        assert!(
            response
                .into_string()
                .unwrap()
                .contains("CSRF verification failed")
        );
    }
    assert_eq!(app.session_count(), 0);
    // A browser without the cookie at all (a token taken from elsewhere).
    let fresh = App::demo();
    let response = fresh.post_form(
        "/accounts/login/",
        &format!("csrfmiddlewaretoken={token}&username=admin&password=admin123"),
    );
    assert_eq!(response.status().code, 403);
    drop(response);
    assert_eq!(fresh.session_count(), 0);
    let admin = app.store.user_by_username("admin").unwrap().unwrap();
    assert!(admin.last_login.is_none());
}

#[test]
fn a_same_origin_post_passes_the_origin_check() {
    let app = App::demo();
    let body = format!(
        "csrfmiddlewaretoken={}&username=admin&password=admin123",
        app.csrf()
    );
    let response = app
        .client
        .post("/accounts/login/")
        .header(ContentType::Form)
        .header(rocket::http::Header::new("Host", "id.example:8000"))
        .header(origin("http://id.example:8000"))
        .body(body)
        .dispatch();
    assert_eq!(response.status().code, 303);
}

#[test]
fn next_is_followed_only_to_local_paths() {
    let app = App::demo();
    let local = "/o/authorize/?client_id=hash1&response_type=code";
    let body = format!(
        "csrfmiddlewaretoken={}&username=admin&password=admin123&next={}",
        app.csrf(),
        enc(local)
    );
    let response = app.post_form("/accounts/login/", &body);
    assert_eq!(header(&response, "Location"), Some(local));
    drop(response);

    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let app = App::demo();
        let body = format!(
            "csrfmiddlewaretoken={}&username=admin&password=admin123&next={}",
            app.csrf(),
            enc(evil)
        );
        let response = app.post_form("/accounts/login/", &body);
        assert_eq!(response.status().code, 303);
        assert_eq!(header(&response, "Location"), Some("/"), "{evil}");
    }
    // The login page does not carry an off-site `next` into its form either.
    let app = App::demo();
    let page = app
        .client
        .get(format!(
            "/accounts/login/?next={}",
            enc("https://evil.example/")
        ))
        .dispatch()
        .into_string()
        .unwrap();
    assert!(!page.contains("evil.example"));
}

#[test]
fn repeated_failures_are_throttled_per_username_with_retry_after() {
    let app = App::with(
        |settings| {
            settings.login_throttle.max_failures_per_source = 3;
            settings.login_throttle.window_seconds = 120;
        },
        oxidot::server::demo_fixture_files(),
    );
    for _ in 0..3 {
        assert_eq!(app.login("admin", "nope-nope").status().code, 400);
    }
    // Locked now, even with the right password.
    let locked = app.login("admin", "admin123");
    assert_eq!(locked.status().code, 429);
    assert_eq!(header(&locked, "Retry-After"), Some("120"));
    assert!(locked.cookies().get("sessionid").is_none());
    assert!(
        locked
            .into_string()
            .unwrap()
            .contains("Too many failed login attempts. Try again in 120 seconds.")
    );
    assert_eq!(app.session_count(), 0);
    // Other users are not locked out by one user's failures.
    assert_eq!(app.login("oauthuser", "oauth123").status().code, 303);

    app.clock.advance(time::Duration::seconds(120));
    assert_eq!(app.login("admin", "admin123").status().code, 303);
}

#[test]
fn repeated_failures_are_throttled_per_client_ip() {
    let app = App::with(
        |settings| {
            settings.login_throttle.max_failures_per_ip = 4;
            settings.login_throttle.max_failures_per_source = 100;
        },
        oxidot::server::demo_fixture_files(),
    );
    for name in ["a", "b", "c", "d"] {
        assert_eq!(app.login(name, "wrong-password").status().code, 400);
    }
    let locked = app.login("admin", "admin123");
    assert_eq!(locked.status().code, 429);
    assert!(header(&locked, "Retry-After").is_some());
}

#[test]
fn logout_needs_a_post_with_csrf_and_ends_the_session() {
    let app = App::demo();
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    assert_eq!(app.session_count(), 1);

    // GET only asks.
    let page = app.client.get("/accounts/logout/").dispatch();
    assert_eq!(page.status().code, 200);
    assert!(page.into_string().unwrap().contains("Log out?"));
    assert_eq!(app.session_count(), 1);

    // Without CSRF nothing happens.
    let refused = app.post_form("/accounts/logout/", "");
    assert_eq!(refused.status().code, 403);
    drop(refused);
    assert_eq!(app.session_count(), 1);

    let body = format!("csrfmiddlewaretoken={}", app.csrf());
    let response = app.post_form("/accounts/logout/", &body);
    assert_eq!(response.status().code, 303);
    drop(response);
    assert_eq!(app.session_count(), 0);
    assert_eq!(app.signed_in_as(), None);
}

#[test]
fn logging_in_again_replaces_the_previous_session() {
    let app = App::demo();
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    assert_eq!(app.login("oauthuser", "oauth123").status().code, 303);
    assert_eq!(app.session_count(), 1);
    assert_eq!(app.signed_in_as().as_deref(), Some("oauthuser"));
}

#[test]
fn malformed_login_requests_get_4xx_and_change_nothing() {
    let app = App::demo();
    let token = app.csrf();
    let good = format!("csrfmiddlewaretoken={token}&username=admin&password=admin123");
    let cases: Vec<(ContentType, Vec<u8>, u16)> = vec![
        // JSON instead of a form.
        (
            ContentType::JSON,
            br#"{"username":"admin","password":"admin123"}"#.to_vec(),
            415,
        ),
        (ContentType::Plain, good.clone().into_bytes(), 415),
        // Invalid UTF-8, raw and percent-encoded.
        (
            ContentType::Form,
            {
                let mut body = good.clone().into_bytes();
                body.extend_from_slice(b"&x=\xff\xfe");
                body
            },
            400,
        ),
        (
            ContentType::Form,
            format!("{good}&extra=%FF").into_bytes(),
            400,
        ),
        // A repeated parameter.
        (
            ContentType::Form,
            format!("{good}&password=other").into_bytes(),
            400,
        ),
        // Oversized.
        (
            ContentType::Form,
            format!("{good}&pad={}", "a".repeat(70_000)).into_bytes(),
            413,
        ),
        // Empty fields.
        (
            ContentType::Form,
            format!("csrfmiddlewaretoken={token}&username=&password=").into_bytes(),
            400,
        ),
    ];
    for (content_type, body, status) in cases {
        let response = app
            .client
            .post("/accounts/login/")
            .header(content_type.clone())
            .body(body)
            .dispatch();
        assert_eq!(response.status().code, status, "{content_type}");
        let content = response.content_type().unwrap();
        assert_eq!(content, ContentType::HTML);
    }
    assert_eq!(app.session_count(), 0);
    let admin = app.store.user_by_username("admin").unwrap().unwrap();
    assert!(admin.last_login.is_none());
}

#[test]
fn the_login_page_names_the_application_asking_and_error_pages_know_who_is_signed_in() {
    let app = crate::support::App::demo();
    let next: String = url::form_urlencoded::byte_serialize(
        b"/o/authorize/?response_type=code&client_id=hash1&redirect_uri=x",
    )
    .collect();
    let response = app
        .client
        .get(format!("/accounts/login/?next={next}"))
        .dispatch();
    assert_eq!(response.status().code, 200);
    let html = response.into_string().unwrap();
    assert!(
        html.contains("Log in to continue to hashed secret 1"),
        "{html}"
    );
    // An unknown client, or another page, is not named.
    let plain = app
        .client
        .get("/accounts/login/?next=%2Fo%2Fauthorize%2F%3Fclient_id%3Dnobody")
        .dispatch()
        .into_string()
        .unwrap();
    assert!(plain.contains("<h1>Log in</h1>"));
    // A 404 for a signed-in user shows who is signed in, not a "Log in" link.
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let response = app.client.get("/no/such/page").dispatch();
    assert_eq!(response.status().code, 404);
    let html = response.into_string().unwrap();
    assert!(
        html.contains("Signed in as <strong>admin</strong>"),
        "{html}"
    );
    assert!(!html.contains(">Log in</a>"));
    assert!(html.contains("There is nothing at this address."));
}
