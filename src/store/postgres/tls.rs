//! TLS to PostgreSQL, as libpq's URL parameters ask for it: `sslmode` (`disable`, `prefer` —
//! the default —, `require`, `verify-ca`, `verify-full`), `sslrootcert` (the CA file the
//! server's certificate is checked against; the system's CAs otherwise), and `sslcert` with
//! `sslkey` (a client certificate, for servers that sign users in by certificate). tokio-postgres knows
//! the first three modes and neither verification, so oxidot reads both parameters out of the
//! URL and makes the OpenSSL connector (OpenSSL is linked already, for josekit) verify as
//! libpq would:
//!
//! | sslmode | encrypted | certificate chain checked | host name checked |
//! | --- | --- | --- | --- |
//! | `disable` | no | — | — |
//! | `prefer` | when the server offers it | only with `sslrootcert` | no |
//! | `require` | yes | only with `sslrootcert` | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |

use std::path::PathBuf;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::SslMode;

use crate::store::StoreError;

/// What the URL asks of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A PostgreSQL URL split into what tokio-postgres parses and the TLS it asks for.
#[derive(Debug)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub mode: TlsMode,
    pub root_certificate: Option<PathBuf>,
    /// The client's certificate (PEM, its chain after it) and private key.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |message: String| {
            StoreError::Storage(format!(
                "the database URL is not a valid PostgreSQL URL: {message}"
            ))
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = TlsMode::Prefer;
        let mut root_certificate = None;
        let (mut certificate, mut key) = (None, None);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| invalid(format!("{name} is not valid UTF-8")))?;
            match name {
                "sslmode" => {
                    mode = TlsMode::parse(&decoded).ok_or_else(|| {
                        invalid(format!(
                            "sslmode {decoded:?} is none of disable, prefer, require, verify-ca, \
                             verify-full"
                        ))
                    })?;
                }
                "sslrootcert" => root_certificate = Some(PathBuf::from(decoded.as_ref())),
                "sslcert" => certificate = Some(PathBuf::from(decoded.as_ref())),
                "sslkey" => key = Some(PathBuf::from(decoded.as_ref())),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config =
            rest.parse().map_err(|error| invalid(format!("{error}")))?;
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let client_certificate = match (certificate, key) {
            (Some(certificate), Some(key)) => Some((certificate, key)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "sslcert and sslkey go together (a client certificate and its key)".to_owned(),
                ));
            }
        };
        Ok(Self {
            config,
            mode,
            root_certificate,
            client_certificate,
        })
    }

    /// Whether the server's certificate chain is checked (libpq: always from `verify-ca`, and
    /// in the weaker modes once a root certificate is named).
    pub fn checks_chain(&self) -> bool {
        matches!(self.mode, TlsMode::VerifyCa | TlsMode::VerifyFull)
            || self.root_certificate.is_some()
    }

    /// The connector that does what the URL asks.
    pub fn connector(&self) -> Result<MakeTlsConnector, StoreError> {
        let tls_error = |error: openssl::error::ErrorStack| {
            StoreError::Storage(format!("cannot prepare TLS to PostgreSQL: {error}"))
        };
        // Loads the system's CAs and checks the peer by default.
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
        if let Some(root) = &self.root_certificate {
            builder.set_ca_file(root).map_err(|error| {
                StoreError::Storage(format!(
                    "sslrootcert {}: cannot use it as a CA file: {error}",
                    root.display()
                ))
            })?;
        }
        if let Some((certificate, key)) = &self.client_certificate {
            let unusable = |what: &str, path: &std::path::Path, error| {
                StoreError::Storage(format!("{what} {}: cannot use it: {error}", path.display()))
            };
            builder
                .set_certificate_chain_file(certificate)
                .map_err(|error| unusable("sslcert", certificate, error))?;
            builder
                .set_private_key_file(key, openssl::ssl::SslFiletype::PEM)
                .map_err(|error| unusable("sslkey", key, error))?;
            builder
                .check_private_key()
                .map_err(|error| unusable("sslkey", key, error))?;
        }
        if !self.checks_chain() {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        if self.mode != TlsMode::VerifyFull {
            connector.set_callback(|configuration, _| {
                configuration.set_verify_hostname(false);
                Ok(())
            });
        }
        Ok(connector)
    }
}

/// What `oxidot check` and the server's start say about a PostgreSQL URL whose connection is
/// not verified end to end, unless the server is on this machine.
pub fn advice(url: &str) -> Option<String> {
    let target = Target::parse(url).ok()?;
    if target.mode == TlsMode::VerifyFull {
        return None;
    }
    let remote = target.config.get_hosts().iter().any(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => !is_loopback(name),
        tokio_postgres::config::Host::Unix(_) => false,
    });
    if !remote {
        return None;
    }
    let what = match target.mode {
        TlsMode::Disable => "is not encrypted",
        TlsMode::Prefer if !target.checks_chain() => {
            "is encrypted only if the server offers it, and the server is not verified"
        }
        TlsMode::Prefer => "is encrypted only if the server offers it",
        TlsMode::Require if !target.checks_chain() => {
            "is encrypted, but the server is not verified"
        }
        _ => "is encrypted, but the server's name is not checked against its certificate",
    };
    Some(format!(
        "database: the connection to PostgreSQL {what}: add sslmode=verify-full to the URL (with \
         sslrootcert=FILE for a private CA)"
    ))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_out_of_the_url() {
        let target = Target::parse(
            "postgres://oxidot:pw@db.example:5433/tokens?application_name=ox&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20dir%2Froot.pem",
        )
        .unwrap();
        assert_eq!(target.mode, TlsMode::VerifyFull);
        assert_eq!(
            target.root_certificate.as_deref(),
            Some(std::path::Path::new("/etc/ca dir/root.pem"))
        );
        assert_eq!(target.config.get_dbname(), Some("tokens"));
        assert_eq!(target.config.get_application_name(), Some("ox"));
        assert_eq!(target.config.get_ssl_mode(), SslMode::Require);
        assert!(target.checks_chain());

        let plain = Target::parse("postgres://127.0.0.1/tokens").unwrap();
        assert_eq!(plain.mode, TlsMode::Prefer);
        assert!(!plain.checks_chain());
        let disabled = Target::parse("postgres://127.0.0.1/tokens?sslmode=disable").unwrap();
        assert_eq!(disabled.config.get_ssl_mode(), SslMode::Disable);
        // libpq: a root certificate makes even `require` check the chain.
        let require = Target::parse("postgres://h/db?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert!(require.checks_chain());
        let client = Target::parse("postgres://h/db?sslcert=c.pem&sslkey=k.pem").unwrap();
        assert_eq!(
            client.client_certificate,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        let error = Target::parse("postgres://h/db?sslcert=c.pem")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslcert and sslkey go together"), "{error}");
    }

    #[test]
    fn a_bad_sslmode_is_named_and_the_password_is_not() {
        let error = Target::parse("postgres://u:s3cret@h/db?sslmode=verify")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslmode \"verify\""), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        let error = Target::parse("postgres://h/db?sslmode=verify-full&sslrootcert=%FF")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslrootcert"), "{error}");
        let missing = Target::parse("postgres://h/db?sslmode=verify-full&sslrootcert=/nowhere.pem")
            .unwrap()
            .connector()
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(missing.contains("sslrootcert /nowhere.pem"), "{missing}");
    }

    #[test]
    fn unverified_connections_to_other_machines_are_advised_against() {
        assert_eq!(advice("postgres://127.0.0.1/db"), None);
        assert_eq!(advice("postgres://localhost/db?sslmode=disable"), None);
        assert_eq!(advice("postgres://db.example/db?sslmode=verify-full"), None);
        for (url, says) in [
            (
                "postgres://db.example/db?sslmode=disable",
                "is not encrypted",
            ),
            ("postgres://db.example/db", "not verified"),
            ("postgres://db.example/db?sslmode=require", "not verified"),
            (
                "postgres://db.example/db?sslmode=verify-ca",
                "name is not checked",
            ),
        ] {
            let advice = advice(url).unwrap_or_default();
            assert!(advice.contains(says), "{url}: {advice}");
            assert!(advice.contains("sslmode=verify-full"), "{url}: {advice}");
        }
    }
}
