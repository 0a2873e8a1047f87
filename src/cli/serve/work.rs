//! How much repository work the server does at once (docs/api.md "Load"): [`Workers`] holds two
//! lanes of `--workers` permits each (default the number of cores), one for the read routes
//! (listings, show, diff, …), one for the blobs downloads decrypt. Each piece of work waits its
//! turn for a permit of its lane (first come, first served) and gives it back as soon as it is
//! done, so a burst of requests queues instead of thrashing the cores, a listing never waits
//! behind downloads, downloads take turns blob by blob, and a download whose client is slow or gone
//! holds no permit while it waits for the socket. [`Workers::download_slot`] bounds the downloads
//! in flight (each one parks a blocking thread while its client reads); more wait for a slot
//! without holding a thread.

use super::routes::ApiError;
use axum::http::StatusCode;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Downloads in flight at once; more wait for a slot. Below tokio's 512 blocking threads, so the
/// read routes always find one.
pub const MAX_DOWNLOADS: usize = 256;

/// The server's worker permits and download slots.
pub struct Workers {
    /// The read routes' lane.
    reads: Arc<Semaphore>,
    /// The downloads' lane: one permit per blob.
    blobs: Arc<Semaphore>,
    downloads: Arc<Semaphore>,
}

/// The number of cores (at least 1): the default of `--workers`.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn gone() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the server is stopping")
}

impl Workers {
    /// `size` permits (at least 1) in each lane and [`MAX_DOWNLOADS`] download slots.
    pub fn new(size: usize) -> Self {
        let lane = || Arc::new(Semaphore::new(size.max(1)));
        Workers { reads: lane(), blobs: lane(), downloads: Arc::new(Semaphore::new(MAX_DOWNLOADS)) }
    }

    /// Permits free now in the reads' and the blobs' lane.
    #[cfg(test)]
    fn idle(&self) -> (usize, usize) {
        (self.reads.available_permits(), self.blobs.available_permits())
    }

    /// Runs the blocking `f` (a repository read) on a blocking thread once a reads' permit is free,
    /// holding it while `f` runs. A request dropped while it waits (its client went away) never
    /// runs `f`.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.reads.clone().acquire_owned().await.map_err(|_| gone())?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("task failed: {e}")))
        })
    }

    /// A download slot, waited for without holding a thread.
    pub async fn download_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.downloads.clone().acquire_owned().await.map_err(|_| gone())
    }

    /// A handle for a download's blocking producer to take blobs' permits with.
    pub fn gate<T: Send>(&self, tx: tokio::sync::mpsc::Sender<T>) -> Gate<T> {
        Gate { blobs: self.blobs.clone(), tx, handle: tokio::runtime::Handle::current() }
    }
}

/// A download producer's way to the permits: [`Gate::turn`] waits for one unless the client is
/// gone (the receiving end of its channel closed).
pub struct Gate<T> {
    blobs: Arc<Semaphore>,
    tx: tokio::sync::mpsc::Sender<T>,
    handle: tokio::runtime::Handle,
}

impl<T: Send> Gate<T> {
    /// Waits (blocking this thread) for a blobs' permit; `BrokenPipe` as soon as the client is
    /// gone, whether before or while waiting. Call from a blocking thread only.
    pub fn turn(&self) -> std::io::Result<OwnedSemaphorePermit> {
        let broken = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        if self.tx.is_closed() {
            return Err(broken());
        }
        self.handle.block_on(async {
            tokio::select! {
                biased;
                _ = self.tx.closed() => Err(broken()),
                p = self.blobs.clone().acquire_owned() => p.map_err(|_| broken()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_producer_whose_client_is_gone_stops_waiting_and_frees_its_place() {
        let w = Workers::new(1);
        let (tx, rx) = tokio::sync::mpsc::channel::<u8>(1);
        let gate = w.gate(tx);
        // The one permit is taken: the producer waits for it...
        let held = w.blobs.clone().acquire_owned().await.unwrap();
        let waiting = tokio::task::spawn_blocking(move || gate.turn().map(drop));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // ...until its client goes away: it gives up without the permit.
        drop(rx);
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        drop(held);
        assert_eq!(w.idle(), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_waits_its_turn_and_no_more_than_the_permits_run_at_once() {
        let w = Arc::new(Workers::new(2));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (w, running, most) = (w.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                w.run(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    running.fetch_sub(1, SeqCst);
                    Ok(())
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(w.idle(), (2, 2));
    }
}
