//! Regression tests for the findings of the black-box security review (issue 12), each driven
//! over HTTP and each failing before its fix.

use crate::admin::{page, post, signed_in, snapshot};
use crate::flow::hello;
use crate::flow::{POSTMAN, VERIFIER, challenge, url_for, with};
use crate::oauth;
use crate::support::{App, enc};

fn self_registration(extra: &str) -> String {
    format!(
        "name=Trusted&client_id=&client_type=public&grant_types=authorization-code\
         &redirect_uris={}&algorithm={extra}",
        enc(POSTMAN)
    )
}

/// The authorize URL the tutorial's Postman request would use for `client_id`.
fn authorize_url(client_id: &str, prompt: Option<&str>) -> String {
    let pairs = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", POSTMAN.to_owned()),
        ("scope", "read".to_owned()),
        ("state", "s".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ];
    url_for(&with(pairs, "prompt", prompt))
}

#[test]
fn self_service_registration_cannot_skip_consent_or_take_trusted_grants() {
    let app = signed_in("mallory", false, false);
    for (extra, refusal) in [
        (
            "&skip_authorization=on",
            "Only staff can let an application skip the consent page",
        ),
        (
            "&grant_types=password",
            "Only staff can allow the Resource owner password-based grant",
        ),
        (
            "&grant_types=client-credentials",
            "Only staff can allow the Client credentials grant",
        ),
        (
            "&grant_types=implicit",
            "Only staff can allow the Implicit grant",
        ),
        (
            "&allowed_origins=https%3A%2F%2F*.example.com",
            "wildcards are not supported",
        ),
    ] {
        let before = snapshot(&app);
        let (status, html) = post(&app, "/o/applications/register/", &self_registration(extra));
        assert_eq!(status, 400, "{extra}: {html}");
        assert!(html.contains(refusal), "{extra}: {html}");
        assert_eq!(snapshot(&app), before, "{extra} changed the store");
    }
    // The self-service form does not even offer them.
    let (_, form) = page(&app, "/o/applications/register/");
    assert!(!form.contains("skip_authorization") && !form.contains("value=\"password\""));

    // A plain registration works, and its authorization asks every user for consent: the
    // superuser following mallory's link sees the consent page, and prompt=none is refused.
    let (status, html) = post(&app, "/o/applications/register/", &self_registration(""));
    assert_eq!(status, 303, "{html}");
    let client_id = app
        .store
        .read(|tx| tx.applications())
        .unwrap()
        .into_iter()
        .find(|application| application.name == "Trusted")
        .unwrap()
        .client_id;
    // The superuser follows mallory's link (same browser, now signed in as admin).
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let victim = &app;
    let consent = victim
        .client
        .get(authorize_url(&client_id, None))
        .dispatch();
    assert_eq!(consent.status().code, 200);
    assert!(consent.into_string().unwrap().contains("Authorize"));
    let silent = victim
        .client
        .get(authorize_url(&client_id, Some("none")))
        .dispatch();
    assert_eq!(silent.status().code, 302);
    let location = silent.headers().get_one("Location").unwrap().to_owned();
    assert!(location.contains("error=consent_required"), "{location}");
}

#[test]
fn staff_trust_flags_survive_the_owners_edits() {
    let app = signed_in("carol", false, false);
    let (status, _) = post(&app, "/o/applications/register/", &self_registration(""));
    assert_eq!(status, 303);
    let mut application = app
        .store
        .read(|tx| tx.applications())
        .unwrap()
        .into_iter()
        .find(|application| application.name == "Trusted")
        .unwrap();
    let id = application.id;
    // Staff trust it (as an admin would in the console).
    application.skip_authorization = true;
    app.store
        .write_blocking(move |tx| tx.put_application(&application))
        .unwrap();
    let renamed = self_registration("").replace("name=Trusted", "name=Renamed");
    let (status, _) = post(&app, &format!("/o/applications/{id}/update/"), &renamed);
    assert_eq!(status, 303);
    let saved = app.store.read(|tx| tx.application(id)).unwrap().unwrap();
    assert_eq!(saved.name, "Renamed");
    assert!(
        saved.skip_authorization,
        "the owner's edit dropped what staff set"
    );
}

/// Opens a session for `username` straight in the store, as another browser would have; its
/// key.
fn another_session(app: &App, username: &str) -> oxidot::store::SecretKey {
    let username = username.to_owned();
    let key = oxidot::store::SecretKey::of(&format!("other-browser-{username}"));
    app.store
        .write_blocking(move |tx| {
            let user = tx.user_by_username(&username)?.unwrap();
            let now = oxidot::store::Timestamp::from_datetime(time::OffsetDateTime::now_utc());
            tx.put_session(
                &key,
                &oxidot::store::Session {
                    user_id: user.id,
                    auth_time: now,
                    created: now,
                    expires_at: now.plus_seconds(3600),
                    sid: "other".to_owned(),
                },
            )
        })
        .unwrap();
    key
}

fn session_exists(app: &App, key: &oxidot::store::SecretKey) -> bool {
    app.store.session(key).unwrap().is_some()
}

fn introspected(app: &App, token: &str) -> serde_json::Value {
    oauth::json(oauth::post(
        app,
        "/o/introspect/",
        Some(oauth::basic("introspector", "introspector-secret")),
        &format!("token={token}"),
    ))
    .1
}

fn refreshed(app: &App, refresh: &str) -> (u16, serde_json::Value) {
    oauth::json(oauth::post(
        app,
        "/o/token/",
        Some(oauth::basic("password-client", "password-client-secret")),
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    ))
}

#[test]
fn deactivating_a_user_ends_their_sessions_and_tokens() {
    let app = oauth::app();
    let pair = oauth::password_grant(&app, "read");
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let alices_browser = another_session(&app, "alice");
    assert_eq!(hello(&app, &access), 200);
    assert_eq!(introspected(&app, &access)["active"], true);

    // The admin unticks "active" on alice's page (id 3 in the sample).
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let (status, html) = post(
        &app,
        "/admin/users/3/",
        "action=save&first_name=Alice&last_name=&email=alice%40example.com&is_staff=on",
    );
    assert_eq!(status, 303, "{html}");
    assert!(
        !app.store
            .user_by_username("alice")
            .unwrap()
            .unwrap()
            .is_active
    );

    assert_eq!(hello(&app, &access), 401, "the access token still works");
    assert_eq!(introspected(&app, &access)["active"], false);
    assert_eq!(introspected(&app, &refresh)["active"], false);
    let (status, body) = refreshed(&app, &refresh);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        !session_exists(&app, &alices_browser),
        "alice's session lives on"
    );
}

#[test]
fn an_inactive_users_tokens_fail_at_every_check_however_they_were_deactivated() {
    let app = oauth::app();
    let pair = oauth::password_grant(&app, "read openid");
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    // Deactivated without the admin page (as `loaddata` of a changed user would): nothing was
    // revoked, and still nothing works.
    app.store
        .write_blocking(|tx| {
            let mut alice = tx.user_by_username("alice")?.unwrap();
            alice.is_active = false;
            tx.put_user(&alice)
        })
        .unwrap();
    assert_eq!(hello(&app, &access), 401);
    assert_eq!(introspected(&app, &access)["active"], false);
    assert_eq!(introspected(&app, &refresh)["active"], false);
    assert_eq!(refreshed(&app, &refresh).0, 400);
    let userinfo = app
        .client
        .get("/o/userinfo/")
        .header(oauth::bearer(&access))
        .dispatch();
    assert_eq!(userinfo.status().code, 401);
}

#[test]
fn changing_a_password_ends_the_users_other_sessions() {
    let app = oauth::app();
    // Alice changes her own password: her other browser is signed out, this one stays.
    assert_eq!(app.login("alice", "alice-pass-123").status().code, 303);
    let elsewhere = another_session(&app, "alice");
    let (status, html) = post(
        &app,
        "/accounts/password_change/",
        "old_password=wrong-guess-1&new_password1=new-pass-456&new_password2=new-pass-456",
    );
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Your old password was entered incorrectly"));
    assert!(
        session_exists(&app, &elsewhere),
        "a refused change ended sessions"
    );
    let (status, _) = post(
        &app,
        "/accounts/password_change/",
        "old_password=alice-pass-123&new_password1=new-pass-456&new_password2=new-pass-456",
    );
    assert_eq!(status, 303);
    assert!(!session_exists(&app, &elsewhere));
    assert_eq!(app.signed_in_as().as_deref(), Some("alice"));
    let (status, done) = page(&app, "/accounts/password_change/done/");
    assert_eq!(status, 200);
    assert!(done.contains("Your password was changed"));

    // An admin setting alice's password signs her out everywhere.
    let alices = another_session(&app, "alice");
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let (status, _) = post(
        &app,
        "/admin/users/3/",
        "action=password&password=set-by-admin-1&password2=set-by-admin-1",
    );
    assert_eq!(status, 303);
    assert!(!session_exists(&app, &alices));
    assert_eq!(app.signed_in_as().as_deref(), Some("admin"));
}

fn client_credentials_from(app: &App, ip: &str, secret: &str) -> u16 {
    app.client
        .post("/o/token/")
        .header(rocket::http::ContentType::Form)
        .header(oauth::basic("cc-client", secret))
        .remote(std::net::SocketAddr::new(ip.parse().unwrap(), 40_000))
        .body("grant_type=client_credentials")
        .dispatch()
        .status()
        .code
}

#[test]
fn strangers_failures_never_lock_the_real_client_or_user_out() {
    let app = oauth::app();
    // Five wrong secrets from the attacker's address lock that address out for cc-client...
    for _ in 0..5 {
        assert_eq!(client_credentials_from(&app, "203.0.113.9", "guess"), 401);
    }
    assert_eq!(
        client_credentials_from(&app, "203.0.113.9", "cc-client-secret"),
        429
    );
    // ...and not the real client, from its own address.
    assert_eq!(
        client_credentials_from(&app, "198.51.100.7", "cc-client-secret"),
        200
    );

    // The same for a username: the attacker's guesses lock the attacker.
    for _ in 0..5 {
        assert_eq!(
            app.login_from("203.0.113.9", "alice", "guess-123")
                .status()
                .code,
            400
        );
    }
    assert_eq!(
        app.login_from("203.0.113.9", "alice", "alice-pass-123")
            .status()
            .code,
        429
    );
    assert_eq!(
        app.login_from("198.51.100.7", "alice", "alice-pass-123")
            .status()
            .code,
        303
    );
}

#[test]
fn a_distributed_guessing_attack_slows_the_principal_and_still_lets_the_owner_in() {
    let app = App::with(
        |settings| {
            settings.login_throttle.slow_down_after = 3;
            settings.login_throttle.max_delay_seconds = 1;
        },
        vec![crate::fixtures::sample("dot-3.4.1-dumpdata.yaml")],
    );
    for n in 0..6 {
        let ip = format!("203.0.113.{n}");
        assert_eq!(client_credentials_from(&app, &ip, "guess"), 401, "{ip}");
    }
    // Slowed (the throttle's own tests measure the delay), never refused.
    assert_eq!(
        client_credentials_from(&app, "198.51.100.7", "cc-client-secret"),
        200
    );
}

#[test]
fn the_right_password_of_an_inactive_account_counts_as_a_failure() {
    let app = oauth::app();
    app.store
        .write_blocking(|tx| {
            let mut alice = tx.user_by_username("alice")?.unwrap();
            alice.is_active = false;
            tx.put_user(&alice)
        })
        .unwrap();
    for _ in 0..5 {
        let refused = app.login_from("203.0.113.9", "alice", "alice-pass-123");
        assert_eq!(refused.status().code, 400);
    }
    // Exactly as with a wrong password: throttled, so the answer confirms nothing.
    assert_eq!(
        app.login_from("203.0.113.9", "alice", "alice-pass-123")
            .status()
            .code,
        429
    );
}

// ----- secrets at rest (the real binary, under a permissive umask) -----

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_database_backups_and_control_socket_are_owner_only_whatever_the_umask() {
    use crate::support::{Server, oxidot_under_umask};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("oxidot.redb");
    let migrated = oxidot_under_umask(dir.path(), "000")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", output_text(&migrated));
    assert_eq!(mode(&database), 0o600);

    let server = Server::start_from(oxidot_under_umask(dir.path(), "000"), &["serve"], &[]);
    let socket = dir.path().join("oxidot.redb.ctl");
    assert_eq!(mode(&socket), 0o600);
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let backup = oxidot_under_umask(dir.path(), "000")
        .args(["backup", backups.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", output_text(&backup));
    assert!(server.terminate());
    let copies: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(mode(&copies[0]), 0o600);

    // A restore from a world-readable copy puts an owner-only file in place.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copies[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    let restored = oxidot_under_umask(dir.path(), "000")
        .args(["restore", copies[0].to_str().unwrap()])
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", output_text(&restored));
    assert_eq!(mode(&database), 0o600);
}

#[test]
fn serve_refuses_a_database_others_can_read_unless_told() {
    use crate::support::{Server, oxidot};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("oxidot.redb");
    assert!(
        oxidot(dir.path())
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = oxidot(dir.path())
        .arg("serve")
        .env("OXIDOT_PORT", crate::support::free_port().to_string())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = output_text(&refused);
    assert!(
        message.contains("refusing to start")
            && message.contains("can be read or written by other local users (mode 644)")
            && message.contains("chmod 600"),
        "{message}"
    );
    let check = oxidot(dir.path()).arg("check").output().unwrap();
    assert!(output_text(&check).contains("# error: the database"));
    let server = Server::start_with(
        dir.path(),
        &["serve"],
        &[("OXIDOT_ALLOW_READABLE_DATABASE", "true")],
    );
    assert!(server.terminate());
}

fn jwks(base: &str) -> serde_json::Value {
    let text = reqwest::blocking::get(format!("{base}/o/.well-known/jwks.json"))
        .unwrap()
        .text()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn private_signing_keys_are_encrypted_at_rest_when_a_secret_is_given() {
    use crate::support::{Server, oxidot};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("oxidot.redb");
    // First without a secret: keys are stored plain, and `check` says so.
    let server = Server::start(dir.path(), &["serve"]);
    let jwks_before = jwks(&server.base);
    assert!(server.terminate());
    let advice = output_text(&oxidot(dir.path()).arg("check").output().unwrap());
    assert!(
        advice.contains("private signing keys are stored unencrypted"),
        "{advice}"
    );
    let stored = |database: &std::path::Path| {
        let (store, _) = oxidot::store::Store::open(database, 1 << 20).unwrap();
        let keys = store.read(|tx| tx.signing_keys()).unwrap();
        store.close().unwrap();
        keys.into_iter()
            .map(|key| key.private_jwk)
            .collect::<Vec<_>>()
    };
    assert!(stored(&database).iter().all(|jwk| jwk.contains("\"d\"")));

    // With a secret, the same keys are sealed at start and keep being published and used.
    let secret = [(
        "OXIDOT_KEY_ENCRYPTION_KEY",
        "correct-horse-battery-staple-42",
    )];
    let server = Server::start_with(dir.path(), &["serve"], &secret);
    let jwks_after = jwks(&server.base);
    assert_eq!(jwks_before, jwks_after, "the same keys are published");
    let generated = oxidot(dir.path())
        .envs(secret)
        .args(["keys", "generate", "--algorithm", "ES256"])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", output_text(&generated));
    assert!(server.terminate());
    let sealed = stored(&database);
    assert!(sealed.len() >= 4);
    assert!(
        sealed
            .iter()
            .all(|jwk| !jwk.contains("\"d\"") && jwk.split('.').count() == 5),
        "{sealed:?}"
    );
    let check = output_text(
        &oxidot(dir.path())
            .envs(secret)
            .arg("check")
            .output()
            .unwrap(),
    );
    assert!(check.contains("signing keys: encrypted at rest"), "{check}");

    // Without the secret, or with another, the server says why it cannot start.
    for env in [
        vec![],
        vec![("OXIDOT_KEY_ENCRYPTION_KEY", "another-secret-of-length")],
    ] {
        let output = oxidot(dir.path())
            .envs(env)
            .arg("serve")
            .env("OXIDOT_PORT", crate::support::free_port().to_string())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let message = output_text(&output);
        assert!(message.contains("key_encryption_key"), "{message}");
    }
}

// ----- Django's permissions for staff -----

/// What a DOT deployment's `dumpdata auth contenttypes` brings: content types, permissions by
/// pk, and a group holding two of them by pk.
const HELPDESK: &str = r#"
- model: contenttypes.contenttype
  pk: 7
  fields: {app_label: oauth2_provider, model: application}
- model: contenttypes.contenttype
  pk: 8
  fields: {app_label: oauth2_provider, model: accesstoken}
- model: auth.permission
  pk: 25
  fields: {name: Can change application, content_type: 7, codename: change_application}
- model: auth.permission
  pk: 32
  fields: {name: Can view access token, content_type: 8, codename: view_accesstoken}
- model: auth.group
  pk: 3
  fields: {name: helpdesk, permissions: [25, 32]}
"#;

/// The demo plus the helpdesk group, and `username` (staff) signed in, in it when asked.
fn staff_member(username: &str, in_helpdesk: bool) -> App {
    let mut files = oxidot::server::demo_fixture_files();
    files.push(oxidot::fixtures::FixtureFile {
        name: "helpdesk.yaml".to_owned(),
        contents: HELPDESK.to_owned(),
    });
    let app = App::with(|_| {}, files);
    crate::admin::add_user(&app, username, true, false);
    let name = username.to_owned();
    app.store
        .write_blocking(move |tx| {
            let mut user = tx.user_by_username(&name)?.unwrap();
            if in_helpdesk {
                user.groups = vec![3];
            }
            tx.put_user(&user)
        })
        .unwrap();
    assert_eq!(app.login(username, "user-pass-123").status().code, 303);
    app
}

#[test]
fn staff_may_do_what_their_django_permissions_allow_and_nothing_more() {
    let app = staff_member("sam", true);
    // change_application (through the group's pk 25) lets sam see and edit applications...
    assert_eq!(page(&app, "/admin/applications/").0, 200);
    assert_eq!(page(&app, "/admin/applications/3/").0, 200);
    let (status, _) = post(
        &app,
        "/admin/applications/3/",
        "action=save&name=Renamed&client_id=hash1&client_type=confidential\
         &grant_types=authorization-code&redirect_uris=https%3A%2F%2Foauth.pstmn.io%2Fv1%2Fcallback\
         &algorithm=RS256&hash_client_secret=on&owner=admin",
    );
    assert_eq!(status, 303);
    // ...and view_accesstoken (pk 32) the access tokens.
    assert_eq!(page(&app, "/admin/access-tokens/").0, 200);

    // Everything else is refused, before anything changes.
    let before = snapshot(&app);
    for path in [
        "/admin/applications/new/",
        "/admin/refresh-tokens/",
        "/admin/periodic-tasks/",
        "/admin/users/",
        "/admin/groups/",
        "/admin/keys/",
    ] {
        assert_eq!(page(&app, path).0, 403, "{path}");
    }
    for (path, form) in [
        ("/admin/applications/3/", "action=delete&confirm=yes"),
        ("/admin/access-tokens/", "action=revoke&confirm=yes"),
        (
            "/admin/periodic-tasks/",
            "name=x&task=debug_task&every=1&period=hours&enabled=on",
        ),
        ("/admin/keys/", "action=generate&algorithm=ES256"),
        (
            "/admin/users/1/",
            "action=password&password=taken-over-1&password2=taken-over-1",
        ),
    ] {
        assert_eq!(post(&app, path, form).0, 403, "{path}");
    }
    assert_eq!(snapshot(&app), before);
    // The navigation lists what sam may see, only.
    let (_, dashboard) = page(&app, "/admin/");
    assert!(dashboard.contains("href=\"/admin/applications/\""));
    assert!(!dashboard.contains("href=\"/admin/periodic-tasks/\""));
}

#[test]
fn only_superusers_grant_rank_groups_and_permissions() {
    let app = staff_member("sam", false);
    let sam = app.store.user_by_username("sam").unwrap().unwrap().id;
    // A superuser gives sam auth.change_user by ticking it on sam's page.
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let (status, html) = post(
        &app,
        &format!("/admin/users/{sam}/"),
        "action=save&first_name=Sam&last_name=&email=&is_active=on&is_staff=on\
         &permissions=auth.change_user",
    );
    assert_eq!(status, 303, "{html}");
    let (_, page_html) = page(&app, &format!("/admin/users/{sam}/"));
    assert!(page_html.contains("value=\"auth.change_user\" checked"));

    // sam edits users now, but cannot make anyone (sam included) a superuser, put them in a
    // group or give them permissions.
    assert_eq!(app.login("sam", "user-pass-123").status().code, 303);
    let before = snapshot(&app);
    for grab in [
        "&is_superuser=on",
        "&groups=1",
        "&permissions=django_celery_beat.add_periodictask",
        "&other_permissions=add_periodictask+django_celery_beat+periodictask",
    ] {
        let form =
            format!("action=save&first_name=Sam&last_name=&email=&is_active=on&is_staff=on{grab}");
        assert_eq!(
            post(&app, &format!("/admin/users/{sam}/"), &form).0,
            403,
            "{grab}"
        );
    }
    assert_eq!(snapshot(&app), before);
    let (status, _) = post(
        &app,
        &format!("/admin/users/{sam}/"),
        "action=save&first_name=Samuel&last_name=&email=&is_active=on&is_staff=on",
    );
    assert_eq!(status, 303);
    let saved = app.store.user_by_username("sam").unwrap().unwrap();
    assert_eq!(saved.first_name, "Samuel");
    assert!(!saved.is_superuser && saved.groups.is_empty());
    assert_eq!(
        saved.user_permissions.len(),
        1,
        "kept as the superuser set them"
    );
}

// ----- smaller leaks -----

#[test]
fn logout_asks_an_anonymous_visitor_before_sending_them_to_a_clients_uri() {
    let app = App::demo();
    app.store
        .write_blocking(|tx| {
            let mut application = tx.application(3)?.unwrap();
            application.post_logout_redirect_uris = vec!["https://rp.example/bye".to_owned()];
            tx.put_application(&application)
        })
        .unwrap();
    // No session, no id_token_hint: a page with a link, not a redirect.
    let response = app
        .client
        .get("/o/logout/?client_id=hash1&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=s")
        .dispatch();
    assert_eq!(response.status().code, 200);
    assert!(response.headers().get_one("Location").is_none());
    let html = response.into_string().unwrap();
    assert!(
        html.contains("You are not signed in")
            && html.contains("href=\"https:&#x2F;&#x2F;rp.example&#x2F;bye?state=s\""),
        "{html}"
    );
}

#[test]
fn request_objects_are_refused_until_they_are_supported() {
    let app = crate::flow::logged_in();
    for (name, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let pairs = with(
            crate::flow::tutorial_request(),
            name,
            Some("eyJhbGciOiJub25lIn0.e30."),
        );
        let response = app.client.get(url_for(&pairs)).dispatch();
        assert_eq!(response.status().code, 302, "{name}");
        let location = response.headers().get_one("Location").unwrap().to_owned();
        assert_eq!(
            crate::flow::param(&location, "error").as_deref(),
            Some(error)
        );
        assert_eq!(
            crate::flow::param(&location, "state").as_deref(),
            Some("xyz-123")
        );
    }
    let codes = app
        .store
        .read(|tx| tx.token_count(oxidot::store::TokenTable::Grants))
        .unwrap();
    assert_eq!(codes, 0, "no code was issued");
}

#[test]
fn revoke_confirmations_name_only_applications_the_user_granted() {
    let app = signed_in("carol", false, false);
    // carol granted nothing to hash1 (application 3): asking to revoke it names nothing.
    let (status, html) = post(&app, "/o/authorized_tokens/3/delete/", "");
    assert_eq!(status, 404);
    assert!(!html.contains("hashed secret 1"), "{html}");
}

#[test]
fn failed_logins_are_logged_with_username_and_ip_and_never_the_password() {
    use crate::support::{free_port, http_client, oxidot, wait_until_up};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("server.log");
    let child = oxidot(dir.path())
        .arg("demo")
        .env("OXIDOT_PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Killed if an assertion fails before the server is stopped.
    let mut server = crate::support::Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let base = server.base.clone();
    wait_until_up(&base);
    let client = http_client();
    let page = client
        .get(format!("{base}/accounts/login/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let token = crate::cli::csrf_field(&page);
    let password = "a-guessed-password-never-logged";
    let status = client
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", token.as_str()),
            ("username", "admin"),
            ("password", password),
        ])
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 400);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    assert!(server.child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("login failed"))
        .unwrap_or_else(|| panic!("no failed-login line in {text}"));
    assert!(
        line.contains("username=\"admin\"") || line.contains("username=admin"),
        "{line}"
    );
    assert!(line.contains("127.0.0.1"), "{line}");
    assert!(!text.contains(password));
}

#[test]
fn check_flags_a_public_address_without_issuer_and_metrics_on_it() {
    use crate::support::oxidot;
    let dir = tempfile::tempdir().unwrap();
    let public = oxidot(dir.path())
        .arg("check")
        .env("OXIDOT_ADDRESS", "0.0.0.0")
        .output()
        .unwrap();
    let text = output_text(&public);
    assert!(
        text.contains("# warning: listening on 0.0.0.0 without `issuer`"),
        "{text}"
    );
    assert!(
        text.contains("/metrics is served on the public address 0.0.0.0"),
        "{text}"
    );
    // Both set right: neither is flagged.
    let configured = oxidot(dir.path())
        .arg("check")
        .env("OXIDOT_ADDRESS", "0.0.0.0")
        .env("OXIDOT_ISSUER", "https://id.example.com/o")
        .env("OXIDOT_METRICS__ADDRESS", "127.0.0.1:9100")
        .output()
        .unwrap();
    let text = output_text(&configured);
    assert!(
        !text.contains("without `issuer`") && !text.contains("/metrics is served"),
        "{text}"
    );
}

// ----- slow and greedy clients (the real binary) -----

/// A server whose connection limits are `settings` (`OXIDOT_CONNECTIONS__*`).
fn guarded_server(dir: &std::path::Path, settings: &[(&str, &str)]) -> crate::support::Server {
    crate::support::Server::start_with(dir, &["demo"], settings)
}

fn address(server: &crate::support::Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes: then it did not).
fn read_until_closed(
    stream: &mut std::net::TcpStream,
    limit: std::time::Duration,
) -> Option<String> {
    use std::io::Read as _;
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&received).into_owned());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn connections_that_send_headers_or_bodies_slowly_are_closed() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let server = guarded_server(
        dir.path(),
        &[
            ("OXIDOT_CONNECTIONS__HEADER_TIMEOUT_SECONDS", "1"),
            ("OXIDOT_CONNECTIONS__MIN_BODY_BYTES_PER_SECOND", "1000"),
        ],
    );
    let patience = std::time::Duration::from_secs(15);
    // Half a request head, then silence: closed without an answer.
    let mut slow_head = std::net::TcpStream::connect(address(&server)).unwrap();
    slow_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let answer = read_until_closed(&mut slow_head, patience).expect("still open");
    assert!(!answer.contains("200 OK"), "{answer}");

    // A whole request, then an idle keep-alive connection: answered, then closed.
    let mut idle = std::net::TcpStream::connect(address(&server)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut idle, patience).expect("the idle connection stays open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A body announced at 1,000 bytes and sent a byte at a time: 408, closed.
    let mut slow_body = std::net::TcpStream::connect(address(&server)).unwrap();
    slow_body
        .write_all(
            b"POST /o/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ng",
        )
        .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            if slow_body.write_all(b"r").is_err() {
                break;
            }
        }
        slow_body
    });
    let mut slow_body = trickle.join().unwrap();
    let answer = read_until_closed(&mut slow_body, patience).expect("still open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body larger than any limit is refused before it is read.
    let mut huge = std::net::TcpStream::connect(address(&server)).unwrap();
    huge.write_all(
        b"POST /o/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    )
    .unwrap();
    let answer = read_until_closed(&mut huge, patience).expect("still open");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // The server still serves everyone else.
    let status = reqwest::blocking::get(format!("{}/healthz", server.base))
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    assert!(server.terminate());
}

#[test]
fn open_connections_are_bounded_per_client_address_and_in_all() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let server = guarded_server(
        dir.path(),
        &[
            ("OXIDOT_CONNECTIONS__MAX_PER_IP", "2"),
            ("OXIDOT_CONNECTIONS__MAX", "3"),
        ],
    );
    let target: std::net::SocketAddr = address(&server).parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Connections from a chosen loopback source address (127.0.0.x all reach the server).
    let from = |source: [u8; 4]| -> std::net::TcpStream {
        runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind(std::net::SocketAddr::from((source, 0)))
                .unwrap();
            socket.connect(target).await.unwrap().into_std().unwrap()
        })
    };
    let refused = |stream: &mut std::net::TcpStream| {
        stream.set_nonblocking(false).unwrap();
        let answer = read_until_closed(stream, std::time::Duration::from_secs(10));
        answer.is_some_and(|answer| answer.starts_with("HTTP/1.1 503"))
    };
    // A connection the server has surely counted: it answered a request on it (and keeps it
    // open, keep-alive). A refused one is retried while an earlier connection (the start-up
    // probe's) may still be closing.
    let held = |source: [u8; 4]| -> std::net::TcpStream {
        use std::io::Read as _;
        for _ in 0..100 {
            let mut stream = from(source);
            stream.set_nonblocking(false).unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let mut head = [0u8; 12];
            if stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200") {
                return stream;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no connection from {source:?} was served");
    };
    // Two connections from one address are held; a third from it is refused.
    let first = [held([127, 0, 0, 5]), held([127, 0, 0, 5])];
    assert!(
        refused(&mut from([127, 0, 0, 5])),
        "a third from one address"
    );
    // Another address gets one (the third in all), then the total is reached.
    let other = held([127, 0, 0, 6]);
    assert!(refused(&mut from([127, 0, 0, 6])), "a fourth in all");
    // Closed connections free their places.
    drop(first);
    drop(other);
    let _again = held([127, 0, 0, 5]);
    assert!(server.terminate());
}
