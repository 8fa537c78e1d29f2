//! A stateful local emulator of the RemoveBGVideo API, for tests, demos and users' own
//! integration tests.
//!
//! It serves every endpoint over real HTTP on a loopback port, validates requests with the
//! same core as the SDK, moves jobs through their lifecycle on a clock that can run many times
//! faster than real time, delivers signed webhooks, and fails on purpose when asked (see
//! [`faults`]). Start one with [`Sandbox::start`]; it stops when dropped.

mod app;
pub mod clock;
pub mod config;
pub mod faults;
mod idempotency;
pub mod lifecycle;
pub mod log;
mod openapi;
pub mod outputs;
pub mod parsers;
pub mod ratelimit;
mod store;
mod transport;
mod uploads;
mod webhooks;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use app::api_routes;
pub use config::{
    DEMO_KEY, FaultConfig, KeyConfig, NO_CREDITS_KEY, RATE_LIMITED_KEY, SandboxConfig,
};
pub use faults::FAULT_HEADER;
pub use log::RequestRecord;
pub use outputs::output_bytes;
use tokio::sync::watch;
pub use uploads::minimal_mp4;

/// A job as the sandbox holds it, with its input.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedJob {
    /// The job id.
    pub id: String,
    /// The `video_url` it was created with.
    pub video_url: String,
    /// The metadata it was created with.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Its status when last materialized.
    pub status: removebgvideo_core::JobStatus,
    /// When its current run ends (or ended), on the sandbox's clock (the wall clock at speed
    /// 1): how late a client learned of the end is measured from here.
    pub ends_at: Option<removebgvideo_core::Timestamp>,
}

/// A running sandbox. Dropping it stops the server and removes its uploads.
#[derive(Debug)]
pub struct Sandbox {
    base_url: String,
    shared: Arc<app::Shared>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox on `config.port` of 127.0.0.1 (0 lets the OS choose), on its own
    /// threads, and returns once it accepts connections.
    ///
    /// A configuration that [`SandboxConfig::check`] refuses is an `InvalidInput` error whose
    /// message names each unusable field.
    pub fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        config.check().map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, error.message)
        })?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("removebgvideo-sandbox".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("removebgvideo-sandbox-worker")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener =
                        match tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await {
                            Ok(listener) => listener,
                            Err(error) => {
                                let _ = ready_tx.send(Err(error));
                                return;
                            }
                        };
                    let address = listener
                        .local_addr()
                        .expect("a bound listener has an address");
                    let shared = match app::Shared::new(config, format!("http://{address}")) {
                        Ok(shared) => Arc::new(shared),
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let router = app::router(shared.clone());
                    let _ = ready_tx.send(Ok(shared.clone()));
                    transport::serve(listener, shared, router, stop_rx).await;
                });
                // Cancels open connections, timers and deliveries.
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        let shared = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the sandbox thread stopped before starting"))??;
        Ok(Sandbox {
            base_url: shared.base_url.clone(),
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The preset key with ample credits.
    pub fn demo_key(&self) -> &'static str {
        DEMO_KEY
    }

    /// The preset key with no credits.
    pub fn no_credits_key(&self) -> &'static str {
        NO_CREDITS_KEY
    }

    /// The preset key with a very low rate limit.
    pub fn rate_limited_key(&self) -> &'static str {
        RATE_LIMITED_KEY
    }

    /// Every accepted key.
    pub fn keys(&self) -> Vec<KeyConfig> {
        self.shared.config.all_keys()
    }

    /// The secret that signs webhooks.
    pub fn webhook_secret(&self) -> &str {
        &self.shared.config.webhook_secret
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// The folder uploads are stored in (removed when the sandbox stops).
    pub fn upload_dir(&self) -> &std::path::Path {
        self.shared.upload_dir.path()
    }

    /// Every request seen so far (the most recent 20 000), oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.log.snapshot()
    }

    /// Requests answered since the start, and those answered 429 (what `/sandbox/stats`
    /// says, without a request).
    pub fn request_counts(&self) -> (u64, u64) {
        (self.shared.log.total(), self.shared.log.rate_limited())
    }

    /// Connections being served now (at most `max_connections`).
    pub fn open_connections(&self) -> usize {
        self.shared
            .open_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every job created so far, with the input it was created from, oldest first (the
    /// sandbox's own state, for counting duplicates and losses).
    pub fn created_jobs(&self) -> Vec<CreatedJob> {
        self.shared.store.lock().expect("store").created_jobs()
    }

    /// Stops the server and waits for its threads.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
            // Now, not when the last reference to the state goes: a delivery still blocked
            // in a worker thread after the runtime stopped may hold one for seconds.
            let _ = std::fs::remove_dir_all(self.shared.upload_dir.path());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_now();
    }
}
