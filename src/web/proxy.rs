//! Who is really asking, behind a reverse proxy: `X-Forwarded-For`, `-Proto` and `-Host` are
//! believed only when the connection comes from a configured trusted proxy (anyone can send
//! those headers; believing them from anyone would let a client pick its own IP for the
//! throttles and its own issuer).

use std::net::IpAddr;

use rocket::Request;

use crate::config::{network_contains, parse_network};

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// From the setting (already validated at start; anything unparsable is ignored).
    pub fn new(networks: &[String]) -> Self {
        Self(
            networks
                .iter()
                .filter_map(|text| parse_network(text))
                .collect(),
        )
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network_contains(*network, ip))
    }

    fn peer_trusted(&self, req: &Request<'_>) -> bool {
        req.remote().is_some_and(|peer| self.trusts(peer.ip()))
    }

    /// The client's address: the peer, or behind trusted proxies the rightmost address in
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, req: &Request<'_>) -> Option<IpAddr> {
        let peer = req.remote()?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for header in req
            .headers()
            .get("X-Forwarded-For")
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            for hop in header.split(',').rev() {
                let Ok(hop) = hop.trim().parse::<IpAddr>() else {
                    return Some(client);
                };
                client = hop;
                if !self.trusts(hop) {
                    return Some(hop);
                }
            }
        }
        Some(client)
    }

    /// `scheme://host` as the client sees this server.
    pub fn origin(&self, req: &Request<'_>) -> String {
        let forwarded = self.peer_trusted(req);
        let first = |name: &str| {
            forwarded
                .then(|| req.headers().get_one(name))
                .flatten()
                .and_then(|value| value.split(',').next())
                .map(str::trim)
        };
        // Served over TLS directly, the request came over https; behind a trusted proxy, the
        // proxy says how the client connected.
        let direct_tls = req
            .rocket()
            .state::<crate::web::AppState>()
            .is_some_and(|state| state.settings.tls.is_some());
        let scheme = match first("X-Forwarded-Proto") {
            Some("https") => "https",
            Some(_) => "http",
            None if direct_tls => "https",
            None => "http",
        };
        let host = first("X-Forwarded-Host")
            .filter(|host| valid_host(host))
            .or_else(|| {
                req.headers()
                    .get_one("Host")
                    .filter(|host| valid_host(host))
            })
            .unwrap_or("localhost");
        format!("{scheme}://{host}")
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}
