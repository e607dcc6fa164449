//! TLS to the IRC server: certificates are verified (system roots plus `tls_ca_file`). A
//! loopback TLS server with a certificate from a throwaway CA (made with the `openssl` CLI,
//! `support/certs.rs`) is trusted only when that CA is configured.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/irc_agent.rs"]
mod irc_agent;

use std::sync::Arc;

use certs::{CertPair, TestCa};
use codexd_actors::irc::TlsSettings;
use irc_agent::{Agent, settings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A TLS IRC server that welcomes whoever registers; returns its port.
async fn tls_server(server: &CertPair) -> u16 {
    let certs = CertificateDer::pem_file_iter(&server.cert)
        .expect("cert file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(&server.key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (read, mut write) = tokio::io::split(tls);
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply = match line.split(' ').next() {
                        Some("CAP") if line.starts_with("CAP LS") => {
                            ":tls CAP * LS :\r\n".to_owned()
                        }
                        Some("USER") => {
                            ":tls 001 fake-bot :Welcome fake-bot!bot@127.0.0.1\r\n".to_owned()
                        }
                        _ => continue,
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn tls_with_the_configured_ca_connects_and_an_unknown_issuer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = match TestCa::new(dir.path(), "irc") {
        Ok(ca) => ca,
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("peer missing under CI=true: {reason}")
        }
        Err(reason) => return eprintln!("SKIP: {reason}; TLS test not run"),
    };
    let port = tls_server(&ca.server("server")).await;

    let mut trusted = settings("localhost", port, "fake", "fake-bot");
    trusted.tls = Some(TlsSettings {
        ca_file: Some(ca.ca()),
    });
    let agent = Agent::start(trusted).await;
    let status = agent.wait_connected().await;
    assert_eq!(status.server, format!("localhost:{port}"));
    agent.stop();

    let mut untrusted = settings("localhost", port, "fake", "fake-bot");
    untrusted.tls = Some(TlsSettings { ca_file: None });
    let agent = Agent::start(untrusted).await;
    let status = agent
        .wait_status("a certificate error", |s| s.last_error.is_some())
        .await;
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("certificate"), "{error}");
    assert_ne!(status.state, "connected");
    agent.stop();

    let mut missing = settings("localhost", port, "fake", "fake-bot");
    missing.tls = Some(TlsSettings {
        ca_file: Some(dir.path().join("nope.pem")),
    });
    let agent = Agent::start(missing).await;
    let status = agent
        .wait_status("a CA file error", |s| s.last_error.is_some())
        .await;
    let error = status.last_error.unwrap_or_default();
    assert!(
        error.contains("cannot read CA file") && error.contains("nope.pem"),
        "{error}"
    );
    agent.stop();
}
