//! `/admin/`: what is in the store at a glance, the last cleanup, and links to everything.

use rocket::{Route, get, routes};
use serde_json::json;

use super::when;
use crate::permissions::{self, Action};
use crate::store::{DeviceDecision, DeviceGrant, ExpiringKind, Grant, Timestamp, TokenTable};
use crate::web::error::{Page, WebError};
use crate::web::session::Staff;

/// Counting expired or spent rows walks an index or a table; past this many the page says
/// "more than".
const COUNT_CAP: u64 = 100_000;

/// One row of the tokens table: how many are stored, live, spent (revoked, used or
/// denied, kept until they expire) and expired (awaiting cleanup).
struct Row {
    label: &'static str,
    path: &'static str,
    table: TokenTable,
    kind: ExpiringKind,
    model: crate::permissions::Model,
}

const ROWS: [Row; 5] = [
    Row {
        label: "Access tokens",
        path: "access-tokens",
        table: TokenTable::AccessTokens,
        kind: ExpiringKind::AccessToken,
        model: permissions::ACCESS_TOKEN,
    },
    Row {
        label: "Refresh tokens",
        path: "refresh-tokens",
        table: TokenTable::RefreshTokens,
        kind: ExpiringKind::RefreshToken,
        model: permissions::REFRESH_TOKEN,
    },
    Row {
        label: "Authorization codes",
        path: "grants",
        table: TokenTable::Grants,
        kind: ExpiringKind::Grant,
        model: permissions::GRANT,
    },
    Row {
        label: "ID tokens",
        path: "id-tokens",
        table: TokenTable::IdTokens,
        kind: ExpiringKind::IdToken,
        model: permissions::ID_TOKEN,
    },
    Row {
        label: "Device grants",
        path: "device-grants",
        table: TokenTable::DeviceGrants,
        kind: ExpiringKind::DeviceGrant,
        model: permissions::DEVICE_GRANT,
    },
];

/// A count that stopped at `cap` says so.
fn capped(count: u64) -> String {
    if count >= COUNT_CAP {
        format!("more than {COUNT_CAP}")
    } else {
        count.to_string()
    }
}

#[get("/admin")]
async fn dashboard(screen: Staff<'_>) -> Result<Page, WebError> {
    let state = screen.state;
    let now = Timestamp::from_datetime(state.clock.now());
    let provider = &state.settings.oauth2_provider;
    let (counts, cleanup) = state.store.read(|tx| {
        let mut counts = Vec::new();
        for row in &ROWS {
            let total = tx.token_count(row.table)?;
            let expired = match crate::cleanup::due_before(row.kind, provider, now) {
                Some(before) => tx.expired_count(row.kind, before, COUNT_CAP)?,
                None => 0,
            };
            // Spent but unexpired: kept for reuse detection (a revoked refresh token, a used
            // code) or to answer a poll (a denied device grant); none of them is live.
            let spent = match row.table {
                TokenTable::RefreshTokens => tx.expired_count(
                    ExpiringKind::RevokedRefreshToken,
                    Timestamp(i64::MAX),
                    COUNT_CAP,
                )?,
                TokenTable::Grants => {
                    tx.count_matching(row.table, COUNT_CAP, |grant: &Grant| {
                        grant.used.is_some() && grant.expires > now
                    })?
                }
                TokenTable::DeviceGrants => {
                    tx.count_matching(row.table, COUNT_CAP, |grant: &DeviceGrant| {
                        grant.decision == DeviceDecision::Denied && grant.expires > now
                    })?
                }
                TokenTable::AccessTokens | TokenTable::IdTokens => 0,
            };
            counts.push(json!({
                "label": row.label, "path": row.path, "total": total,
                "link": screen.granted.allows(Action::View, row.model),
                "expired": capped(expired),
                "spent": capped(spent),
                "spent_kind": match row.table {
                    TokenTable::RefreshTokens => "revoked",
                    TokenTable::Grants => "used",
                    TokenTable::DeviceGrants => "denied",
                    TokenTable::AccessTokens | TokenTable::IdTokens => "",
                },
                "live": total.saturating_sub(expired).saturating_sub(spent),
            }));
        }
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
            "path": percent_encoding::utf8_percent_encode(&task.name, percent_encoding::NON_ALPHANUMERIC).to_string(),
            "last_run": when(task.last_run_at),
            "ok": task.last_result.as_ref().map(|result| result.ok),
            "rows": task.last_result.map(|result| report_rows(&result.message)).unwrap_or_default(),
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

/// The cleanup's report ("3 Expired access tokens deleted; 0 …") as table rows: what, and
/// how many; a line of another shape (an error, a note) is a row of its own.
fn report_rows(report: &str) -> Vec<serde_json::Value> {
    report
        .split("; ")
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let counted = line.split_once(' ').and_then(|(count, rest)| {
                let count: u64 = count.parse().ok()?;
                Some((count, rest.strip_suffix(" deleted")?))
            });
            match counted {
                Some((count, what)) => json!({"what": what, "count": count}),
                None => json!({"what": line, "count": null}),
            }
        })
        .collect()
}

pub fn routes() -> Vec<Route> {
    routes![dashboard]
}

#[cfg(test)]
mod tests {
    use super::report_rows;

    #[test]
    fn the_cleanup_report_reads_as_rows() {
        let rows = report_rows(
            "3 Expired access tokens deleted; refresh_expire_at is None. No expired refresh \
             tokens deleted.",
        );
        assert_eq!(rows[0]["what"], "Expired access tokens");
        assert_eq!(rows[0]["count"], 3);
        assert!(rows[1]["count"].is_null());
    }
}
