//! `/admin/`: what is in the store at a glance, the last cleanup, and links to everything.

use rocket::{Route, get, routes};
use serde_json::json;

use super::when;
use crate::permissions::{self, Action};
use crate::store::TokenTable;
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
    model: crate::permissions::Model,
}

const ROWS: [Row; 5] = [
    Row {
        label: "Access tokens",
        path: "access-tokens",
        table: TokenTable::AccessTokens,
        model: permissions::ACCESS_TOKEN,
    },
    Row {
        label: "Refresh tokens",
        path: "refresh-tokens",
        table: TokenTable::RefreshTokens,
        model: permissions::REFRESH_TOKEN,
    },
    Row {
        label: "Authorization codes",
        path: "grants",
        table: TokenTable::Grants,
        model: permissions::GRANT,
    },
    Row {
        label: "ID tokens",
        path: "id-tokens",
        table: TokenTable::IdTokens,
        model: permissions::ID_TOKEN,
    },
    Row {
        label: "Device grants",
        path: "device-grants",
        table: TokenTable::DeviceGrants,
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
    let tables = state.status.token_counts(COUNT_CAP).await?;
    let mut counts = Vec::with_capacity(ROWS.len());
    for row in &ROWS {
        let Some(count) = tables.iter().find(|count| count.table == row.table) else {
            continue;
        };
        counts.push(json!({
            "label": row.label, "path": row.path, "total": count.stored,
            "link": screen.granted.allows(Action::View, row.model),
            "expired": capped(count.expired),
            "spent": capped(count.spent),
            "spent_kind": match row.table {
                TokenTable::RefreshTokens => "revoked",
                TokenTable::Grants => "used",
                TokenTable::DeviceGrants => "denied",
                TokenTable::AccessTokens | TokenTable::IdTokens => "",
            },
            "live": count.live(),
        }));
    }
    let totals = state.status.totals().await?;
    let counts = json!({
        "users": totals.users,
        "applications": totals.applications,
        "tokens": counts,
    });
    let cleanup = state
        .tasks
        .all()
        .await?
        .into_iter()
        .filter(|task| task.task == "clear_tokens")
        .max_by_key(|task| task.last_run_at);
    let described = state.status.describe().await?;
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
            "database_mib": format!("{:.1}", described.bytes as f64 / (1024.0 * 1024.0)),
            "database_path": described.location,
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
