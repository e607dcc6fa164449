//! TLS to an `https://` collector: which PEM files apply to a signal's exporter, reading and
//! checking them when settings are resolved (start-up, `check-config`, SIGHUP), and the trust
//! both transports build their client config from. rustls on ring for both: tonic's
//! `ClientTlsConfig` for gRPC, codexd's own reqwest client for HTTP/protobuf.
//!
//! Each value: signal-specific variable > generic variable > file key (the variables name
//! files; opentelemetry-otlp does not read them itself).
//!
//! | value              | variables (first set wins)                                                  | file key                |
//! |--------------------|-----------------------------------------------------------------------------|-------------------------|
//! | extra CAs          | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CERTIFICATE` | `otlp_ca_file`  |
//! | client certificate | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_CLIENT_CERTIFICATE`, `…_OTLP_CLIENT_CERTIFICATE` | `otlp_client_cert_file` |
//! | client key         | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_CLIENT_KEY`, `…_OTLP_CLIENT_KEY`       | `otlp_client_key_file`  |
//!
//! | endpoint   | files                         | exports                                             |
//! |------------|-------------------------------|-----------------------------------------------------|
//! | `https://` | none                          | TLS, server verified against the system's roots     |
//! | `https://` | CA                            | TLS, system roots plus the CA file's certificates   |
//! | `https://` | client certificate and key    | mTLS: the certificate is presented when asked       |
//! | `https://` | certificate without key (or the reverse) | error naming the one given           |
//! | `http://`  | any                           | plaintext; the files are not read, a warning names them |
//!
//! A file that cannot be read, holds no PEM certificate (CA, client certificate) or no
//! unencrypted PKCS#8 / PKCS#1 / SEC1 key, or a key that does not match its certificate or
//! that ring cannot use, is an error naming the key or variable and the path — never the
//! key's content.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codexd_actors::redact;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tonic::transport::{ClientTlsConfig, Identity};

use super::TelemetryError;
use super::signal::Signal;
use crate::config::TelemetryConfig;
use crate::env::Env;

/// A PEM file as read when the settings were resolved: who named it, where it is, its bytes
/// (checked to parse). `Debug` shows who named it and the path, never the content.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The key or variable that named it, e.g. `telemetry.otlp_ca_file`.
    pub origin: String,
    /// The file.
    pub path: PathBuf,
    pem: Vec<u8>,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.origin, self.path.display())
    }
}

/// TLS for one `https://` exporter: the system's roots plus these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Extra CA certificates to trust.
    pub ca: Option<PemFile>,
    /// The client certificate presented when the collector asks for one.
    pub client: Option<ClientCert>,
}

/// A client certificate chain and its key (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub cert: PemFile,
    /// Its private key.
    pub key: PemFile,
}

impl Tls {
    /// What the server's certificate is checked against, for logs: `system roots` or
    /// `system roots + <origin> (<path>)`.
    pub fn trust(&self) -> String {
        match &self.ca {
            Some(ca) => format!("system roots + {ca:?}"),
            None => "system roots".to_owned(),
        }
    }
}

/// A file named by a key or variable, not read yet.
struct Named {
    origin: String,
    path: PathBuf,
}

impl Named {
    fn error(&self, reason: impl fmt::Display) -> TelemetryError {
        TelemetryError::Tls {
            origin: self.origin.clone(),
            reason: format!("{}: {reason}", quote(&self.path)),
        }
    }

    fn read(self) -> Result<PemFile, TelemetryError> {
        let pem = std::fs::read(&self.path).map_err(|e| self.error(format!("cannot read: {e}")))?;
        Ok(PemFile {
            origin: self.origin,
            path: self.path,
            pem,
        })
    }
}

/// The TLS files of `signal`'s exporter to `endpoint`, read and checked. `None` for a
/// plaintext `http://` endpoint; files named for one are left unread and `warnings` says so.
pub(super) fn resolve(
    cfg: &TelemetryConfig,
    env: &Env,
    signal: Signal,
    endpoint: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Tls>, TelemetryError> {
    let pick = |suffix: &str, key: &'static str, file: &Option<PathBuf>| {
        named(env, &signal.variables(suffix), key, file.as_deref())
    };
    let ca = pick("CERTIFICATE", "telemetry.otlp_ca_file", &cfg.otlp_ca_file);
    let cert = pick(
        "CLIENT_CERTIFICATE",
        "telemetry.otlp_client_cert_file",
        &cfg.otlp_client_cert_file,
    );
    let key = pick(
        "CLIENT_KEY",
        "telemetry.otlp_client_key_file",
        &cfg.otlp_client_key_file,
    );
    if !is_https(endpoint) {
        let unused: Vec<&str> = [&ca, &cert, &key]
            .into_iter()
            .flatten()
            .map(|n| n.origin.as_str())
            .collect();
        if !unused.is_empty() {
            warnings.push(format!(
                "{} not used: the {} endpoint {} is plaintext http://; use https:// for TLS",
                unused.join(", "),
                signal.name(),
                redact::url(endpoint)
            ));
        }
        return Ok(None);
    }
    let ca = ca.map(read_ca).transpose()?;
    let client = match (cert, key) {
        (None, None) => None,
        (Some(given), None) => return Err(given.error(missing(signal, "CLIENT_KEY"))),
        (None, Some(given)) => return Err(given.error(missing(signal, "CLIENT_CERTIFICATE"))),
        (Some(cert), Some(key)) => Some(read_client(cert, key)?),
    };
    Ok(Some(Tls { ca, client }))
}

/// The first of `variables` that is set, else the file's `key`.
fn named(env: &Env, variables: &[String], key: &'static str, file: Option<&Path>) -> Option<Named> {
    let from_env = variables.iter().find_map(|variable| {
        env.var(variable).map(|path| Named {
            origin: variable.clone(),
            path: PathBuf::from(path),
        })
    });
    from_env.or_else(|| {
        file.map(|path| Named {
            origin: key.to_owned(),
            path: path.to_owned(),
        })
    })
}

/// What to set when only half of a client certificate was given.
fn missing(signal: Signal, suffix: &str) -> String {
    let [_, generic] = signal.variables(suffix);
    let (what, key) = match suffix {
        "CLIENT_KEY" => ("its key", "telemetry.otlp_client_key_file"),
        _ => (
            "a certificate for the key",
            "telemetry.otlp_client_cert_file",
        ),
    };
    format!("mTLS needs {what} as well: set {generic} or {key}")
}

fn is_https(endpoint: &str) -> bool {
    endpoint
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

fn read_ca(named: Named) -> Result<PemFile, TelemetryError> {
    let file = named.read()?;
    let certs = certificates(&file.pem).map_err(|reason| error(&file, reason))?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            error(
                &file,
                format!("certificate {} is not a usable CA: {e}", index + 1),
            )
        })?;
    }
    Ok(file)
}

/// Reads both files and checks that ring can sign with the key for the certificate.
fn read_client(cert: Named, key: Named) -> Result<ClientCert, TelemetryError> {
    let (cert, key) = (cert.read()?, key.read()?);
    let chain = certificates(&cert.pem).map_err(|reason| error(&cert, reason))?;
    let private = private_key(&key.pem).map_err(|reason| error(&key, reason))?;
    builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain, private)
        .map_err(|e| {
            error(
                &key,
                format!(
                    "cannot be used with the certificate {}: {e}",
                    quote(&cert.path)
                ),
            )
        })?;
    Ok(ClientCert { cert, key })
}

fn error(file: &PemFile, reason: impl fmt::Display) -> TelemetryError {
    TelemetryError::Tls {
        origin: file.origin.clone(),
        reason: format!("{}: {reason}", quote(&file.path)),
    }
}

fn quote(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Every `CERTIFICATE` block of `pem`; none is an error.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    match certs.is_empty() {
        true => Err("no PEM CERTIFICATE in it".to_owned()),
        false => Ok(certs),
    }
}

/// The first private key of `pem`. The problem never describes the content beyond its kind.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => "no private key in it (PKCS#8, PKCS#1 or SEC1 PEM; \
             encrypted keys are not supported)"
            .to_owned(),
        _ => "not a PEM private key".to_owned(),
    })
}

/// rustls on ring, safe default protocol versions.
fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// The certificates a collector's may chain to: the system's roots, then the CA file's.
/// Read anew for every exporter built, so a reload also sees changed system roots.
pub(super) fn roots(tls: &Tls) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(ca) = &tls.ca {
        roots.add_parsable_certificates(certificates(&ca.pem).unwrap_or_default());
    }
    roots
}

/// The rustls config of codexd's OTLP/HTTP client: `roots`, the client certificate when
/// one is set, HTTP/1.1.
pub(super) fn rustls_config(tls: &Tls, roots: RootCertStore) -> Result<ClientConfig, String> {
    let builder = builder().with_root_certificates(roots);
    let mut config = match &tls.client {
        Some(client) => {
            let chain = certificates(&client.cert.pem)?;
            let key = private_key(&client.key.pem)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// tonic's TLS config for OTLP/gRPC: the same `roots` and client certificate (tonic adds
/// ALPN `h2` and takes the server name from the endpoint).
pub(super) fn tonic_config(tls: &Tls, roots: RootCertStore) -> ClientTlsConfig {
    let config = ClientTlsConfig::new().trust_anchors(roots.roots);
    match &tls.client {
        Some(client) => config.identity(Identity::from_pem(&client.cert.pem, &client.key.pem)),
        None => config,
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
