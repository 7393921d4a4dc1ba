//! `clear_expired` (DOT's cleartokens) on an injected clock: each category at its boundary,
//! nothing live deleted, and `oxidot cleartokens` against a running and a stopped server.

use std::sync::atomic::AtomicBool;

use base64::Engine as _;
use rocket::http::{ContentType, Header};
use serde_json::Value;

use crate::flow::*;
use crate::support::{App, Server};
use oxidot::cleanup::{CleanupReport, clear_expired};
use oxidot::config::OAuth2Provider;

fn provider(adjust: impl Fn(&mut OAuth2Provider)) -> OAuth2Provider {
    let mut provider = OAuth2Provider::default();
    adjust(&mut provider);
    provider
}

fn app_with(adjust: impl Fn(&mut OAuth2Provider) + Clone) -> (App, OAuth2Provider) {
    let settings_adjust = adjust.clone();
    let app = App::with(
        move |settings| settings_adjust(&mut settings.oauth2_provider),
        oxidot::server::demo_fixture_files(),
    );
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    (app, provider(adjust))
}

fn cleanup(app: &App, provider: &OAuth2Provider) -> CleanupReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime
        .block_on(clear_expired(
            &app.store,
            provider,
            &app.clock,
            &AtomicBool::new(false),
        ))
        .unwrap()
}

fn advance(app: &App, seconds: i64, micros: i64) {
    app.clock
        .advance(time::Duration::seconds(seconds) + time::Duration::microseconds(micros));
}

fn refresh(app: &App, token: &str) -> (u16, Value) {
    let encoded = base64::engine::general_purpose::STANDARD.encode("hash1:hashed");
    let response = app
        .client
        .post("/o/token/")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Basic {encoded}")))
        .body(format!("grant_type=refresh_token&refresh_token={token}"))
        .dispatch();
    let status = response.status().code;
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

/// `/api/hello` with a token response's access token.
fn hello_with(app: &App, tokens: &Value) -> u16 {
    hello(app, tokens["access_token"].as_str().unwrap())
}

fn tokens(app: &App) -> Value {
    let code = param(&approve(app, &tutorial_request()), "code").unwrap();
    let (status, body) = tutorial_exchange(app, &code);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn nothing_live_is_deleted() {
    let (app, provider) = app_with(|_| {});
    let body = tokens(&app);
    let pending_code = approve(&app, &tutorial_request());
    let report = cleanup(&app, &provider);
    assert_eq!(report.total(), 0, "{report:?}");
    assert_eq!(hello_with(&app, &body), 200);
    let (status, _) = tutorial_exchange(&app, &param(&pending_code, "code").unwrap());
    assert_eq!(status, 200, "the unexpired code still works");
    assert_eq!(app.session_count(), 1);
}

#[test]
fn expired_access_tokens_go_at_their_expiry_and_their_refresh_token_keeps_working() {
    let (app, provider) = app_with(|_| {});
    let body = tokens(&app);
    // Expires exactly now: DOT deletes what expired strictly before now.
    advance(&app, 36_000, 0);
    assert_eq!(cleanup(&app, &provider).access_tokens, 0);
    advance(&app, 0, 1);
    let report = cleanup(&app, &provider);
    assert_eq!(report.access_tokens, 1, "{report:?}");
    assert_eq!(app.store.read(|tx| tx.access_token_count()).unwrap(), 0);
    assert_eq!(hello_with(&app, &body), 401);
    // The refresh token lives on (DOT deletes neither, oxidot keeps the one that works).
    let (status, renewed) = refresh(&app, body["refresh_token"].as_str().unwrap());
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(hello_with(&app, &renewed), 200);
}

#[test]
fn codes_id_tokens_device_grants_and_sessions_go_at_their_expiry() {
    let (app, provider) = app_with(|_| {});
    let _pending = approve(&app, &tutorial_request());
    let openid = with(tutorial_request(), "scope", Some("openid"));
    let openid = with(openid, "nonce", Some("n"));
    let code = param(&approve(&app, &openid), "code").unwrap();
    assert_eq!(tutorial_exchange(&app, &code).0, 200);
    // Codes live 60 s (the used one is kept until then for replay detection).
    advance(&app, 60, 0);
    assert_eq!(cleanup(&app, &provider).grants, 0);
    advance(&app, 0, 1);
    assert_eq!(cleanup(&app, &provider).grants, 2);
    // ID tokens and access tokens 36,000 s.
    advance(&app, 36_000, 0);
    let report = cleanup(&app, &provider);
    assert_eq!(
        (report.id_tokens, report.access_tokens),
        (1, 1),
        "{report:?}"
    );
    // Sessions two weeks.
    advance(&app, 14 * 86_400, 0);
    let report = cleanup(&app, &provider);
    assert_eq!(report.sessions, 1, "{report:?}");
    assert_eq!(app.session_count(), 0);
}

#[test]
fn device_grants_go_at_their_expiry() {
    let (app, provider) = app_with(|_| {});
    app.store
        .write_blocking(|tx| {
            let mut application = tx.application(3)?.unwrap();
            application
                .grant_types
                .push(oxidot::store::GrantType::DeviceCode);
            tx.put_application(&application)
        })
        .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode("hash1:hashed");
    let response = app
        .client
        .post("/o/device-authorization/")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Basic {encoded}")))
        .body("scope=read")
        .dispatch();
    assert_eq!(response.status().code, 200);
    advance(&app, 601, 0);
    assert_eq!(cleanup(&app, &provider).device_grants, 1);
}

/// How long a rotated refresh token is kept.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Forever,
    /// This many seconds after its revocation, then deleted as revoked.
    AfterRevocation(i64),
    /// Until it expires (this many seconds after its creation), then deleted as expired.
    UntilExpiry(i64),
}

/// Revoked refresh tokens: (reuse protection, grace period, refresh expiry) → how long a
/// rotated token is kept.
#[test]
fn revoked_refresh_tokens_are_kept_as_long_as_they_matter() {
    let cases: [(bool, u64, Option<u64>, Kept); 4] = [
        // Reuse protection needs them while refresh tokens live; forever if they never expire.
        (true, 0, None, Kept::Forever),
        (true, 0, Some(1000), Kept::UntilExpiry(1000)),
        // Without it, only the grace period.
        (false, 0, None, Kept::AfterRevocation(0)),
        (false, 30, None, Kept::AfterRevocation(30)),
    ];
    for (protect, grace, expire, kept) in cases {
        let (app, provider) = app_with(move |p| {
            p.refresh_token_reuse_protection = protect;
            p.refresh_token_grace_period_seconds = grace;
            p.refresh_token_expire_seconds = expire;
        });
        let body = tokens(&app);
        let (status, _) = refresh(&app, body["refresh_token"].as_str().unwrap());
        assert_eq!(status, 200);
        let case = format!("protect={protect} grace={grace} expire={expire:?}");
        match kept {
            Kept::Forever => {
                advance(&app, 10 * 365 * 86_400, 0);
                assert_eq!(cleanup(&app, &provider).revoked_refresh_tokens, 0, "{case}");
            }
            Kept::AfterRevocation(seconds) => {
                advance(&app, seconds, 0);
                assert_eq!(cleanup(&app, &provider).revoked_refresh_tokens, 0, "{case}");
                advance(&app, 0, 1);
                assert_eq!(cleanup(&app, &provider).revoked_refresh_tokens, 1, "{case}");
            }
            Kept::UntilExpiry(seconds) => {
                // Issued, rotated and re-issued at the same instant: all expire together.
                advance(&app, seconds, -1);
                let report = cleanup(&app, &provider);
                assert_eq!(
                    (report.revoked_refresh_tokens, report.expired_refresh_tokens),
                    (0, Some(0)),
                    "{case}"
                );
                advance(&app, 0, 1);
                let report = cleanup(&app, &provider);
                assert_eq!(
                    (report.revoked_refresh_tokens, report.expired_refresh_tokens),
                    (0, Some(2)),
                    "{case}"
                );
            }
        }
        if !matches!(kept, Kept::Forever) {
            // Gone: presenting it now is simply invalid.
            let (status, error) = refresh(&app, body["refresh_token"].as_str().unwrap());
            assert_eq!(
                (status, error["error"].as_str()),
                (400, Some("invalid_grant")),
                "{case}"
            );
        }
    }
}

#[test]
fn idle_refresh_tokens_expire_only_when_a_lifetime_is_set() {
    let (app, provider) = app_with(|_| {});
    let _ = tokens(&app);
    let report = cleanup(&app, &provider);
    assert_eq!(report.expired_refresh_tokens, None);
    assert!(
        report
            .lines()
            .contains(&"refresh_expire_at is None. No expired refresh tokens deleted.".to_owned())
    );

    let (app, provider) = app_with(|p| p.refresh_token_expire_seconds = Some(1000));
    let body = tokens(&app);
    advance(&app, 1000, 1);
    let report = cleanup(&app, &provider);
    assert_eq!(report.expired_refresh_tokens, Some(1), "{report:?}");
    assert_eq!(app.store.read(|tx| tx.refresh_token_count()).unwrap(), 0);
    let (status, _) = refresh(&app, body["refresh_token"].as_str().unwrap());
    assert_eq!(status, 400);
    // DOT's lines, in DOT's order.
    let lines = report.lines();
    assert_eq!(lines[0], "0 Revoked refresh tokens deleted");
    assert_eq!(lines[1], "0 Orphaned refresh tokens deleted");
    assert_eq!(lines[2], "1 Expired refresh tokens deleted");
    assert_eq!(lines[3], "0 Expired access tokens deleted");
    assert_eq!(lines[4], "0 Expired ID tokens deleted");
    assert_eq!(lines[5], "1 Expired grant tokens deleted");
}

#[test]
fn cleanup_works_in_small_batches() {
    let (app, provider) = app_with(|p| p.clear_expired_tokens_batch_size = 2);
    for _ in 0..5 {
        let _ = tokens(&app);
    }
    advance(&app, 36_001, 0);
    let report = cleanup(&app, &provider);
    assert_eq!((report.access_tokens, report.grants), (5, 5), "{report:?}");
}

#[test]
fn cleartokens_runs_against_a_stopped_and_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let profile = ["--profile", "demo"];
    let run = |args: &[&str]| {
        crate::support::oxidot(dir.path())
            .args([&profile[..], args].concat())
            .output()
            .unwrap()
    };
    let server = Server::start(dir.path(), &["demo"]);
    let live = run(&["cleartokens"]);
    assert!(live.status.success(), "{live:?}");
    let text = String::from_utf8_lossy(&live.stdout);
    assert!(text.contains("0 Expired access tokens deleted"), "{text}");
    assert!(server.terminate());
    let stopped = run(&["cleartokens"]);
    assert!(stopped.status.success(), "{stopped:?}");
    let text = String::from_utf8_lossy(&stopped.stdout);
    assert!(text.contains("refresh_expire_at is None"), "{text}");
}

#[test]
fn compact_shrinks_a_cleaned_database_and_waits_for_the_server_to_stop() {
    use oxidot::store::{AccessToken, SecretKey, Store, Timestamp};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("oxidot-demo.redb");
    let server = Server::start(dir.path(), &["demo"]);
    let refused = crate::support::oxidot(dir.path())
        .args(["--profile", "demo", "compact"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop the server"));
    assert!(server.terminate());
    // Fill, then clean: the file keeps the space.
    let (store, _) = Store::open(&database, 1 << 20).unwrap();
    store
        .write_blocking(|tx| {
            for i in 0..30_000u32 {
                let mut raw = [0u8; 32];
                raw[..4].copy_from_slice(&i.to_be_bytes());
                let token = AccessToken {
                    user: None,
                    application: 1,
                    scope: "read write".repeat(8),
                    expires: Timestamp(1),
                    created: Timestamp(0),
                    refresh_token: None,
                    family: None,
                    tail: String::new(),
                };
                tx.put_access_token(&SecretKey(raw), &token)?;
            }
            Ok(())
        })
        .unwrap();
    store.close().unwrap();
    let cleaned = crate::support::oxidot(dir.path())
        .args(["--profile", "demo", "cleartokens"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&cleaned.stdout).contains("30000 Expired access tokens deleted")
    );
    let full = std::fs::metadata(&database).unwrap().len();
    let compacted = crate::support::oxidot(dir.path())
        .args(["--profile", "demo", "compact"])
        .output()
        .unwrap();
    assert!(compacted.status.success(), "{compacted:?}");
    let small = std::fs::metadata(&database).unwrap().len();
    assert!(small < full, "{small} < {full}");
    // Still the same database.
    let server = Server::start(dir.path(), &["demo"]);
    assert_eq!(
        http_client_status(&format!("{}/o/.well-known/jwks.json", server.base)),
        200
    );
    assert!(server.terminate());
}

fn http_client_status(url: &str) -> u16 {
    reqwest::blocking::get(url).unwrap().status().as_u16()
}
