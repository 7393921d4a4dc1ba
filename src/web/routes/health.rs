//! Health and metrics: `/healthz` (the process answers), `/readyz` (the store takes writes and
//! the scheduler runs), `/metrics` (Prometheus, unless turned off or moved elsewhere).

use rocket::http::{ContentType, Status};
use rocket::{Route, State, get, routes};
use serde_json::json;

use crate::metrics::{self, KindLabels};
use crate::status::StoreStatus;
use crate::store::{StoreError, TokenTable};
use crate::web::AppState;

/// Liveness: the process answers HTTP.
#[get("/healthz")]
fn healthz() -> (ContentType, &'static str) {
    (ContentType::JSON, r#"{"status":"ok"}"#)
}

/// Readiness: a real write commits, and the scheduler has not stopped.
#[get("/readyz")]
async fn readyz(state: &State<AppState>) -> (Status, (ContentType, String)) {
    let store = match state.status.probe().await {
        Ok(()) => "ok".to_owned(),
        Err(StoreError::Unavailable(reason)) => {
            tracing::warn!("readiness: the database is unavailable: {reason}");
            "unavailable".to_owned()
        }
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
pub async fn render(state: &AppState) -> String {
    render_from(&state.status, &state.hasher).await
}

/// The same, from the parts it reads (the separate metrics listener has no `AppState`). A
/// database that cannot be read leaves the gauges it feeds as they were.
pub async fn render_from(status: &StoreStatus, hasher: &crate::passwords::Hasher) -> String {
    let metrics = metrics::global();
    if let Ok(counts) = status.token_counts(EXPIRED_CAP).await {
        for count in counts {
            let kind = match count.table {
                TokenTable::AccessTokens => "access_token",
                TokenTable::RefreshTokens => "refresh_token",
                TokenTable::Grants => "grant",
                TokenTable::IdTokens => "id_token",
                TokenTable::DeviceGrants => "device_grant",
            };
            metrics
                .active_tokens
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .set(i64::try_from(count.live()).unwrap_or(i64::MAX));
        }
    }
    if let Ok(described) = status.describe().await {
        metrics
            .database_bytes
            .set(i64::try_from(described.bytes).unwrap_or(i64::MAX));
        if let Some(transactions) = described.write_transactions {
            metrics
                .write_transactions
                .set(i64::try_from(transactions).unwrap_or(i64::MAX));
        }
    }
    metrics
        .hash_queue
        .set(i64::try_from(hasher.queue_depth()).unwrap_or(i64::MAX));
    metrics.encode()
}

pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[get("/metrics")]
async fn metrics_page(state: &State<AppState>) -> (ContentType, String) {
    let content_type =
        ContentType::parse_flexible(METRICS_CONTENT_TYPE).unwrap_or(ContentType::Plain);
    (content_type, render(state).await)
}

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz]
}

/// `/metrics` on the main address (when enabled and not moved elsewhere).
pub fn metrics_routes() -> Vec<Route> {
    routes![metrics_page]
}
