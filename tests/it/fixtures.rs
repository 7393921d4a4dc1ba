//! `loaddata` / `dumpdata`: the shipped fixtures, a real DOT 3.4.1 dump, other Django hash
//! formats, bad files (nothing loaded, a message naming the file and record), reloading and
//! round trips.

use std::path::PathBuf;

use argon2::password_hash::PasswordHasher as _;
use base64::Engine as _;
use oxidot::fixtures::{self, FixtureError, FixtureFile, Format};
use oxidot::store::{Algorithm, ClientType, GrantType};

use crate::support::App;

pub fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dot-dumpdata")
}

pub fn sample(name: &str) -> FixtureFile {
    let path = sample_dir().join(name);
    FixtureFile {
        name: name.to_owned(),
        contents: std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display())),
    }
}

fn file(name: &str, contents: &str) -> FixtureFile {
    FixtureFile {
        name: name.to_owned(),
        contents: contents.to_owned(),
    }
}

fn load(app: &App, files: &[FixtureFile]) -> Result<fixtures::LoadReport, FixtureError> {
    let sources: Vec<fixtures::Source> = files.iter().cloned().map(Into::into).collect();
    fixtures::load_blocking(&app.store, &sources)
}

fn dump(app: &App, format: Format) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fixtures::dump(&app.store, &fixtures::MODELS, format))
        .unwrap()
}

#[test]
fn the_shipped_fixtures_hold_the_tutorial_data() {
    let app = App::demo();
    let (users, groups, applications) = app
        .store
        .read(|tx| Ok((tx.users()?, tx.groups()?, tx.applications()?)))
        .unwrap();
    let admin = users.iter().find(|u| u.username == "admin").unwrap();
    assert!(admin.is_superuser && admin.is_staff && admin.is_active);
    assert_eq!(
        (admin.first_name.as_str(), admin.last_name.as_str()),
        ("Super", "User")
    );
    assert_eq!(admin.email, "admin@example.com");
    assert!(admin.password.starts_with("pbkdf2_sha256$"));
    let oauthuser = users.iter().find(|u| u.username == "oauthuser").unwrap();
    assert!(oauthuser.is_staff && !oauthuser.is_superuser);
    assert_eq!(oauthuser.email, "oauth@example.com");
    let mut group_names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
    group_names.sort_unstable();
    assert_eq!(group_names, ["admin", "oauth-admin"]);

    let postman = [
        "https://www.getpostman.com/oauth2/callback",
        "https://oauth.pstmn.io/v1/callback",
    ];
    let certification = "https://www.certification.openid.net/test/a/django-oauth-toolkit/callback";
    for (client_id, name, algorithm, secret) in [
        ("hash1", "hashed secret 1", Algorithm::RS256, "hashed"),
        ("hash2", "hashed secret 2", Algorithm::RS256, "hashed"),
        ("clear1", "cleartext secret 1", Algorithm::HS256, "secret"),
        ("clear2", "cleartext secret 2", Algorithm::HS256, "secret"),
    ] {
        let app = applications
            .iter()
            .find(|a| a.client_id == client_id)
            .unwrap();
        assert_eq!(app.name, name);
        assert_eq!(app.algorithm, algorithm);
        assert_eq!(app.client_type, ClientType::Confidential);
        assert_eq!(app.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(app.user, Some(admin.id));
        for uri in postman {
            assert!(
                app.redirect_uris.iter().any(|u| u == uri),
                "{client_id} {uri}"
            );
        }
        let hashed = algorithm == Algorithm::RS256;
        assert_eq!(app.hash_client_secret, hashed);
        if hashed {
            assert!(oxidot::passwords::verify(secret, &app.client_secret).matches);
            assert!(app.redirect_uris.iter().any(|u| u == certification));
        } else {
            assert_eq!(app.client_secret, secret);
        }
    }
    let hash1 = applications
        .iter()
        .find(|a| a.client_id == "hash1")
        .unwrap();
    assert!(
        hash1
            .redirect_uris
            .iter()
            .any(|u| u == "http://localhost:5432/oauth2client")
    );
}

#[test]
fn the_real_dot_dump_loads_in_yaml_and_json_and_its_users_log_in() {
    let yaml = App::with(|_| {}, Vec::new());
    let report = load(&yaml, &[sample("dot-3.4.1-dumpdata.yaml")]).unwrap();
    assert_eq!(
        report.objects,
        3 + 9 + 2 + 1,
        "users, applications and tokens"
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let json = App::with(|_| {}, Vec::new());
    load(&json, &[sample("dot-3.4.1-dumpdata.json")]).unwrap();
    // Django's JSON keeps milliseconds where its YAML keeps microseconds; all else is equal.
    let without_times = |text: String| -> Vec<String> {
        text.lines()
            .filter(|line| !line.contains("created:") && !line.contains("updated:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        without_times(dump(&yaml, Format::Yaml)),
        without_times(dump(&json, Format::Yaml))
    );

    let apps = yaml.store.read(|tx| tx.applications()).unwrap();
    let hash1 = apps.iter().find(|a| a.client_id == "hash1").unwrap();
    assert_eq!(hash1.redirect_uris.len(), 4, "CRLF-separated URIs split");
    assert!(oxidot::passwords::verify("hashed", &hash1.client_secret).matches);
    let public = apps.iter().find(|a| a.client_id == "public-pkce").unwrap();
    assert_eq!(public.client_type, ClientType::Public);
    assert_eq!(public.allowed_origins, vec!["http://localhost:8765"]);
    let cc = apps.iter().find(|a| a.client_id == "cc-client").unwrap();
    assert_eq!(cc.grant_types, vec![GrantType::ClientCredentials]);
    assert_eq!(cc.algorithm, Algorithm::None);
    assert!(cc.redirect_uris.is_empty());

    // Django pbkdf2_sha256 with 320000 and 1000000 iterations.
    assert_eq!(yaml.login("admin", "admin123").status().code, 303);
    assert_eq!(json.login("alice", "alice-pass-123").status().code, 303);
    assert_eq!(json.signed_in_as().as_deref(), Some("alice"));
}

#[test]
fn django_pbkdf2_sha1_and_argon2_hashes_log_in_and_plain_secrets_get_hashed() {
    let mut sha1_key = [0u8; 20];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"sha1-pass-123", b"sha1salt", 10_000, &mut sha1_key);
    let sha1 = format!(
        "pbkdf2_sha1$10000$sha1salt${}",
        base64::engine::general_purpose::STANDARD.encode(sha1_key)
    );
    // Django's Argon2PasswordHasher: "argon2" + the PHC string, here with Django's old
    // parameters (argon2id, m=102400, t=2, p=8).
    let phc = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(102_400, 2, 8, None).unwrap(),
    )
    .hash_password(b"argon-pass-123")
    .unwrap();
    let django_argon2 = format!("argon2{phc}");
    let dump = format!(
        r#"[
  {{"model": "auth.user", "pk": 7, "fields": {{"password": "{sha1}", "username": "old",
    "is_active": true, "date_joined": "2015-03-01T10:00:00.123Z", "groups": [], "user_permissions": []}}}},
  {{"model": "auth.user", "pk": 8, "fields": {{"password": "{django_argon2}", "username": "newer",
    "is_active": true, "date_joined": "2020-03-01T10:00:00Z", "last_login": null}}}},
  {{"model": "oauth2_provider.application", "pk": 3, "fields": {{"client_id": "plain",
    "user": 8, "client_type": "confidential", "authorization_grant_type": "client-credentials",
    "client_secret": "plain-secret-value", "hash_client_secret": true, "name": "Plain"}}}}
]"#
    );
    let app = App::with(|_| {}, Vec::new());
    load(&app, &[file("hashes.json", &dump)]).unwrap();
    assert_eq!(app.login("old", "sha1-pass-123").status().code, 303);
    let app2 = App::with(|_| {}, vec![file("hashes.json", &dump)]);
    assert_eq!(app2.login("newer", "argon-pass-123").status().code, 303);
    let upgraded = app2.store.user_by_username("newer").unwrap().unwrap();
    assert!(
        upgraded
            .password
            .starts_with("argon2$argon2id$v=19$m=9216,t=4,p=1$")
    );

    let plain = app
        .store
        .read(|tx| tx.application_by_client_id("plain"))
        .unwrap()
        .unwrap();
    assert!(plain.client_secret.starts_with("argon2$argon2id$"));
    assert!(oxidot::passwords::verify("plain-secret-value", &plain.client_secret).matches);
}

#[test]
fn unsupported_hashes_load_with_a_warning_and_cannot_log_in() {
    let dump = r#"
- model: auth.user
  pk: 5
  fields:
    username: legacy
    password: bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012
    is_active: true
    some_custom_field: 42
"#;
    let app = App::with(|_| {}, Vec::new());
    let report = load(&app, &[file("legacy.yaml", dump)]).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("bcrypt_sha256") && w.contains("oxidot changepassword legacy"))
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("legacy.yaml: record 1") && w.contains("some_custom_field"))
    );
    assert_eq!(app.login("legacy", "anything-at-all").status().code, 400);
}

#[test]
fn bad_files_load_nothing_and_name_the_file_and_record() {
    let good_app = r#"
- model: oauth2_provider.application
  pk: 40
  fields: {client_id: fresh, user: 1, client_type: public, authorization_grant_type: authorization-code, name: Fresh}
"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("syntax.yaml", "- model: auth.user\n  pk: [1\n".to_owned(), "syntax.yaml: cannot parse as YAML"),
        ("syntax.json", "[{\"model\": \"auth.user\",".to_owned(), "syntax.json: cannot parse as JSON"),
        (
            "unknown.yaml",
            format!("{good_app}- model: sessions.session\n  pk: 1\n  fields: {{codename: x}}\n"),
            "unknown.yaml: record 2 (sessions.session pk=1): unknown model",
        ),
        (
            "dangling.yaml",
            format!("{good_app}- model: oauth2_provider.application\n  pk: 41\n  fields: {{client_id: orphan, user: 99, client_type: public, authorization_grant_type: implicit}}\n"),
            "dangling.yaml: record 2 (oauth2_provider.application pk=41): refers to user",
        ),
        (
            "dangling-group.yaml",
            "- model: auth.user\n  pk: 30\n  fields: {username: grouped, password: '', groups: [77]}\n".to_owned(),
            "dangling-group.yaml: record 1 (auth.user pk=30): refers to group",
        ),
        (
            "duplicate.yaml",
            format!("{good_app}- model: oauth2_provider.application\n  pk: 42\n  fields: {{client_id: hash1, user: 1, client_type: public, authorization_grant_type: implicit}}\n"),
            "duplicate.yaml: record 2 (oauth2_provider.application pk=42): an application with client_id \"hash1\" already exists",
        ),
        (
            "duplicate-in-file.yaml",
            format!("{good_app}- model: oauth2_provider.application\n  pk: 43\n  fields: {{client_id: fresh, client_type: public, authorization_grant_type: implicit}}\n"),
            "duplicate-in-file.yaml: record 2 (oauth2_provider.application pk=43)",
        ),
        (
            "badtype.yaml",
            "- model: auth.user\n  pk: 31\n  fields: {username: typed, is_staff: 'yes'}\n".to_owned(),
            "badtype.yaml: record 1 (auth.user pk=31): field \"is_staff\"",
        ),
        (
            "badgrant.yaml",
            "- model: oauth2_provider.application\n  pk: 44\n  fields: {client_id: g, client_type: public, authorization_grant_type: magic}\n".to_owned(),
            "badgrant.yaml: record 1 (oauth2_provider.application pk=44): field \"authorization_grant_type\"",
        ),
        (
            "badpk.yaml",
            "- model: auth.group\n  pk: -3\n  fields: {name: negative}\n".to_owned(),
            "badpk.yaml: record 1 (auth.group pk=-3): pk must be a positive integer",
        ),
    ];
    let app = App::demo();
    let before = dump(&app, Format::Json);
    for (name, contents, expected) in cases {
        let error = load(&app, &[file("ok.yaml", good_app), file(name, &contents)])
            .expect_err(name)
            .to_string();
        assert!(error.contains(expected), "{name}: {error}");
        assert_eq!(dump(&app, Format::Json), before, "{name} changed the store");
    }
}

#[test]
fn loading_again_updates_by_pk() {
    let app = App::demo();
    let users_before = app.store.read(|tx| tx.user_count()).unwrap();
    let files = oxidot::server::demo_fixture_files();
    load(&app, &files).unwrap();
    assert_eq!(app.store.read(|tx| tx.user_count()).unwrap(), users_before);

    let changed = r#"
- model: auth.user
  pk: 2
  fields: {username: oauthuser2, password: '', email: changed@example.com, is_active: true}
- model: oauth2_provider.application
  pk: 3
  fields: {client_id: hash1-renamed, user: 1, client_type: confidential,
           authorization_grant_type: authorization-code, client_secret: '', name: renamed}
"#;
    load(&app, &[file("changed.yaml", changed)]).unwrap();
    let user = app.store.user(2).unwrap().unwrap();
    assert_eq!(user.username, "oauthuser2");
    assert_eq!(user.email, "changed@example.com");
    assert!(app.store.user_by_username("oauthuser").unwrap().is_none());
    let (old, new) = app
        .store
        .read(|tx| {
            Ok((
                tx.application_by_client_id("hash1")?,
                tx.application_by_client_id("hash1-renamed")?,
            ))
        })
        .unwrap();
    assert!(old.is_none(), "the old client_id is released");
    assert_eq!(new.unwrap().id, 3);
    assert_eq!(app.store.read(|tx| tx.applications()).unwrap().len(), 4);
}

#[test]
fn an_application_loaded_without_a_pk_never_takes_a_deleted_applications_id() {
    let app = App::demo();
    let highest = app
        .store
        .read(|tx| tx.applications())
        .unwrap()
        .iter()
        .map(|application| application.id)
        .max()
        .unwrap();
    assert!(
        app.store
            .write_blocking(move |tx| tx.delete_application(highest))
            .unwrap()
    );
    let no_pk = r#"
- model: oauth2_provider.application
  fields: {client_id: loaded-without-pk, client_type: public,
           authorization_grant_type: authorization-code, redirect_uris: 'https://rp.example/cb',
           client_secret: '', name: no pk}
"#;
    load(&app, &[file("no-pk.yaml", no_pk)]).unwrap();
    let loaded = app
        .store
        .read(|tx| tx.application_by_client_id("loaded-without-pk"))
        .unwrap()
        .unwrap();
    assert!(
        loaded.id > highest,
        "took id {} although {highest} was used (and deleted) before",
        loaded.id
    );
}

#[test]
fn dumpdata_and_loaddata_round_trip_in_both_formats() {
    let source = App::with(|_| {}, vec![sample("dot-3.4.1-dumpdata.yaml")]);
    for format in [Format::Yaml, Format::Json] {
        let text = dump(&source, format);
        let name = match format {
            Format::Yaml => "dump.yaml",
            Format::Json => "dump.json",
        };
        let copy = App::with(|_| {}, vec![file(name, &text)]);
        assert_eq!(dump(&copy, format), text, "{name}");
    }
    // Django's shape: model, pk, fields, with Django's field names.
    let json: serde_json::Value = serde_json::from_str(&dump(&source, Format::Json)).unwrap();
    let first_app = json
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["model"] == "oauth2_provider.application")
        .unwrap();
    assert_eq!(
        first_app["fields"]["authorization_grant_type"],
        "authorization-code"
    );
    assert!(
        first_app["fields"]["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("pbkdf2_sha256$")
    );
}

#[test]
fn tokens_issued_by_dot_keep_working_after_the_move() {
    use base64::Engine as _;
    use rocket::http::{ContentType, Header};
    // The dump was taken at 2026-11-28 22:52 UTC; its access tokens live ten hours.
    let app = App::at(
        time::macros::datetime!(2026-11-28 23:00 UTC),
        |_| {},
        vec![sample("dot-3.4.1-dumpdata.yaml")],
    );
    let hello = |token: &str| {
        app.client
            .get("/api/hello")
            .header(Header::new("Authorization", format!("Bearer {token}")))
            .dispatch()
            .status()
            .code
    };
    // Client credentials (cc-client) and password (alice via password-client) tokens.
    assert_eq!(hello("oS0VwUI2IIpTs16mTYDLXHbMOjyOZw"), 200);
    assert_eq!(hello("ShbiTzXfeQNASljwSjWnvIXgxKp1As"), 200);
    let key = oxidot::store::SecretKey::of("ShbiTzXfeQNASljwSjWnvIXgxKp1As");
    let access = app.store.read(|tx| tx.access_token(&key)).unwrap().unwrap();
    assert_eq!(access.scope, "openid read");
    assert_eq!(access.user, Some(3));
    assert!(
        access.refresh_token.is_some(),
        "paired with its refresh token"
    );

    // DOT's refresh token refreshes, in its family, and the old access token goes.
    let basic =
        base64::engine::general_purpose::STANDARD.encode("password-client:password-client-secret");
    let response = app
        .client
        .post("/o/token/")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Basic {basic}")))
        .body("grant_type=refresh_token&refresh_token=fpEjx5LMSle57388xsks2YgrgNsxmC")
        .dispatch();
    assert_eq!(response.status().code, 200);
    let body: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert_eq!(body["scope"], "openid read");
    assert_eq!(hello(body["access_token"].as_str().unwrap()), 200);
    assert_eq!(hello("ShbiTzXfeQNASljwSjWnvIXgxKp1As"), 401);

    // The dump's tokens expire when DOT said they would.
    app.clock.advance(time::Duration::hours(10));
    assert_eq!(hello("oS0VwUI2IIpTs16mTYDLXHbMOjyOZw"), 401);
}

#[test]
fn a_token_whose_checksum_does_not_match_is_refused() {
    let app = App::with(|_| {}, Vec::new());
    let bad = r#"
- model: oauth2_provider.application
  pk: 1
  fields: {client_id: c, client_type: confidential, authorization_grant_type: client-credentials, client_secret: s}
- model: oauth2_provider.accesstoken
  pk: 1
  fields: {token: abc, token_checksum: "0000000000000000000000000000000000000000000000000000000000000000",
           application: 1, expires: 2030-01-01 00:00:00+00:00, scope: read}
"#;
    let error = load(&app, &[file("bad-token.yaml", bad)])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("bad-token.yaml: record 2 (oauth2_provider.accesstoken pk=1)"),
        "{error}"
    );
    assert!(error.contains("token_checksum"), "{error}");
    assert!(app.store.read(|tx| tx.applications()).unwrap().is_empty());
}

#[test]
fn dot_id_token_records_are_kept_by_jti() {
    let dump = r#"
- model: oauth2_provider.idtoken
  pk: 4
  fields:
    user: 1
    application: 3
    jti: 0b7c9a38-3f3e-4c9b-9c8e-2f54b1f0a001
    expires: 2030-01-01 00:00:00+00:00
    scope: openid profile
    created: 2029-12-31 14:00:00+00:00
    updated: 2029-12-31 14:00:00+00:00
"#;
    let app = App::demo();
    let report = load(&app, &[file("ids.yaml", dump)]).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let key = oxidot::store::SecretKey::of("0b7c9a38-3f3e-4c9b-9c8e-2f54b1f0a001");
    let stored = app.store.read(|tx| tx.id_token(&key)).unwrap().unwrap();
    assert_eq!(stored.user, Some(1));
    assert_eq!(stored.application, 3);
    assert_eq!(stored.scope, "openid profile");
    // A dangling application is refused like any other reference.
    let bad = dump.replace("application: 3", "application: 99");
    let error = load(&app, &[file("bad-ids.yaml", &bad)])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("bad-ids.yaml: record 1 (oauth2_provider.idtoken pk=4)"),
        "{error}"
    );
}

/// A DOT dump (JSON) of `tokens` access tokens for the sample's user and application, each
/// with its refresh token; refresh tokens come first when `refresh_first` (DOT dumps either
/// model first, depending on its version).
pub fn token_dump(tokens: usize, refresh_first: bool) -> String {
    use sha2::Digest as _;
    let hex = |text: &str| {
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let access: Vec<String> = (1..=tokens)
        .map(|n| {
            let token = format!("bulk-access-{n:08}");
            format!(
                r#"{{"model": "oauth2_provider.accesstoken", "pk": {}, "fields": {{"user": 3, "token": "{token}", "token_checksum": "{}", "application": 3, "expires": "2099-01-01T00:00:00Z", "scope": "read", "created": "2026-11-01T00:00:00Z"}}}}"#,
                1000 + n,
                hex(&token)
            )
        })
        .collect();
    let refresh: Vec<String> = (1..=tokens)
        .map(|n| {
            let token = format!("bulk-refresh-{n:08}");
            format!(
                r#"{{"model": "oauth2_provider.refreshtoken", "pk": {}, "fields": {{"user": 3, "token": "{token}", "token_checksum": "{}", "application": 3, "access_token": {}, "created": "2026-11-01T00:00:00Z", "revoked": null, "token_family": "{:032x}"}}}}"#,
                1000 + n,
                hex(&token),
                1000 + n,
                n
            )
        })
        .collect();
    let records = if refresh_first {
        [refresh, access].concat()
    } else {
        [access, refresh].concat()
    };
    format!("[{}]", records.join(",\n"))
}

#[test]
fn a_large_dump_streams_in_chunks_and_pairs_tokens_across_them() {
    for refresh_first in [false, true] {
        let app = App::with(|_| {}, vec![sample("dot-3.4.1-dumpdata.yaml")]);
        // 2,500 pairs: three chunks of token records, pairs split across chunks.
        let report = load(&app, &[file("bulk.json", &token_dump(2500, refresh_first))]).unwrap();
        assert_eq!(report.objects, 5000);
        let count = |table| app.store.read(|tx| tx.token_count(table)).unwrap();
        use oxidot::store::TokenTable;
        assert_eq!(count(TokenTable::AccessTokens), 2500 + 2, "{refresh_first}");
        assert_eq!(count(TokenTable::RefreshTokens), 2500 + 1);
        // The last pair works as a pair: refreshing revokes the paired access token.
        let response = app
            .client
            .post("/o/token/")
            .header(rocket::http::ContentType::Form)
            .header(crate::oauth::basic("hash1", "hashed"))
            .body("grant_type=refresh_token&refresh_token=bulk-refresh-00002500")
            .dispatch();
        assert_eq!(response.status().code, 200, "{refresh_first}");
        drop(response);
        assert_eq!(crate::flow::hello(&app, "bulk-access-00002500"), 401);
        assert_eq!(crate::flow::hello(&app, "bulk-access-00002499"), 200);
    }
}

#[test]
fn a_load_killed_midway_leaves_all_or_nothing() {
    use crate::support::oxidot;
    let template = tempfile::tempdir().unwrap();
    std::fs::write(
        template.path().join("sample.yaml"),
        std::fs::read(sample_dir().join("dot-3.4.1-dumpdata.yaml")).unwrap(),
    )
    .unwrap();
    assert!(
        oxidot(template.path())
            .args(["loaddata", "sample.yaml"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    // A new user first (written, journaled, in the load's first transaction), then tokens.
    let dump = token_dump(10_000, false).replacen(
        '[',
        r#"[{"model": "auth.user", "pk": 77, "fields": {"username": "bulk-user", "password": ""}},"#,
        1,
    );
    std::fs::write(template.path().join("bulk.json"), dump).unwrap();
    let stored = |dir: &std::path::Path| {
        let (store, _) = oxidot::store::Store::open(&dir.join("oxidot.redb"), 1 << 20).unwrap();
        let (count, user) = store
            .read(|tx| {
                Ok((
                    tx.token_count(oxidot::store::TokenTable::AccessTokens)?,
                    tx.user(77)?.is_some(),
                ))
            })
            .unwrap();
        store.close().unwrap();
        // All or nothing: the user comes with the tokens.
        assert_eq!(user, count > 2, "{count} tokens, user loaded: {user}");
        count
    };
    let before = stored(template.path());
    let copy = || {
        let dir = tempfile::tempdir().unwrap();
        for name in ["oxidot.redb", "bulk.json"] {
            std::fs::copy(template.path().join(name), dir.path().join(name)).unwrap();
        }
        dir
    };
    // How long a whole load takes here, then loads killed (SIGKILL) at half and at two
    // thirds of that: each leaves all of it or none, and a sound file.
    let whole = copy();
    let started = std::time::Instant::now();
    assert!(
        oxidot(whole.path())
            .args(["loaddata", "bulk.json"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    let duration = started.elapsed();
    assert_eq!(stored(whole.path()), before + 10_000);
    assert_eq!(before, 2);
    for fraction in [3, 2] {
        let dir = copy();
        let mut child = oxidot(dir.path())
            .args(["loaddata", "bulk.json"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(duration * (fraction - 1) / fraction);
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let after = stored(dir.path());
        assert!(
            after == before || (finished && after == before + 10_000),
            "{before} before, {after} after (finished: {finished})"
        );
        let check = oxidot(dir.path()).args(["check", "--db"]).output().unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
