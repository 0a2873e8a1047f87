//! The accept loop: one task per connection (a TLS handshake, when there is TLS, runs in that task,
//! so a slow client never holds up the others), HTTP/1.1 through hyper, and the clean stop on
//! SIGINT/SIGTERM (the cancel flag): no new connections, running jobs cancelled, open connections
//! given a moment to finish.

use super::routes::{router, Shared};
use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tower_service::Service;

/// The TLS configuration of a PEM certificate chain and private key (rustls with the ring provider).
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let usage = |m: String| crate::cli::CliError::Usage(m);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| usage(format!("--tls-cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(usage(format!("--tls-cert {}: no certificate in it", cert.display())).into());
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| usage(format!("--tls-key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| usage(format!("--tls-cert/--tls-key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `state` on `addr` until `cancel` is set.
pub async fn serve(
    state: Shared,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let app = router(state.clone());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    eprintln!("listening on {}://{local}", if acceptor.is_some() { "https" } else { "http" });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut open = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    tracing::warn!("serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tick.tick() => {
                if cancel.load(Ordering::Relaxed) { break; }
                while open.try_join_next().is_some() {}
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        let mut stop = stop_rx.clone();
        open.spawn(async move {
            let hyper_service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(req)
            });
            // A client gets 30 s to send a request's headers (no slow-header connection piles up).
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), hyper_service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
                    }
                }
            }
        });
    }
    drop(listener);
    eprintln!("cairn: stopping: cancelling running jobs");
    state.jobs.cancel_all().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while open.join_next().await.is_some() {} }).await;
    Ok(())
}
