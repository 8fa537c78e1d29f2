//! The HTTP/1.1 server loop. Hand-driven hyper (rather than `axum::serve`) because a fault
//! must be able to close a connection without answering, before or after the request ran.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use removebgvideo_core::http::{
    API_KEY_HEADER, IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, REQUEST_ID_HEADER,
};
use removebgvideo_core::{ErrorCode, Timestamp, webhook};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::app::Shared;
use crate::faults::FAULT_HEADER;
use crate::log::{RequestRecord, key_prefix, redact_path};
use crate::store::Failure;

/// How long the accept loop pauses after an accept error such as running out of descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Returned to hyper to close the connection without an answer (a dropped-connection fault).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a sandbox fault")
    }
}

impl std::error::Error for Dropped {}

/// Accepts connections until `shutdown` turns true.
///
/// Hostile clients are bounded three ways: hyper gets a timer, so its header read timeout
/// (which also ends kept-alive connections idle that long) is on, and a client trickling
/// headers cannot hold a connection; at most `max_connections` are served at once, the
/// next ones waiting in the listen backlog until one closes; and an accept error (out of
/// file descriptors) pauses the loop instead of spinning it.
pub async fn serve(
    listener: TcpListener,
    app: Arc<Shared>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(app.config.header_read_timeout());
    loop {
        let permit = tokio::select! {
            permit = app.connections.clone().acquire_owned() => permit,
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Small JSON exchanges: do not wait to fill packets.
        let _ = stream.set_nodelay(true);
        let served = Served::new(&app, permit);
        let (app, router) = (app.clone(), router.clone());
        let service =
            hyper::service::service_fn(move |request| handle(app.clone(), router.clone(), request));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(served);
        });
    }
}

/// A connection being served: its slot under the cap, and its place in the count, both
/// released when the connection ends, however it ends.
struct Served {
    app: Arc<Shared>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Served {
    fn new(app: &Arc<Shared>, permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        app.open_connections.fetch_add(1, Ordering::Relaxed);
        Served {
            app: app.clone(),
            _permit: permit,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.app.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

fn header<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    app: Arc<Shared>,
    router: Router,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let started = Instant::now();
    let request_id = app.request_id();
    let path = request.uri().path().to_owned();
    let arrived = Timestamp::from(SystemTime::now());
    let mut record = RequestRecord {
        at: webhook::format_timestamp(arrived),
        at_ms: arrived.unix_millis(),
        request_id: request_id.clone(),
        method: request.method().to_string(),
        // Output tokens and file query strings are secrets: never logged.
        path: request
            .uri()
            .path_and_query()
            .map(|p| redact_path(p.as_str()))
            .unwrap_or_default(),
        status: None,
        key_prefix: header(&request, API_KEY_HEADER).map(key_prefix),
        idempotency_key: header(&request, IDEMPOTENCY_KEY_HEADER).map(str::to_owned),
        replayed: false,
        fault: None,
        latency_ms: 0,
    };
    let api_route = path.starts_with("/v1/") || path.starts_with("/api/");
    let plan = app.faults.decide(
        header(&request, API_KEY_HEADER),
        header(&request, FAULT_HEADER),
        api_route,
        path.starts_with("/sandbox/outputs/"),
    );
    let mut response = match plan {
        Err(message) => Failure::new(400, ErrorCode::InvalidRequest, message).into_body_response(),
        Ok(plan) => {
            record.fault = plan.describe();
            if !plan.latency.is_zero() {
                tokio::time::sleep(plan.latency).await;
            }
            if plan.drop_before {
                return finish_dropped(&app, record, started);
            }
            let response = match plan.status {
                Some(status) => injected_error(status),
                None => {
                    request.extensions_mut().insert(plan.clone());
                    let request = request.map(Body::new);
                    let Ok(response) = router.oneshot(request).await.map_err(|e: Infallible| e);
                    response
                }
            };
            if plan.drop_after {
                return finish_dropped(&app, record, started);
            }
            if let Some(status) = plan.status_after {
                // The work is done; the answer is lost behind a failing gateway.
                drop(response);
                injected_error(status)
            } else if plan.malformed {
                malformed(response)
            } else {
                response
            }
        }
    };
    if response.status().as_u16() >= 400 {
        response = with_request_id_in_body(response, &request_id).await;
    }
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id).expect("ascii id"),
    );
    record.status = Some(response.status().as_u16());
    record.replayed = response.headers().contains_key(IDEMPOTENT_REPLAYED_HEADER);
    record.latency_ms = started.elapsed().as_millis() as u64;
    app.log.push(record);
    Ok(response)
}

fn finish_dropped(
    app: &Shared,
    mut record: RequestRecord,
    started: Instant,
) -> Result<Response<Body>, Dropped> {
    record.latency_ms = started.elapsed().as_millis() as u64;
    app.log.push(record);
    Err(Dropped)
}

impl Failure {
    fn into_body_response(self) -> Response<Body> {
        axum::response::IntoResponse::into_response(self)
    }
}

fn injected_error(status: u16) -> Response<Body> {
    let code = match status {
        429 => ErrorCode::RateLimited,
        504 => ErrorCode::Timeout,
        500..=599 => ErrorCode::InternalError,
        _ => ErrorCode::InvalidRequest,
    };
    let mut response =
        Failure::new(status, code, format!("Injected fault: HTTP {status}")).into_body_response();
    if status == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Keeps the status and headers, replaces a JSON body with a cut-off one.
fn malformed(response: Response<Body>) -> Response<Body> {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(r#"{"id": "job_00"#))
}

/// Error bodies carry the request id too, as the API documents.
async fn with_request_id_in_body(response: Response<Body>, request_id: &str) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let patched = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut value| {
            let error = value.get_mut("error")?.as_object_mut()?;
            error
                .entry("request_id")
                .or_insert_with(|| Value::from(request_id));
            serde_json::to_vec(&value).ok()
        });
    match patched {
        Some(body) => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            Response::from_parts(parts, Body::from(body))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
