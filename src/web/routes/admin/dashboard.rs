//! `/admin/`: what is in the store at a glance, the last cleanup, and links to everything.

use rocket::{Route, get, routes};
use serde_json::json;

use super::when;
use crate::permissions::{self, Action};
use crate::store::{ExpiringKind, Timestamp, TokenTable};
use crate::web::error::{Page, WebError};
use crate::web::session::Staff;

/// Counting expired rows walks the expiry index; past this many the page says "more than".
const EXPIRED_COUNT_CAP: u64 = 100_000;

#[get("/admin")]
async fn dashboard(screen: Staff<'_>) -> Result<Page, WebError> {
    let state = screen.state;
    let now = Timestamp::from_datetime(state.clock.now());
    let (counts, cleanup) = state.store.read(|tx| {
        let expired = |kind| tx.expired_count(kind, now, EXPIRED_COUNT_CAP);
        let row =
            |label: &str, path: &str, table, kind, model| -> Result<_, crate::store::StoreError> {
                let total = tx.token_count(table)?;
                let expired = expired(kind)?;
                // Revoked refresh tokens are kept (reuse detection) but are not live.
                let revoked = if kind == ExpiringKind::RefreshToken {
                    tx.expired_count(
                        ExpiringKind::RevokedRefreshToken,
                        Timestamp(i64::MAX),
                        EXPIRED_COUNT_CAP,
                    )?
                } else {
                    0
                };
                Ok(json!({
                    "label": label, "path": path, "total": total,
                    "link": screen.granted.allows(Action::View, model),
                    "expired": if expired == EXPIRED_COUNT_CAP {
                        format!("more than {EXPIRED_COUNT_CAP}")
                    } else {
                        expired.to_string()
                    },
                    "live": total.saturating_sub(expired).saturating_sub(revoked),
                }))
            };
        let counts = vec![
            row(
                "Access tokens",
                "access-tokens",
                TokenTable::AccessTokens,
                ExpiringKind::AccessToken,
                permissions::ACCESS_TOKEN,
            )?,
            row(
                "Refresh tokens",
                "refresh-tokens",
                TokenTable::RefreshTokens,
                ExpiringKind::RefreshToken,
                permissions::REFRESH_TOKEN,
            )?,
            row(
                "Authorization codes",
                "grants",
                TokenTable::Grants,
                ExpiringKind::Grant,
                permissions::GRANT,
            )?,
            row(
                "ID tokens",
                "id-tokens",
                TokenTable::IdTokens,
                ExpiringKind::IdToken,
                permissions::ID_TOKEN,
            )?,
            row(
                "Device grants",
                "device-grants",
                TokenTable::DeviceGrants,
                ExpiringKind::DeviceGrant,
                permissions::DEVICE_GRANT,
            )?,
        ];
        let cleanup = tx
            .periodic_tasks()?
            .into_iter()
            .filter(|task| task.task == "clear_tokens")
            .max_by_key(|task| task.last_run_at);
        Ok((
            json!({
                "users": tx.user_count()?,
                "applications": tx.application_count()?,
                "tokens": counts,
            }),
            cleanup,
        ))
    })?;
    let cleanup = cleanup.map(|task| {
        json!({
            "name": task.name,
            "last_run": when(task.last_run_at),
            "ok": task.last_result.as_ref().map(|result| result.ok),
            "result": task.last_result.map(|result| result.message).unwrap_or_default(),
        })
    });
    screen.render(
        "admin_dashboard.html.tera",
        json!({
            "section": "dashboard",
            "counts": counts,
            "cleanup": cleanup,
            "database_mib": format!("{:.1}", state.store.file_size() as f64 / (1024.0 * 1024.0)),
            "database_path": state.store.path().display().to_string(),
        }),
        None,
    )
}

pub fn routes() -> Vec<Route> {
    routes![dashboard]
}
