//! An HTTPS listener beside the plain one, for callers that only speak TLS — above all the
//! Kubernetes API server calling `/admission/validate` and `/admission/mutate`, which
//! never calls a webhook over plain HTTP.
//!
//! Handshakes run in their own tasks (bounded by a timeout), so a slow or silent client
//! never holds up the next connection; finished handshakes are handed to axum through
//! [`axum::serve::Listener`], so graceful shutdown works the same as on the plain port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::config::TlsConfig;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of TLS from a PEM certificate chain and a PEM private key.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> idp_core::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| {
            idp_core::Error::invalid_input(format!(
                "tls.certFile {}: not a readable PEM certificate chain ({e}); give the file with the server certificate (and its intermediates)",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(idp_core::Error::invalid_input(format!(
            "tls.certFile {}: holds no CERTIFICATE block",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        idp_core::Error::invalid_input(format!(
            "tls.keyFile {}: not a readable PEM private key ({e}); give the key of the certificate in tls.certFile",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| idp_core::Error::internal(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            idp_core::Error::invalid_input(format!(
                "tls.certFile and tls.keyFile do not form a usable certificate and key: {e}"
            ))
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A bound HTTPS listener: TLS streams whose handshake finished.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl TlsListener {
    /// Bind `config.listen` and start accepting.
    pub(crate) async fn bind(config: &TlsConfig) -> idp_core::Result<Self> {
        let acceptor = acceptor(&config.cert_file, &config.key_file)?;
        let addr = super::config::parse_listen(&config.listen)?;
        let tcp = TcpListener::bind(addr).await.map_err(|e| {
            idp_core::Error::unavailable(format!(
                "cannot listen for HTTPS on {addr}; change tls.listen"
            ))
            .with_source(e)
        })?;
        let local = tcp.local_addr().map_err(|e| {
            idp_core::Error::internal("cannot read the bound HTTPS address").with_source(e)
        })?;
        let (tx, ready) = mpsc::channel(64);
        let accept_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "HTTPS accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            local,
            ready,
            accept_task,
        })
    }

    /// The bound address.
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
