//! The writer lease of a session (format-spec §10.1): taken when the session starts, renewed as a
//! new lease object every [`lease::LEASE_RENEW_SECS`] (never an overwrite), checked before a commit,
//! and deleted when the session ends.

use crate::codec::object;
use crate::crypto::Session;
use crate::error::{Error, Result};
use crate::layout::Object;
use crate::lease::{self, Lease};
use crate::repository::{hostname, Repository};
use crate::time::Time;
use crossbeam_channel::{bounded, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Keeps a writer lease alive: a new lease object every [`lease::LEASE_RENEW_SECS`], the old one
/// deleted after, never an overwrite (format-spec §10.1).
pub(crate) struct LeaseKeeper {
    stop: Sender<()>,
    handle: Option<JoinHandle<()>>,
    state: Arc<Mutex<LeaseState>>,
}

struct LeaseState {
    seq: u32,
    last_backend_time: Option<Time>,
    error: Option<String>,
}

fn write_lease(
    repo_backend: &crate::backend::DynBackend,
    keys: &crate::crypto::MasterKeys,
    session: &[u8; 32],
    seq: u32,
    operation: &str,
) -> Result<Option<Time>> {
    let path = Object::Lease { session: *session, seq }.path();
    let l = Lease::V1 {
        session: *session,
        seq,
        host: hostname(),
        pid: std::process::id(),
        duration_secs: lease::LEASE_DURATION_SECS,
        operation: operation.into(),
        client_time: Time::now(),
    };
    repo_backend.write_new(&path, &object::encode_lease(keys, &path, &l))?;
    Ok(repo_backend.stat(&path)?.and_then(|i| i.modified))
}

impl LeaseKeeper {
    pub(crate) fn start(repo: &Repository, session: &Session, operation: &str) -> Result<Self> {
        let backend = repo.backend().clone();
        let keys = repo.keys().clone();
        let public = session.public;
        let t = write_lease(&backend, &keys, &public, 0, operation)?;
        let state = Arc::new(Mutex::new(LeaseState { seq: 0, last_backend_time: t, error: None }));
        let (stop, stop_rx) = bounded::<()>(1);
        let st = state.clone();
        let op = operation.to_string();
        let handle = std::thread::spawn(move || loop {
            match stop_rx.recv_timeout(Duration::from_secs(lease::LEASE_RENEW_SECS)) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                _ => {
                    let seq = st.lock().unwrap_or_else(|p| p.into_inner()).seq;
                    for s in 0..=seq {
                        let _ = backend.delete(&Object::Lease { session: public, seq: s }.path());
                    }
                    return;
                }
            }
            let seq = st.lock().unwrap_or_else(|p| p.into_inner()).seq + 1;
            match write_lease(&backend, &keys, &public, seq, &op) {
                Ok(t) => {
                    let mut g = st.lock().unwrap_or_else(|p| p.into_inner());
                    if let (Some(prev), Some(now)) = (g.last_backend_time, t) {
                        if now.secs - prev.secs > lease::LEASE_DURATION_SECS as i64 {
                            g.error = Some(format!("lease lapsed: {}s between renewals", now.secs - prev.secs));
                        }
                    }
                    g.seq = seq;
                    g.last_backend_time = t;
                    let _ = backend.delete(&Object::Lease { session: public, seq: seq - 1 }.path());
                }
                Err(e) => {
                    tracing::warn!("renewing the lease failed: {e}");
                }
            }
        });
        Ok(LeaseKeeper { stop, handle: Some(handle), state })
    }

    /// Fails when the lease lapsed: a writer whose lease lapsed never publishes.
    pub(crate) fn check(&self) -> Result<()> {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &g.error {
            return Err(Error::Locked(e.clone()));
        }
        if let Some(prev) = g.last_backend_time {
            let now = Time::now();
            // The backend's clock stamped the last renewal; allow for skew in our own reading.
            if now.secs - prev.secs > lease::LEASE_DURATION_SECS as i64 + 300 {
                return Err(Error::Locked(format!("the last lease renewal was {}s ago", now.secs - prev.secs)));
            }
        }
        Ok(())
    }

    pub(crate) fn release(mut self) {
        let _ = self.stop.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
