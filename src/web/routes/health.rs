//! Health and metrics: `/healthz` (the process answers), `/readyz` (the store takes writes and
//! the scheduler runs), `/metrics` (Prometheus, unless turned off or moved elsewhere).

use rocket::http::{ContentType, Status};
use rocket::{Route, State, get, routes};
use serde_json::json;

use crate::metrics::{self, KindLabels};
use crate::store::{ExpiringKind, Timestamp, TokenTable};
use crate::web::AppState;

/// Liveness: the process answers HTTP.
#[get("/healthz")]
fn healthz() -> (ContentType, &'static str) {
    (ContentType::JSON, r#"{"status":"ok"}"#)
}

/// Readiness: a real write commits, and the scheduler has not stopped.
#[get("/readyz")]
async fn readyz(state: &State<AppState>) -> (Status, (ContentType, String)) {
    let now = Timestamp::from_datetime(state.clock.now());
    let store = match state
        .store
        .write_deferred(move |tx| tx.record_probe(now))
        .await
    {
        Ok(()) => "ok".to_owned(),
        Err(error) => {
            tracing::warn!("readiness: the store refused a write: {error}");
            "not writable".to_owned()
        }
    };
    let scheduler = match &state.scheduler {
        Some(scheduler) if scheduler.is_alive() => "running",
        Some(_) => "stopped",
        None => "not started",
    };
    let ready = store == "ok" && scheduler == "running";
    let body = json!({
        "status": if ready { "ready" } else { "unready" },
        "store": store,
        "scheduler": scheduler,
    });
    let status = if ready {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    (status, (ContentType::JSON, body.to_string()))
}

/// Counting expired rows walks the expiry index; a scrape stops at this many per kind.
const EXPIRED_CAP: u64 = 100_000;

/// The metrics text, with the gauges read now.
pub fn render(state: &AppState) -> String {
    render_from(
        &state.store,
        &state.hasher,
        &state.clock,
        &state.settings.oauth2_provider,
    )
}

/// The same, from the parts it reads (the separate metrics listener has no `AppState`).
pub fn render_from(
    store: &crate::store::Store,
    hasher: &crate::passwords::Hasher,
    clock: &crate::clock::Clock,
    provider: &crate::config::OAuth2Provider,
) -> String {
    let metrics = metrics::global();
    let now = Timestamp::from_datetime(clock.now());
    let kinds = [
        (
            "access_token",
            TokenTable::AccessTokens,
            ExpiringKind::AccessToken,
        ),
        (
            "refresh_token",
            TokenTable::RefreshTokens,
            ExpiringKind::RefreshToken,
        ),
        ("grant", TokenTable::Grants, ExpiringKind::Grant),
        ("id_token", TokenTable::IdTokens, ExpiringKind::IdToken),
        (
            "device_grant",
            TokenTable::DeviceGrants,
            ExpiringKind::DeviceGrant,
        ),
    ];
    let counts = store.read(|tx| {
        let mut counts = Vec::new();
        for (name, table, kind) in kinds {
            let stored = tx.token_count(table)?;
            let mut gone = match crate::cleanup::due_before(kind, provider, now) {
                Some(before) => tx.expired_count(kind, before, EXPIRED_CAP)?,
                None => 0,
            };
            if kind == ExpiringKind::RefreshToken {
                gone += tx.expired_count(
                    ExpiringKind::RevokedRefreshToken,
                    Timestamp(i64::MAX),
                    EXPIRED_CAP,
                )?;
            }
            counts.push((name, stored.saturating_sub(gone)));
        }
        Ok(counts)
    });
    if let Ok(counts) = counts {
        for (name, active) in counts {
            metrics
                .active_tokens
                .get_or_create(&KindLabels {
                    kind: name.to_owned(),
                })
                .set(i64::try_from(active).unwrap_or(i64::MAX));
        }
    }
    metrics
        .database_bytes
        .set(i64::try_from(store.file_size()).unwrap_or(i64::MAX));
    metrics
        .write_transactions
        .set(i64::try_from(store.write_transactions()).unwrap_or(i64::MAX));
    metrics
        .hash_queue
        .set(i64::try_from(hasher.queue_depth()).unwrap_or(i64::MAX));
    metrics.encode()
}

pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[get("/metrics")]
fn metrics_page(state: &State<AppState>) -> (ContentType, String) {
    let content_type =
        ContentType::parse_flexible(METRICS_CONTENT_TYPE).unwrap_or(ContentType::Plain);
    (content_type, render(state))
}

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz]
}

/// `/metrics` on the main address (when enabled and not moved elsewhere).
pub fn metrics_routes() -> Vec<Route> {
    routes![metrics_page]
}
