//! The webhook receiver: a small HTTP/1 listener (hyper, on a one-thread tokio runtime of its
//! own) that reads each delivery's raw body within bounds and hands it to a handler, which
//! decides the answer ([`removebgvideo_core::inbox`]). It only moves bytes: verifying, dropping
//! duplicates and feeding waits are the handler's.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use removebgvideo_core::http::Headers;
use removebgvideo_core::inbox::{self, MAX_BODY_BYTES, Receipt};
use removebgvideo_core::{Error, ErrorCode};

/// Decides the answer to one delivery (headers and raw body) and records it.
pub type DeliveryHandler = Arc<dyn Fn(&Headers, &[u8]) -> Receipt + Send + Sync>;

/// Where and how a receiver listens.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverOptions {
    /// The address to bind (loopback unless a tunnel or gateway on another host forwards).
    pub host: IpAddr,
    /// The port; 0 lets the OS choose.
    pub port: u16,
    /// The path of the URL handed to the API (deliveries to any path are taken).
    pub path: String,
    /// The URL the API should deliver to when it is not the receiver's own (the public URL of a
    /// tunnel or gateway that forwards to it).
    pub public_url: Option<String>,
    /// The longest wait for a request's head, and between requests on a kept connection.
    pub header_timeout: Duration,
    /// The longest wait for a whole body once its head came.
    pub body_timeout: Duration,
    /// The largest body read; a larger one is answered 413 unread.
    pub max_body_bytes: usize,
    /// Connections served at once; more wait in the OS's backlog.
    pub max_connections: usize,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            path: "/webhooks".into(),
            public_url: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body_bytes: MAX_BODY_BYTES,
            max_connections: 512,
        }
    }
}

/// What a receiver answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Deliveries verified and taken.
    pub accepted: u64,
    /// Deliveries verified and taken before (answered 200, not handed on).
    pub duplicates: u64,
    /// Requests refused (not verified, too large, too slow, not a POST).
    pub rejected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

/// A running receiver; stopped when dropped (connections under way are cut).
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    url: String,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Binds and starts serving; every delivery goes to `handler`.
    pub fn start(
        options: &ReceiverOptions,
        handler: DeliveryHandler,
    ) -> Result<WebhookReceiver, Error> {
        check(options)?;
        let listener = std::net::TcpListener::bind((options.host, options.port))
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|e| {
                Error::new(
                    ErrorCode::ConnectionError,
                    format!(
                        "the webhook receiver cannot listen on {}:{}: {e}",
                        options.host, options.port
                    ),
                )
            })?;
        let addr = listener.local_addr().map_err(|e| {
            Error::new(ErrorCode::ConnectionError, format!("no local address: {e}"))
        })?;
        let url = match &options.public_url {
            Some(url) => url.clone(),
            None => format!("http://{addr}{}", options.path),
        };
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::new(ErrorCode::SdkBug, format!("no runtime: {e}")))?;
        let serving = Serving {
            options: options.clone(),
            handler,
            counters: counters.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("removebgvideo-webhooks".into())
            .spawn(move || runtime.block_on(serving.run(listener, stopped)))
            .map_err(|e| Error::new(ErrorCode::SdkBug, format!("no receiver thread: {e}")))?;
        tracing::info!(target: "removebgvideo", "webhook receiver listening on {addr} ({url})");
        Ok(WebhookReceiver {
            addr,
            url,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URL to give the API as `webhook_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it answered so far.
    pub fn stats(&self) -> ReceiverStats {
        ReceiverStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            duplicates: self.counters.duplicates.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
        }
    }

    /// Stops listening and waits for the receiver's thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.halt();
    }
}

fn check(options: &ReceiverOptions) -> Result<(), Error> {
    use removebgvideo_core::validate::{Problem, ProblemCode};
    let mut problems = Vec::new();
    for (path, value) in [
        ("/header_timeout", options.header_timeout),
        ("/body_timeout", options.body_timeout),
    ] {
        if value.is_zero() {
            problems.push(Problem::error(
                path,
                ProblemCode::OutOfRange,
                format!("{} must be more than 0 s", &path[1..]),
            ));
        }
    }
    if options.max_connections == 0 {
        problems.push(Problem::error(
            "/max_connections",
            ProblemCode::OutOfRange,
            "max_connections must be at least 1",
        ));
    }
    if options.max_body_bytes == 0 || options.max_body_bytes > MAX_BODY_BYTES {
        problems.push(Problem::error(
            "/max_body_bytes",
            ProblemCode::OutOfRange,
            format!("max_body_bytes must be from 1 to {MAX_BODY_BYTES}"),
        ));
    }
    if let Some(url) = &options.public_url
        && !matches!(url::Url::parse(url), Ok(parsed) if matches!(parsed.scheme(), "http" | "https"))
    {
        problems.push(Problem::error(
            "/public_url",
            ProblemCode::InvalidUrl,
            "public_url must be an http(s) URL",
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(problems))
    }
}

/// The serving side, moved onto the receiver's thread.
struct Serving {
    options: ReceiverOptions,
    handler: DeliveryHandler,
    counters: Arc<Counters>,
}

impl Serving {
    async fn run(
        self,
        listener: std::net::TcpListener,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
    ) {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(target: "removebgvideo", "the webhook receiver cannot serve: {e}");
                return;
            }
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(self.options.max_connections));
        let shared = Arc::new(self);
        loop {
            let slot = tokio::select! {
                _ = &mut stopped => return,
                slot = slots.clone().acquire_owned() => slot,
            };
            let Ok(slot) = slot else { return };
            let (stream, peer) = tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // A connection that failed while queued (reset): the next one.
                    Err(_) => continue,
                },
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = {
                    let shared = shared.clone();
                    service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.answer(request, peer).await) }
                    })
                };
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(shared.options.header_timeout)
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = connection.await;
                drop(slot);
            });
        }
    }

    async fn answer(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        if request.method() != Method::POST {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"received":false,"error":{"code":"method_not_allowed","message":"deliveries are POSTs"}}"#
                    .into(),
            );
        }
        let headers: Headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let limit = self.options.max_body_bytes;
        let body = Limited::new(request.into_body(), limit).collect();
        let receipt = match tokio::time::timeout(self.options.body_timeout, body).await {
            Ok(Ok(collected)) => (self.handler)(&headers, &collected.to_bytes()),
            Ok(Err(_)) => inbox::too_large(limit + 1),
            Err(_) => Receipt::Rejected {
                status: 408,
                error: Error::new(
                    ErrorCode::WebhookInvalidPayload,
                    format!(
                        "the webhook body did not arrive within {} s",
                        self.options.body_timeout.as_secs_f64()
                    ),
                ),
            },
        };
        match &receipt {
            Receipt::Accepted(_) => self.counters.accepted.fetch_add(1, Ordering::Relaxed),
            Receipt::Duplicate(_) => self.counters.duplicates.fetch_add(1, Ordering::Relaxed),
            Receipt::Rejected { error, .. } => {
                // Never the body: a forged delivery may carry anything, a true one a signed URL.
                tracing::warn!(
                    target: "removebgvideo",
                    "webhook delivery from {peer} refused ({}): {} (delivery id {})",
                    error.code,
                    error.message,
                    headers
                        .get(removebgvideo_core::webhook::DELIVERY_ID_HEADER)
                        .unwrap_or("none"),
                );
                self.counters.rejected.fetch_add(1, Ordering::Relaxed)
            }
        };
        let status = StatusCode::from_u16(receipt.status()).unwrap_or(StatusCode::BAD_REQUEST);
        reply(status, receipt.answer_body())
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
