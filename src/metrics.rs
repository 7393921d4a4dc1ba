//! Prometheus metrics (OpenMetrics text at `/metrics`): requests by route and status, request
//! latency, tokens issued by grant type, cleanup runs and what they deleted, scheduler task
//! results; the gauges (active tokens, database size, argon2 queue) are read when scraped.
//! One process-wide registry, so the protocol, cleanup and scheduler code can count without
//! knowing about HTTP.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::cleanup::CleanupReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    /// The route's template (`/o/applications/<id>`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: String,
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub tokens_issued: Family<GrantLabels, Counter>,
    pub cleanup_runs: Counter,
    pub cleanup_deleted: Family<KindLabels, Counter>,
    pub cleanup_seconds: Histogram,
    pub task_runs: Family<TaskLabels, Counter>,
    pub active_tokens: Family<KindLabels, Gauge>,
    pub database_bytes: Gauge,
    /// The writer's transactions since start (a gauge set from the store's own counter).
    pub write_transactions: Gauge,
    pub hash_queue: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("oxidot");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            request_seconds.clone(),
        );
        let tokens_issued = Family::<GrantLabels, Counter>::default();
        registry.register(
            "tokens_issued",
            "Access tokens issued by the token endpoint, by grant type",
            tokens_issued.clone(),
        );
        let cleanup_runs = Counter::default();
        registry.register(
            "cleanup_runs",
            "Expired-token cleanups run",
            cleanup_runs.clone(),
        );
        let cleanup_deleted = Family::<KindLabels, Counter>::default();
        registry.register(
            "cleanup_deleted",
            "Rows the cleanup deleted, by kind",
            cleanup_deleted.clone(),
        );
        let cleanup_seconds = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        registry.register(
            "cleanup_duration_seconds",
            "Time a cleanup took",
            cleanup_seconds.clone(),
        );
        let task_runs = Family::<TaskLabels, Counter>::default();
        registry.register(
            "scheduler_task_runs",
            "Periodic task runs, by task and result (ok, error)",
            task_runs.clone(),
        );
        let active_tokens = Family::<KindLabels, Gauge>::default();
        registry.register(
            "active_tokens",
            "Stored tokens that have not expired (expired ones counted up to 100,000 per kind)",
            active_tokens.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register(
            "database_size_bytes",
            "Size of the database file",
            database_bytes.clone(),
        );
        let write_transactions = Gauge::default();
        registry.register(
            "database_write_transactions",
            "Write transactions the database writer began since start (a batch of concurrent \
             writes is one; a refused write in a batch adds one)",
            write_transactions.clone(),
        );
        let hash_queue = Gauge::default();
        registry.register(
            "argon2_queue_depth",
            "Password and secret hashes waiting for a hashing slot",
            hash_queue.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            tokens_issued,
            cleanup_runs,
            cleanup_deleted,
            cleanup_seconds,
            task_runs,
            active_tokens,
            database_bytes,
            write_transactions,
            hash_queue,
        }
    }

    pub fn record_cleanup(&self, report: &CleanupReport) {
        self.cleanup_runs.inc();
        let kinds = [
            ("revoked_refresh_token", report.revoked_refresh_tokens),
            ("refresh_token", report.expired_refresh_tokens.unwrap_or(0)),
            ("access_token", report.access_tokens),
            ("id_token", report.id_tokens),
            ("grant", report.grants),
            ("device_grant", report.device_grants),
            ("session", report.sessions),
        ];
        for (kind, deleted) in kinds {
            self.cleanup_deleted
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .inc_by(deleted);
        }
        self.cleanup_seconds
            .observe(report.elapsed_millis as f64 / 1000.0);
    }

    pub fn record_task(&self, task: &str, ok: bool) {
        self.task_runs
            .get_or_create(&TaskLabels {
                task: task.to_owned(),
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn global() -> &'static Metrics {
    &METRICS
}

/// Serves `GET /metrics` alone on `address` (the `metrics.address` setting), so the metrics
/// can live on an internal interface while the main address faces the public. Anything else
/// gets 404. Runs until the task is dropped.
pub async fn serve_alone(
    address: std::net::SocketAddr,
    render: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>
    + Send
    + Sync
    + 'static,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(address).await?;
    let render = std::sync::Arc::new(render);
    loop {
        let (mut stream, _) = listener.accept().await?;
        let render = render.clone();
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(1024);
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 8192 {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    stream.read(&mut buffer),
                )
                .await
                {
                    Ok(Ok(read)) if read > 0 => head.extend_from_slice(&buffer[..read]),
                    _ => return,
                }
            }
            let wanted = head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?");
            let (status, content_type, body) = if wanted {
                let body = render().await;
                (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                )
            } else {
                (
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    "not found\n".to_owned(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
