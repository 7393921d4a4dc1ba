//! Accepting connections and speaking HTTP/1.1 (hyper) in front of Rocket's routes, so that
//! slow or greedy clients cannot hold the server's sockets:
//!
//! - the request head must arrive within `connections.header_timeout_seconds` (the TLS
//!   handshake too; an idle keep-alive connection is closed after it as well);
//! - a body must arrive at `connections.min_body_bytes_per_second` or better (after a grace of
//!   the header timeout), and is never larger than the largest configured limit;
//! - at most `connections.max` connections are open in all and `connections.max_per_ip` from
//!   one client address; beyond that a connection is answered 503 and closed at once.
//!
//! Rocket 0.5's own server has none of these settings (its header timeout is off and it takes
//! no custom listener), so requests are handed to the ignited Rocket through its public local
//! dispatch (`rocket::local::asynchronous::Client`, untracked: no cookie jar kept between
//! requests), which runs the same routing, guards, fairings and catchers as its server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rocket::http::uri::Host;
use rocket::http::{Cookie, Header, Method};
use rocket::local::asynchronous::Client;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::{Connections, Settings};

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {address}: {reason}", reason = bind_failure(error))]
    Bind {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the routes cannot start: {0}")]
    Rocket(String),
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Census {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A counted connection; uncounted when dropped.
struct Admission {
    census: Arc<Mutex<Census>>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Ok(mut census) = self.census.lock() {
            census.total = census.total.saturating_sub(1);
            if let Some(count) = census.by_ip.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    census.by_ip.remove(&self.ip);
                }
            }
        }
    }
}

fn admit(census: &Arc<Mutex<Census>>, limits: &Connections, ip: IpAddr) -> Option<Admission> {
    let mut counts = census.lock().ok()?;
    let from_ip = counts.by_ip.get(&ip).copied().unwrap_or(0);
    if counts.total >= limits.max || from_ip >= limits.max_per_ip {
        return None;
    }
    counts.total += 1;
    *counts.by_ip.entry(ip).or_default() += 1;
    Some(Admission {
        census: census.clone(),
        ip,
    })
}

/// What a connection needs to answer requests.
struct Shared {
    client: Client,
    limits: Connections,
    /// The largest body any route accepts; bigger ones are refused before they are read.
    max_body: u64,
    tls: Option<tokio_rustls_acceptor::Acceptor>,
}

/// Why a bind failed, in the words an operator needs.
fn bind_failure(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "the port is already in use (is another server \
                                          running there?); choose another with --port"
            .to_owned(),
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address; choose another with --address".to_owned()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges); choose another with --port"
                .to_owned()
        }
        _ => error.to_string(),
    }
}

/// Takes the configured address and port: the first thing a server does, so that a port in
/// use stops it before it writes anything.
pub async fn bind(settings: &Settings) -> Result<TcpListener, ListenError> {
    let address = SocketAddr::new(settings.address, settings.port);
    TcpListener::bind(address)
        .await
        .map_err(|error| ListenError::Bind { address, error })
}

/// Serves on `listener` until `stop` resolves (SIGTERM or SIGINT in the binary), then lets
/// open requests finish for `shutdown_grace_seconds` and closes what is left.
pub async fn serve(
    listener: TcpListener,
    rocket: rocket::Rocket<rocket::Build>,
    settings: &Settings,
    stop: impl std::future::Future<Output = ()>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ListenError> {
    let address = SocketAddr::new(settings.address, settings.port);
    let tls = tokio_rustls_acceptor::from_settings(settings)?;
    let client = Client::untracked(rocket)
        .await
        .map_err(|error| ListenError::Rocket(error.to_string()))?;
    let shared = Arc::new(Shared {
        client,
        limits: settings.connections.clone(),
        max_body: settings.limits.form.max(settings.limits.json),
        tls,
    });
    on_listening(listener.local_addr().unwrap_or(address));
    let census = Arc::new(Mutex::new(Census::default()));
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, mostly: wait rather than spin.
                        tracing::warn!("accepting a connection failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(admission) = admit(&census, &shared.limits, peer.ip()) else {
                    refuse_busy(stream, peer);
                    continue;
                };
                let shared = shared.clone();
                let closing = closing_seen.clone();
                connections.spawn(async move {
                    let _admission = admission;
                    serve_connection(stream, peer, shared, closing).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let grace = Duration::from_secs(settings.connections.shutdown_grace_seconds);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period are closed"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Too many connections: a 503 if the socket takes it at once, and close.
fn refuse_busy(stream: TcpStream, peer: SocketAddr) {
    tracing::warn!(ip = %peer.ip(), "connection refused: too many open connections");
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
    );
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let header_timeout = Duration::from_secs(shared.limits.header_timeout_seconds);
    match &shared.tls {
        Some(acceptor) => {
            match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => speak_http(tls, peer, shared, closing).await,
                Ok(Err(error)) => tracing::debug!(ip = %peer.ip(), "TLS handshake failed: {error}"),
                Err(_) => tracing::debug!(ip = %peer.ip(), "TLS handshake too slow"),
            }
        }
        None => speak_http(stream, peer, shared, closing).await,
    }
}

async fn speak_http<S>(
    io: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut closing: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = Duration::from_secs(shared.limits.header_timeout_seconds);
    let service_state = shared.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = service_state.clone();
        async move { Ok::<_, Infallible>(answer(&shared, peer, request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = until_closing(&mut closing) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result
        && !error.is_incomplete_message()
    {
        tracing::debug!(ip = %peer.ip(), "connection closed: {error}");
    }
}

/// Resolves once the server starts closing (never, if the sender is gone without closing).
async fn until_closing(closing: &mut watch::Receiver<bool>) {
    loop {
        if *closing.borrow_and_update() {
            return;
        }
        if closing.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

type Answer = hyper::Response<Full<Bytes>>;

fn plain(status: u16, text: &'static str, close: bool) -> Answer {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if close {
        headers.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// How long a body of `length` bytes may take at the minimum rate.
fn body_deadline(limits: &Connections, length: u64) -> Duration {
    let rate = limits.min_body_bytes_per_second.max(1);
    Duration::from_secs(limits.header_timeout_seconds) + Duration::from_secs(length.div_ceil(rate))
}

async fn answer(shared: &Shared, peer: SocketAddr, request: hyper::Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let Ok(method) = parts.method.as_str().parse::<Method>() else {
        return plain(501, "method not implemented\n", false);
    };
    let Some(target) = parts.uri.path_and_query().map(|pq| pq.as_str().to_owned()) else {
        return plain(400, "bad request target\n", true);
    };
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > shared.max_body) {
        return plain(413, "request body too large\n", true);
    }
    let expected = declared.unwrap_or(shared.max_body);
    let limited = Limited::new(body, usize::try_from(shared.max_body).unwrap_or(usize::MAX));
    let bytes = match tokio::time::timeout(
        body_deadline(&shared.limits, expected),
        limited.collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return plain(413, "request body too large\n", true);
        }
        Ok(Err(_)) => return plain(400, "the request body could not be read\n", true),
        Err(_) => {
            tracing::info!(ip = %peer.ip(), "request body too slow: connection closed");
            return plain(408, "request body too slow\n", true);
        }
    };

    let mut local = shared.client.req(method, target).remote(peer);
    for (name, value) in &parts.headers {
        // Rocket's own server drops header values that are not UTF-8 too.
        let Ok(value) = value.to_str() else { continue };
        if name == hyper::header::COOKIE {
            for piece in value.split(';').map(str::trim) {
                if let Ok(cookie) = Cookie::parse_encoded(piece.to_owned()) {
                    local = local.cookie(cookie);
                }
            }
        }
        local = local.header(Header::new(name.as_str().to_owned(), value.to_owned()));
    }
    if let Some(host) = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| Host::parse_owned(value.to_owned()).ok())
    {
        local.inner_mut().set_host(host);
    }
    if !bytes.is_empty() {
        local.set_body(&bytes);
    }
    let response = local.dispatch().await;
    let status = response.status().code;
    let mut answer = hyper::Response::builder().status(
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR),
    );
    for header in response.headers().iter() {
        // hyper frames the body itself.
        if header
            .name()
            .as_str()
            .eq_ignore_ascii_case("content-length")
            || header
                .name()
                .as_str()
                .eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        answer = answer.header(header.name().as_str(), header.value());
    }
    let body = response.into_bytes().await.unwrap_or_default();
    answer
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| plain(500, "the response could not be built\n", true))
}

/// TLS (HTTPS served directly) when `tls.certs` and `tls.key` are set.
#[cfg(feature = "tls")]
mod tokio_rustls_acceptor {
    use std::sync::Arc;

    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::ListenError;
    use crate::config::Settings;

    pub type Acceptor = tokio_rustls::TlsAcceptor;

    pub fn from_settings(settings: &Settings) -> Result<Option<Acceptor>, ListenError> {
        let Some(tls) = &settings.tls else {
            return Ok(None);
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.certs)
            .and_then(|certs| certs.collect())
            .map_err(|error| {
                ListenError::Tls(format!("tls.certs {}: {error}", tls.certs.display()))
            })?;
        let key = PrivateKeyDer::from_pem_file(&tls.key)
            .map_err(|error| ListenError::Tls(format!("tls.key {}: {error}", tls.key.display())))?;
        let mut config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|error| ListenError::Tls(error.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

/// Without the `tls` feature, a configured certificate is an error rather than ignored.
#[cfg(not(feature = "tls"))]
mod tokio_rustls_acceptor {
    use super::ListenError;
    use crate::config::Settings;

    pub enum Acceptor {}

    impl Acceptor {
        pub async fn accept(
            &self,
            _stream: tokio::net::TcpStream,
        ) -> std::io::Result<tokio::net::TcpStream> {
            match *self {}
        }
    }

    pub fn from_settings(settings: &Settings) -> Result<Option<Acceptor>, ListenError> {
        match settings.tls {
            Some(_) => Err(ListenError::Tls(
                "this build has no TLS (the `tls` feature is off)".to_owned(),
            )),
            None => Ok(None),
        }
    }
}
