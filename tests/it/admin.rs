//! The admin console and the self-service pages over HTTP: who may use them, CSRF on every
//! form, applications with their secret shown once, token lists and revocation, users.

use base64::Engine as _;
use rocket::http::{ContentType, Header};
use rocket::local::blocking::LocalResponse;
use serde_json::Value;

use crate::flow::{approve, hello, logged_in, param, tutorial_exchange, tutorial_request};
use crate::support::{App, header};

/// Adds an active user with a password (not staff unless asked).
pub fn add_user(app: &App, username: &str, staff: bool, superuser: bool) {
    let hash = oxidot::passwords::hash("user-pass-123").unwrap();
    let username = username.to_owned();
    app.store
        .write_blocking(move |tx| {
            let user = oxidot::store::User {
                id: tx.next_user_id()?,
                username: username.clone(),
                password: hash.clone(),
                first_name: String::new(),
                last_name: String::new(),
                email: String::new(),
                is_active: true,
                is_staff: staff,
                is_superuser: superuser,
                last_login: None,
                date_joined: oxidot::store::Timestamp(0),
                groups: Vec::new(),
                user_permissions: Vec::new(),
            };
            tx.put_user(&user)
        })
        .unwrap();
}

pub fn signed_in(username: &str, staff: bool, superuser: bool) -> App {
    let app = App::demo();
    add_user(&app, username, staff, superuser);
    assert_eq!(app.login(username, "user-pass-123").status().code, 303);
    app
}

/// The texts of a list's first-column links to pages under `prefix`, in order.
fn link_texts(html: &str, prefix: &str) -> Vec<String> {
    html.split(&format!("<td><a href=\"{prefix}"))
        .skip(1)
        .map(|cell| {
            let start = cell.find('>').unwrap() + 1;
            cell[start..start + cell[start..].find('<').unwrap()].to_owned()
        })
        .collect()
}

pub fn body(response: LocalResponse<'_>) -> (u16, String) {
    let status = response.status().code;
    (status, response.into_string().unwrap_or_default())
}

pub fn page(app: &App, path: &str) -> (u16, String) {
    body(app.client.get(path.to_owned()).dispatch())
}

pub fn post(app: &App, path: &str, form: &str) -> (u16, String) {
    let form = format!("csrfmiddlewaretoken={}&{form}", app.csrf());
    body(app.post_form(path, &form))
}

/// Sends a form and, when it is answered with a redirect, the page it leads to (as a browser
/// does: status and page of the GET).
pub fn post_and_follow(app: &App, path: &str, form: &str) -> (u16, String) {
    let form = format!("csrfmiddlewaretoken={}&{form}", app.csrf());
    let response = app.post_form(path, &form);
    if response.status().code != 303 {
        return body(response);
    }
    let location = response
        .headers()
        .get_one("Location")
        .expect("a redirect names where")
        .to_owned();
    drop(response);
    page(app, &location)
}

pub fn application_count(app: &App) -> usize {
    app.store.read(|tx| tx.applications()).unwrap().len()
}

/// The value of the read-only secret field of a "copy it now" page.
pub fn shown_secret(html: &str) -> String {
    let field = html.find("id=\"client-secret\"").expect("a secret field");
    let value = html[field..].find("value=\"").unwrap() + field + 7;
    let end = html[value..].find('"').unwrap() + value;
    html[value..end].to_owned()
}

pub fn shown_client_id(html: &str) -> String {
    let start = html.find("<code id=\"client-id\">").unwrap() + "<code id=\"client-id\">".len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_owned()
}

pub fn basic(id: &str, secret: &str) -> Header<'static> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    Header::new("Authorization", format!("Basic {encoded}"))
}

pub fn token_request(app: &App, id: &str, secret: &str, form: &str) -> (u16, Value) {
    let response = app
        .client
        .post("/o/token/")
        .header(ContentType::Form)
        .header(basic(id, secret))
        .body(form)
        .dispatch();
    let status = response.status().code;
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

const CC_APPLICATION: &str = "name=Reporting&client_id=&client_type=confidential\
    &grant_types=client-credentials&redirect_uris=&post_logout_redirect_uris=\
    &allowed_origins=&algorithm=&hash_client_secret=on&owner=";

/// Creates a client-credentials application in the admin; its client id and secret.
fn admin_creates_cc_application(app: &App) -> (String, String) {
    let (status, html) = post_and_follow(app, "/admin/applications/", CC_APPLICATION);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Copy the client secret now"));
    assert!(html.contains("The application “Reporting” was added successfully."));
    (shown_client_id(&html), shown_secret(&html))
}

const ADMIN_PAGES: [&str; 16] = [
    "/admin/",
    "/admin/users/",
    "/admin/users/1/",
    "/admin/users/new/",
    "/admin/groups/",
    "/admin/groups/1/",
    "/admin/applications/",
    "/admin/applications/new/",
    "/admin/applications/1/",
    "/admin/access-tokens/",
    "/admin/refresh-tokens/",
    "/admin/grants/",
    "/admin/id-tokens/",
    "/admin/device-grants/",
    "/admin/periodic-tasks/",
    "/admin/keys/",
];

const ADMIN_ACTIONS: [(&str, &str); 13] = [
    ("/admin/applications/delete/", "id=1&confirm=yes"),
    ("/admin/users/delete/", "id=2&confirm=yes"),
    ("/admin/groups/delete/", "id=1&confirm=yes"),
    (
        "/admin/periodic-tasks/delete/",
        "name=clear_tokens&confirm=yes",
    ),
    ("/admin/applications/", CC_APPLICATION),
    ("/admin/applications/1/", "action=delete&confirm=yes"),
    (
        "/admin/users/",
        "username=mallory&password=mallory-pass-1&password2=mallory-pass-1&is_superuser=on&is_staff=on",
    ),
    (
        "/admin/users/1/",
        "action=password&password=taken-over-1&password2=taken-over-1",
    ),
    ("/admin/groups/", "name=owners"),
    ("/admin/access-tokens/", "action=revoke&confirm=yes"),
    ("/admin/refresh-tokens/", "action=revoke&confirm=yes"),
    ("/admin/keys/", "action=generate&algorithm=ES256"),
    (
        "/admin/periodic-tasks/",
        "name=x&task=debug_task&every=1&period=hours&enabled=on",
    ),
];

/// Everything the admin actions above could change.
pub fn snapshot(app: &App) -> String {
    app.store
        .read(|tx| {
            Ok(format!(
                "{:?} {:?} {:?} {:?} {:?}",
                tx.applications()?,
                tx.users()?,
                tx.groups()?,
                tx.signing_keys()?.len(),
                tx.periodic_tasks()?.len()
            ))
        })
        .unwrap()
}

#[test]
fn the_admin_is_for_staff_and_each_page_for_those_with_its_permission() {
    // Signed out: every page sends the browser to log in and back.
    let app = App::demo();
    let response = app
        .client
        .get("/admin/applications/?client_type=public")
        .dispatch();
    assert_eq!(response.status().code, 303);
    assert_eq!(
        header(&response, "Location"),
        Some("/admin/login/?next=%2Fadmin%2Fapplications%2F%3Fclient_type%3Dpublic")
    );
    drop(response);
    let response = app.client.get("/o/applications/").dispatch();
    assert_eq!(
        header(&response, "Location"),
        Some("/accounts/login/?next=%2Fo%2Fapplications%2F")
    );
    drop(response);

    // A user without staff status: 403 on every page and every action, nothing changes.
    let app = signed_in("carol", false, false);
    for path in ADMIN_PAGES {
        assert_eq!(page(&app, path).0, 403, "{path}");
    }
    let before = snapshot(&app);
    for (path, form) in ADMIN_ACTIONS {
        assert_eq!(post(&app, path, form).0, 403, "{path}");
    }
    assert_eq!(snapshot(&app), before);
    // Self-service pages are theirs.
    assert_eq!(page(&app, "/o/applications/").0, 200);
    assert_eq!(page(&app, "/o/authorized_tokens/").0, 200);

    // Staff without any permission: the dashboard, and nothing else (Django's model
    // permissions decide; see security.rs for staff holding some).
    let app = signed_in("sam", true, false);
    for path in ADMIN_PAGES {
        let expected = if path == "/admin/" { 200 } else { 403 };
        assert_eq!(page(&app, path).0, expected, "{path}");
    }
    let before = snapshot(&app);
    for (path, form) in ADMIN_ACTIONS {
        assert_eq!(post(&app, path, form).0, 403, "{path}");
    }
    assert_eq!(snapshot(&app), before);
    let (_, dashboard) = page(&app, "/admin/");
    assert!(!dashboard.contains("href=\"/admin/users/\""));
    assert!(!dashboard.contains("href=\"/admin/applications/\""));
}

#[test]
fn every_admin_form_refuses_a_missing_csrf_token() {
    let app = logged_in();
    let before = snapshot(&app);
    for (path, form) in ADMIN_ACTIONS.iter().copied().chain([
        ("/admin/groups/1/", "name=renamed"),
        ("/admin/users/1/", "action=save&is_active=on"),
    ]) {
        let (status, _) = body(app.post_form(path, form));
        assert_eq!(status, 403, "{path}");
    }
    for (path, form) in [
        ("/o/applications/register/", CC_APPLICATION),
        ("/o/authorized_tokens/3/delete/", "confirm=yes"),
    ] {
        assert_eq!(body(app.post_form(path, form)).0, 403, "{path}");
    }
    assert_eq!(snapshot(&app), before);
}

#[test]
fn an_application_made_in_the_admin_shows_its_secret_once_and_the_secret_works() {
    let app = logged_in();
    let (client_id, secret) = admin_creates_cc_application(&app);
    assert_eq!(client_id.len(), 40);
    assert_eq!(secret.len(), 128);
    let (status, token) = token_request(&app, &client_id, &secret, "grant_type=client_credentials");
    assert_eq!(status, 200, "{token}");
    // Stored hashed; the pages afterwards never show it.
    let application = app
        .store
        .read(|tx| tx.application_by_client_id(&client_id))
        .unwrap()
        .unwrap();
    assert!(application.client_secret.starts_with("argon2$"));
    let (_, list) = page(&app, "/admin/applications/");
    assert!(list.contains(&client_id));
    let (status, detail) = page(&app, &format!("/admin/applications/{}/", application.id));
    assert_eq!(status, 200);
    assert!(!detail.contains(&secret));
    assert!(detail.contains("stored hashed"));
    // A regenerated secret replaces the old one at once.
    let (status, regenerated) = post_and_follow(
        &app,
        &format!("/admin/applications/{}/", application.id),
        "action=regenerate",
    );
    assert_eq!(status, 200);
    let new_secret = shown_secret(&regenerated);
    assert_ne!(new_secret, secret);
    assert_eq!(
        token_request(&app, &client_id, &secret, "grant_type=client_credentials").0,
        401
    );
    assert_eq!(
        token_request(
            &app,
            &client_id,
            &new_secret,
            "grant_type=client_credentials"
        )
        .0,
        200
    );
    // Filters.
    let (_, public) = page(
        &app,
        "/admin/applications/?client_type=public&grant_type=&skip_authorization=",
    );
    assert!(!public.contains(&client_id));
    let (_, cc) = page(&app, "/admin/applications/?grant_type=client-credentials");
    assert!(cc.contains(&client_id) && !cc.contains(">hash1<"));
}

#[test]
fn a_saved_application_redirects_so_a_reload_neither_saves_again_nor_shows_the_secret_again() {
    let app = logged_in();
    let before = application_count(&app);
    let form = format!("csrfmiddlewaretoken={}&{CC_APPLICATION}", app.csrf());
    let response = app.post_form("/admin/applications/", &form);
    assert_eq!(response.status().code, 303);
    let secret_page = response.headers().get_one("Location").unwrap().to_owned();
    drop(response);
    assert!(
        secret_page.starts_with("/admin/applications/") && secret_page.ends_with("/secret/"),
        "{secret_page}"
    );
    assert_eq!(application_count(&app), before + 1);
    let (status, first) = page(&app, &secret_page);
    assert_eq!(status, 200);
    let secret = shown_secret(&first);
    assert_eq!(secret.len(), 128);
    assert!(first.contains("was added successfully"));
    // A reload: the same page, without the secret or the message, and no new application.
    let (status, again) = page(&app, &secret_page);
    assert_eq!(status, 200);
    assert!(!again.contains(&secret) && !again.contains("client-secret"));
    assert!(again.contains("The secret was shown already"));
    assert!(!again.contains("was added successfully"));
    assert_eq!(application_count(&app), before + 1);
    // Saving without a new secret goes to the application's page, with its message once.
    let id = secret_page
        .trim_end_matches("/secret/")
        .rsplit('/')
        .next()
        .unwrap();
    let detail = format!("/admin/applications/{id}/");
    let (status, changed) = post_and_follow(
        &app,
        &detail,
        &format!(
            "action=save&{}",
            CC_APPLICATION.replace("Reporting", "Reports")
        ),
    );
    assert_eq!(status, 200);
    assert!(
        changed.contains("The application “Reports” was changed successfully."),
        "{changed}"
    );
    assert!(!page(&app, &detail).1.contains("changed successfully"));
    // Another user's (or no) application has no secret page.
    assert_eq!(page(&app, "/admin/applications/999/secret/").0, 404);
    let (_, deleted) = post_and_follow(&app, &detail, "action=delete&confirm=yes");
    assert!(deleted.contains("The application “Reports” was deleted successfully."));
}

#[test]
fn invalid_application_input_returns_the_form_with_a_message_and_changes_nothing() {
    let app = logged_in();
    let before = snapshot(&app);
    let cases = [
        (
            "redirect_uris=ftp%3A%2F%2Fx%2Fcb&grant_types=authorization-code",
            "is not a valid redirect URI",
            "e-redirect",
        ),
        (
            "redirect_uris=https%3A%2F%2Fx%2Fcb%23frag&grant_types=authorization-code",
            "fragment",
            "e-redirect",
        ),
        (
            "grant_types=authorization-code",
            "Redirect URIs cannot be empty",
            "e-redirect",
        ),
        ("grant_types=magic", "is not a grant type", "e-grant-types"),
        (
            "grant_types=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=hash1",
            "already exists",
            "e-client-id",
        ),
        (
            "grant_types=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&allowed_origins=https%3A%2F%2Fspa.example%2Fapp",
            "is not a valid allowed origin",
            "e-origins",
        ),
        (
            "grant_types=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&algorithm=HS256&hash_client_secret=on",
            "HS256",
            "e-hash",
        ),
        (
            "grant_types=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&owner=nobody",
            "There is no user",
            "e-owner",
        ),
    ];
    for (form, message, error_id) in cases {
        let form = format!("name=Bad&client_type=confidential&{form}");
        for path in ["/admin/applications/", "/o/applications/register/"] {
            if path.starts_with("/o/") && form.contains("owner=") {
                continue;
            }
            let (status, html) = post(&app, path, &form);
            assert_eq!(status, 400, "{path} {form}");
            assert!(html.contains(message), "{path} {form}: {html}");
            // The message stands next to its field, which is marked; a summary is on top.
            assert!(
                html.contains(&format!("class=\"field-error\" id=\"{error_id}\"")),
                "{path} {form}: {html}"
            );
            let marked = html
                .split('<')
                .find(|tag| tag.contains(&format!("aria-describedby=\"{error_id}")))
                .unwrap_or_else(|| panic!("{path} {form}: no field names {error_id}"));
            assert!(marked.contains("aria-invalid=\"true\""), "{marked}");
            assert!(html.contains("Please correct the error below."));
            assert!(
                html.contains("value=\"Bad\""),
                "the form keeps what was typed"
            );
        }
    }
    // Editing hash1 into a duplicate of clear1 is refused too.
    let (status, html) = post(
        &app,
        "/admin/applications/3/",
        "action=save&name=x&client_id=clear1&client_type=confidential&grant_types=authorization-code&redirect_uris=https%3A%2F%2Fa%2Fcb",
    );
    assert_eq!(status, 400);
    assert!(html.contains("already exists"));
    assert_eq!(snapshot(&app), before);
}

#[test]
fn tokens_are_listed_masked_paged_and_revoked_from_the_admin() {
    let app = logged_in();
    let (client_id, secret) = admin_creates_cc_application(&app);
    let mut tokens = Vec::new();
    for _ in 0..55 {
        app.clock.advance(time::Duration::milliseconds(1));
        let (status, token) =
            token_request(&app, &client_id, &secret, "grant_type=client_credentials");
        assert_eq!(status, 200);
        tokens.push(token["access_token"].as_str().unwrap().to_owned());
    }
    let (status, list) = page(&app, "/admin/access-tokens/");
    assert_eq!(status, 200);
    let newest = tokens.last().unwrap();
    assert!(!list.contains(newest.as_str()), "values are masked");
    assert!(list.contains(&format!("…{}", &newest[newest.len() - 4..])));
    assert_eq!(list.matches("name=\"key\"").count(), 50);
    let older = list.find("Older →").map(|_| ());
    assert!(older.is_some());
    let next = {
        let start = list.find("href=\"/admin/access-tokens/?").unwrap() + "href=\"".len();
        let end = list[start..].find('"').unwrap() + start;
        list[start..end].replace("&amp;", "&")
    };
    let (_, second) = page(&app, &next);
    assert_eq!(second.matches("name=\"key\"").count(), 5);
    // Filters by application and user.
    let (_, filtered) = page(
        &app,
        &format!("/admin/access-tokens/?application={client_id}&user=&state=live"),
    );
    assert_eq!(filtered.matches("name=\"key\"").count(), 50);
    let (_, nobody) = page(&app, "/admin/access-tokens/?user=admin");
    assert_eq!(nobody.matches("name=\"key\"").count(), 0);
    let (status, unknown) = page(&app, "/admin/access-tokens/?user=ghost");
    assert_eq!(status, 200);
    assert!(unknown.contains("There is no such user"));
    assert_eq!(page(&app, "/admin/access-tokens/?before=zz").0, 400);

    // Revoke the newest: a confirmation first, then introspection says inactive.
    let key = {
        let start = list.find("name=\"key\" value=\"").unwrap() + "name=\"key\" value=\"".len();
        list[start..start + 64].to_owned()
    };
    let (status, confirm) = post(
        &app,
        "/admin/access-tokens/",
        &format!("action=revoke&key={key}"),
    );
    assert_eq!(status, 200);
    assert!(confirm.contains("Revoke 1 selected access tokens?"));
    let introspection = |token: &str| -> Value {
        let response = app
            .client
            .post("/o/introspect/")
            .header(ContentType::Form)
            .header(basic(&client_id, &secret))
            .body(format!("token={token}"))
            .dispatch();
        serde_json::from_str(&response.into_string().unwrap()).unwrap()
    };
    assert_eq!(introspection(newest)["active"], true);
    let response = app.post_form(
        "/admin/access-tokens/",
        &format!(
            "csrfmiddlewaretoken={}&action=revoke&confirm=yes&key={key}",
            app.csrf()
        ),
    );
    assert_eq!(response.status().code, 303);
    drop(response);
    assert!(
        page(&app, "/admin/access-tokens/")
            .1
            .contains("1 access token revoked.")
    );
    assert_eq!(introspection(newest)["active"], false);
    assert_eq!(introspection(&tokens[0])["active"], true);
    // Its detail page says so; a malformed key is a 404.
    let (_, detail) = page(&app, &format!("/admin/access-tokens/{key}/"));
    assert!(detail.is_empty() || !detail.contains(newest.as_str()));
    assert_eq!(page(&app, "/admin/access-tokens/not-a-key/").0, 404);
    assert_eq!(
        post(
            &app,
            "/admin/access-tokens/",
            "action=revoke&confirm=yes&key=zz"
        )
        .0,
        400
    );
}

#[test]
fn users_manage_only_their_own_applications() {
    let app = signed_in("carol", false, false);
    let form = "name=Carols+app&client_id=&client_type=confidential&grant_types=authorization-code\
        &redirect_uris=https%3A%2F%2Fcarol.example%2Fcb&algorithm=&hash_client_secret=on";
    let (status, html) = post_and_follow(&app, "/o/applications/register/", form);
    assert_eq!(status, 200, "{html}");
    let client_id = shown_client_id(&html);
    let mine = app
        .store
        .read(|tx| tx.application_by_client_id(&client_id))
        .unwrap()
        .unwrap();
    let (_, list) = page(&app, "/o/applications/");
    assert!(list.contains("Carols app") && !list.contains("hash1"));
    assert_eq!(page(&app, &format!("/o/applications/{}/", mine.id)).0, 200);
    // Edit, then delete with the confirmation page first.
    let edited = form.replace("Carols+app", "Carols+renamed");
    let response = app.post_form(
        &format!("/o/applications/{}/update/", mine.id),
        &format!("csrfmiddlewaretoken={}&{edited}", app.csrf()),
    );
    assert_eq!(response.status().code, 303);
    drop(response);
    assert_eq!(
        app.store
            .read(|tx| tx.application(mine.id))
            .unwrap()
            .unwrap()
            .name,
        "Carols renamed"
    );

    // The tutorial's applications belong to admin: carol can neither see nor change them.
    let before = snapshot(&app);
    for path in [
        "/o/applications/3/",
        "/o/applications/3/update/",
        "/o/applications/3/delete/",
    ] {
        assert_eq!(page(&app, path).0, 404, "{path}");
    }
    assert_eq!(post(&app, "/o/applications/3/update/", &edited).0, 404);
    assert_eq!(post(&app, "/o/applications/3/delete/", "").0, 404);
    assert_eq!(snapshot(&app), before);

    assert_eq!(
        page(&app, &format!("/o/applications/{}/delete/", mine.id)).0,
        200
    );
    let count = application_count(&app);
    let response = app.post_form(
        &format!("/o/applications/{}/delete/", mine.id),
        &format!("csrfmiddlewaretoken={}", app.csrf()),
    );
    assert_eq!(response.status().code, 303);
    drop(response);
    assert_eq!(application_count(&app), count - 1);
}

#[test]
fn authorized_tokens_lists_what_the_user_granted_and_revokes_it() {
    let app = logged_in();
    let pairs = tutorial_request();
    let location = approve(&app, &pairs);
    let code = param(&location, "code").unwrap();
    let (status, tokens) = tutorial_exchange(&app, &code);
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(hello(&app, access), 200);
    // Another user revoking "their" access to the same application touches none of admin's.
    add_user(&app, "carol", false, false);
    assert_eq!(app.login("carol", "user-pass-123").status().code, 303);
    let (_, theirs) = page(&app, "/o/authorized_tokens/");
    assert!(theirs.contains("There are no authorized applications"));
    assert_eq!(
        post(&app, "/o/authorized_tokens/3/delete/", "confirm=yes").0,
        303
    );
    assert_eq!(hello(&app, access), 200);
    assert!(app.store.read(|tx| tx.consent(1, 3)).unwrap().is_some());
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let (status, listed) = page(&app, "/o/authorized_tokens/");
    assert_eq!(status, 200);
    assert!(
        listed.contains("/o/authorized_tokens/3/delete/"),
        "{listed}"
    );
    // Asked to confirm, then revoked: the access token, its refresh token and the consent.
    let (status, confirm) = post(&app, "/o/authorized_tokens/3/delete/", "");
    assert_eq!(status, 200);
    assert!(confirm.contains("confirm"));
    let response = app.post_form(
        "/o/authorized_tokens/3/delete/",
        &format!("csrfmiddlewaretoken={}&confirm=yes", app.csrf()),
    );
    assert_eq!(response.status().code, 303);
    drop(response);
    assert_eq!(hello(&app, access), 401);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &app,
        "hash1",
        "hashed",
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    );
    assert_eq!(status, 400);
    assert!(app.store.read(|tx| tx.consent(1, 3)).unwrap().is_none());
    let (_, listed) = page(&app, "/o/authorized_tokens/");
    assert!(listed.contains("There are no authorized applications"));
}

#[test]
fn superusers_create_users_set_passwords_and_deactivate_them() {
    let app = logged_in();
    let (status, html) = post(
        &app,
        "/admin/users/",
        "username=dora&email=dora%40example.com&password=dora-pass-123&password2=dora-pass-12",
    );
    assert_eq!(status, 400);
    assert!(html.contains("The two passwords differ"));
    // Each message stands by its field, marked; the summary is on top.
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"e-password2\""));
    assert!(html.contains("Please correct the error below."));
    let (status, html) = post(
        &app,
        "/admin/users/",
        "username=dora&password=short&password2=short",
    );
    assert_eq!(status, 400);
    assert!(html.contains("too short"));
    assert!(
        html.contains("class=\"field-error\" id=\"e-password\""),
        "{html}"
    );
    let response = app.post_form(
        "/admin/users/",
        &format!(
            "csrfmiddlewaretoken={}&username=dora&email=dora%40example.com&password=dora-pass-123&password2=dora-pass-123",
            app.csrf()
        ),
    );
    assert_eq!(response.status().code, 303);
    let location = header(&response, "Location").unwrap().to_owned();
    drop(response);
    let (status, html) = post(
        &app,
        "/admin/users/",
        "username=dora&password=dora-pass-123&password2=dora-pass-123",
    );
    assert_eq!(status, 400);
    assert!(html.contains("A user with that username already exists."));
    assert!(html.contains("class=\"field-error\" id=\"e-username\""));
    let (_, list) = page(&app, "/admin/users/?q=DORA");
    assert!(list.contains("dora@example.com") && !list.contains("href=\"/admin/users/1/\""));

    // Groups: a name, permissions ticked, and others one per line.
    let response = app.post_form(
        "/admin/groups/",
        &format!(
            "csrfmiddlewaretoken={}&name=auditors&permissions=auth.view_user&other_permissions=7",
            app.csrf()
        ),
    );
    assert_eq!(response.status().code, 303);
    drop(response);
    let group = app
        .store
        .read(|tx| tx.groups())
        .unwrap()
        .into_iter()
        .find(|g| g.name == "auditors")
        .unwrap();
    assert_eq!(group.permissions.len(), 2);
    assert_eq!(post(&app, "/admin/groups/", "name=auditors").0, 400);
    assert_eq!(
        post(&app, "/admin/groups/", "name=bad&permissions=not+a").0,
        400
    );

    // Edit: names, groups, then deactivate; the user can no longer log in.
    let (status, _) = post(
        &app,
        &location,
        &format!(
            "action=save&first_name=Dora&email=dora%40example.com&is_active=on&groups={}",
            group.id
        ),
    );
    assert_eq!(status, 303);
    let dora = app
        .store
        .read(|tx| tx.user_by_username("dora"))
        .unwrap()
        .unwrap();
    assert_eq!(dora.first_name, "Dora");
    assert_eq!(dora.groups, [group.id]);
    assert_eq!(
        post(
            &app,
            &location,
            "action=password&password=dora-new-pass-1&password2=dora-new-pass-1"
        )
        .0,
        303
    );
    assert_eq!(
        post(&app, &location, "action=save&email=dora%40example.com").0,
        303
    );
    assert!(
        !app.store
            .read(|tx| tx.user_by_username("dora"))
            .unwrap()
            .unwrap()
            .is_active
    );
    // Nobody takes away their own access.
    let (status, html) = post(
        &app,
        "/admin/users/1/",
        "action=save&is_active=on&is_staff=on",
    );
    assert_eq!(status, 400);
    assert!(html.contains("your own access"));
}

#[test]
fn deleting_an_application_deletes_its_tokens_and_never_reuses_its_id() {
    let app = logged_in();
    let (client_id, secret) = admin_creates_cc_application(&app);
    let (_, token) = token_request(&app, &client_id, &secret, "grant_type=client_credentials");
    let id = app
        .store
        .read(|tx| tx.application_by_client_id(&client_id))
        .unwrap()
        .unwrap()
        .id;
    let (status, html) = post(&app, &format!("/admin/applications/{id}/"), "action=delete");
    assert_eq!(status, 400);
    assert!(html.contains("confirm"));
    assert_eq!(
        post(
            &app,
            &format!("/admin/applications/{id}/"),
            "action=delete&confirm=yes"
        )
        .0,
        303
    );
    assert_eq!(hello(&app, token["access_token"].as_str().unwrap()), 401);
    assert_eq!(app.store.read(|tx| tx.access_token_count()).unwrap(), 0);
    let (new_id, _) = admin_creates_cc_application(&app);
    let new = app
        .store
        .read(|tx| tx.application_by_client_id(&new_id))
        .unwrap()
        .unwrap();
    assert!(new.id > id);
}

#[test]
fn superusers_manage_signing_keys_from_the_admin() {
    let app = logged_in();
    let (status, listed) = page(&app, "/admin/keys/");
    assert_eq!(status, 200);
    assert!(listed.contains("signing"));
    let before = app.store.read(|tx| tx.signing_keys()).unwrap().len();
    let (status, html) = post_and_follow(&app, "/admin/keys/", "action=generate&algorithm=ES256");
    assert_eq!(status, 200);
    assert!(html.contains("Generated ES256 key"), "{html}");
    assert!(!page(&app, "/admin/keys/").1.contains("Generated ES256 key"));
    assert_eq!(
        app.store.read(|tx| tx.signing_keys()).unwrap().len(),
        before + 1
    );
    let (status, html) = post(&app, "/admin/keys/", "action=rotate&algorithm=ES256");
    assert_eq!(status, 400);
    assert!(html.contains("confirm"));
    assert_eq!(
        post(&app, "/admin/keys/", "action=generate&algorithm=HS256").0,
        400
    );
    let (status, html) = post(
        &app,
        "/admin/keys/",
        "action=rotate&algorithm=RS256&confirm=yes",
    );
    assert_eq!(status, 400);
    assert!(html.contains("oidc_rsa_private_key"));
}

/// The cells of the dashboard's tokens row `path` (stored, live, spent, expired).
fn dashboard_row(html: &str, path: &str) -> Vec<String> {
    let start = html
        .find(&format!("id=\"tokens-{path}\""))
        .unwrap_or_else(|| panic!("no row {path}: {html}"));
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let text = &cell[cell.find('>').unwrap() + 1..];
            text[..text.find("</td>").unwrap()].trim().to_owned()
        })
        .collect()
}

#[test]
fn the_dashboard_counts_used_codes_and_revoked_refresh_tokens_apart_from_live_ones() {
    let app = logged_in();
    let location = approve(&app, &tutorial_request());
    let code = param(&location, "code").unwrap();
    let (_, before) = page(&app, "/admin/");
    assert_eq!(dashboard_row(&before, "grants"), ["1", "1", "0 used", "0"]);
    let (status, tokens) = tutorial_exchange(&app, &code);
    assert_eq!(status, 200);
    let response = app
        .client
        .post("/o/revoke_token/")
        .header(ContentType::Form)
        .header(basic("hash1", "hashed"))
        .body(format!(
            "token={}&token_type_hint=refresh_token",
            tokens["refresh_token"].as_str().unwrap()
        ))
        .dispatch();
    assert_eq!(response.status().code, 200);
    drop(response);
    let (status, after) = page(&app, "/admin/");
    assert_eq!(status, 200);
    // The code is kept (a replay revokes what it issued) but is not live.
    assert_eq!(dashboard_row(&after, "grants"), ["1", "0", "1 used", "0"]);
    assert_eq!(
        dashboard_row(&after, "refresh-tokens"),
        ["1", "0", "1 revoked", "0"]
    );
    // The cleanup task has not run yet in this store: no table, a plain sentence.
    assert!(after.contains("Last cleanup"));
}

#[test]
fn application_lists_sort_page_and_delete_the_selected_rows_after_asking() {
    let app = logged_in();
    let names = |html: &str| link_texts(html, "/admin/applications/");
    let (status, ascending) = page(&app, "/admin/applications/?sort=name");
    assert_eq!(status, 200);
    let mut expected = names(&ascending);
    assert!(expected.len() >= 4, "{ascending}");
    let mut sorted = expected.clone();
    sorted.sort_by_key(|name| name.to_lowercase());
    assert_eq!(expected, sorted);
    assert!(ascending.contains("aria-sort=\"ascending\""));
    // The header now sorts the other way, keeping the filters.
    assert!(ascending.contains("?sort=-name\""), "{ascending}");
    let (_, descending) = page(&app, "/admin/applications/?q=s&sort=-name");
    expected.retain(|name| name.to_lowercase().contains('s'));
    expected.reverse();
    assert_eq!(names(&descending), expected);
    assert!(descending.contains("?q=s&amp;sort=name\""));
    // Bulk delete: asked first (nothing deleted), then done, with a message.
    let count = application_count(&app);
    let (status, confirm) = post(&app, "/admin/applications/delete/", "id=1&id=2");
    assert_eq!(status, 200);
    assert!(
        confirm.contains("Delete 2 selected applications?"),
        "{confirm}"
    );
    assert_eq!(application_count(&app), count);
    let (status, done) = post_and_follow(
        &app,
        "/admin/applications/delete/",
        "id=1&id=2&confirm=yes&action=delete",
    );
    assert_eq!(status, 200);
    assert!(done.contains("2 applications deleted."), "{done}");
    assert_eq!(application_count(&app), count - 2);
    assert_eq!(post(&app, "/admin/applications/delete/", "id=abc").0, 400);
}

/// The user list is searched (every word, in any field), sorted and paged by the store: 130
/// users give two pages; a page past the end shows the last; the counts are of the search.
#[test]
fn the_user_list_searches_sorts_and_pages_many_users() {
    let app = logged_in();
    app.store
        .write_blocking(|tx| {
            for n in 0..130u32 {
                let user = oxidot::store::User {
                    id: tx.next_user_id()?,
                    username: format!("member{n:03}"),
                    password: "!".to_owned(),
                    first_name: if n % 10 == 0 {
                        "Ann".into()
                    } else {
                        "Bo".into()
                    },
                    last_name: if n % 20 == 0 {
                        "Smith".into()
                    } else {
                        "Jones".into()
                    },
                    email: format!("m{n}@example.org"),
                    is_active: true,
                    is_staff: false,
                    is_superuser: false,
                    last_login: None,
                    date_joined: oxidot::store::Timestamp(i64::from(n)),
                    groups: Vec::new(),
                    user_permissions: Vec::new(),
                };
                tx.put_user(&user)?;
            }
            Ok(())
        })
        .unwrap();
    let usernames = |html: &str| link_texts(html, "/admin/users/");
    let total = app.store.read(|tx| tx.user_count()).unwrap();
    let (status, first) = page(&app, "/admin/users/?q=member&sort=-username");
    assert_eq!(status, 200);
    assert!(first.contains(&format!("130 of {total} users.")), "{first}");
    let shown = usernames(&first);
    assert_eq!(shown.len(), 100);
    assert_eq!(
        (shown[0].as_str(), shown[99].as_str()),
        ("member129", "member030")
    );
    assert!(
        first.contains("?q=member&amp;sort=-username&amp;page=2"),
        "{first}"
    );
    let (_, second) = page(&app, "/admin/users/?q=member&sort=-username&page=2");
    let rest = usernames(&second);
    assert_eq!(rest.len(), 30);
    assert_eq!(rest.last().map(String::as_str), Some("member000"));
    let (_, past_the_end) = page(
        &app,
        "/admin/users/?q=member&sort=-username&page=999999999999",
    );
    assert_eq!(usernames(&past_the_end), rest);
    // Every word must be found, each in some field, without case.
    let (_, both) = page(&app, "/admin/users/?q=ANN+smith&sort=joined");
    assert_eq!(
        usernames(&both),
        [
            "member000",
            "member020",
            "member040",
            "member060",
            "member080",
            "member100",
            "member120"
        ]
    );
    assert!(both.contains(&format!("7 of {total} users.")));
    assert!(
        both.contains("value=\"ANN smith\""),
        "the search is shown as typed"
    );
    let (_, none) = page(&app, "/admin/users/?q=ann+zzz");
    assert!(none.contains("No users match."));
    // A sort or page that means nothing is ignored, not an error.
    assert_eq!(page(&app, "/admin/users/?sort=password&page=abc").0, 200);
}

#[test]
fn users_groups_and_tasks_are_deleted_in_bulk_with_what_belongs_to_them() {
    let app = logged_in();
    add_user(&app, "carol", false, false);
    assert_eq!(app.login("carol", "user-pass-123").status().code, 303);
    let form = "name=Carols+app&client_id=carols-app&client_type=public\
        &grant_types=authorization-code&redirect_uris=https%3A%2F%2Fcarol.example%2Fcb&algorithm=";
    assert_eq!(post(&app, "/o/applications/register/", form).0, 303);
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let carol = app.store.user_by_username("carol").unwrap().unwrap();
    // Asked first; nothing changes until confirmed.
    let (status, confirm) = post(&app, "/admin/users/delete/", &format!("id={}", carol.id));
    assert_eq!(status, 200);
    assert!(confirm.contains("Delete 1 selected user?"), "{confirm}");
    assert!(app.store.user_by_username("carol").unwrap().is_some());
    let (status, done) = post_and_follow(
        &app,
        "/admin/users/delete/",
        &format!("id={}&confirm=yes&action=delete", carol.id),
    );
    assert_eq!(status, 200);
    assert!(done.contains("1 user deleted."), "{done}");
    assert!(app.store.user_by_username("carol").unwrap().is_none());
    assert!(
        app.store
            .read(|tx| tx.application_by_client_id("carols-app"))
            .unwrap()
            .is_none(),
        "the applications she owned go with her"
    );
    // Her id is never given again.
    add_user(&app, "dave", false, false);
    assert!(app.store.user_by_username("dave").unwrap().unwrap().id > carol.id);
    // Not oneself.
    let admin = app.store.user_by_username("admin").unwrap().unwrap();
    assert_eq!(
        post(&app, "/admin/users/delete/", &format!("id={}", admin.id)).0,
        400
    );

    // A group: its members stay, without it.
    let member = app.store.user_by_username("oauthuser").unwrap().unwrap();
    let group = member.groups[0];
    let (status, done) = post_and_follow(
        &app,
        "/admin/groups/delete/",
        &format!("id={group}&confirm=yes&action=delete"),
    );
    assert_eq!(status, 200);
    assert!(done.contains("1 group deleted."), "{done}");
    let member = app.store.user_by_username("oauthuser").unwrap().unwrap();
    assert!(!member.groups.contains(&group));
    assert!(app.store.read(|tx| tx.group(group)).unwrap().is_none());

    // Periodic tasks; "delete" is not a name a task may take.
    let add = "name={name}&task=debug_task&every=1&period=hours&enabled=on";
    assert_eq!(
        post(
            &app,
            "/admin/periodic-tasks/",
            &add.replace("{name}", "delete")
        )
        .0,
        400
    );
    assert_eq!(
        post(
            &app,
            "/admin/periodic-tasks/",
            &add.replace("{name}", "hourly")
        )
        .0,
        303
    );
    let (_, list) = page(&app, "/admin/periodic-tasks/");
    assert!(list.contains("form=\"bulk-delete\""));
    let (status, done) = post_and_follow(
        &app,
        "/admin/periodic-tasks/delete/",
        "name=hourly&confirm=yes&action=delete",
    );
    assert_eq!(status, 200);
    assert!(done.contains("1 periodic task deleted."), "{done}");
    assert!(
        app.store
            .read(|tx| tx.periodic_task("hourly"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_application_list_names_each_owner() {
    let app = signed_in("root", true, true);
    let (status, html) = page(&app, "/admin/applications/");
    assert_eq!(status, 200);
    // The demo's four applications belong to admin (user 1); only owners are looked up.
    assert_eq!(html.matches("<td>admin</td>").count(), 4, "{html}");
    assert!(!html.contains("<td>root</td>"));
}
