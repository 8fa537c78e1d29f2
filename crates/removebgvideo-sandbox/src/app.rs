//! The HTTP application: routes built from the core's operation table, the API guard (auth,
//! rate limit, idempotency) and the JSON handlers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, Router};
use removebgvideo_core::http::{
    API_KEY_HEADER, IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER,
};
use removebgvideo_core::requests::validate_idempotency_key;
use removebgvideo_core::validate::parse_and_validate;
use removebgvideo_core::{
    CreateJobRequest, ErrorCode, Job, ListJobsQuery, Operation, Problem, ProblemCode,
    StartJobRequest, UsageEventsQuery, UsageSummaryQuery, Validate,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::SandboxConfig;
use crate::faults::Faults;
use crate::idempotency::{Begin, IdempotencyStore, StoredResponse, Token};
use crate::log::RequestLog;
use crate::ratelimit::Admission;
use crate::store::{Failure, Store};
use crate::{outputs, uploads, webhooks};

/// Largest JSON body accepted (requests are small; uploads are streamed separately).
const MAX_JSON_BODY: usize = 1 << 20;

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: SandboxConfig,
    /// The virtual clock.
    pub clock: Clock,
    /// The state. A std mutex: never held across an await.
    pub store: Mutex<Store>,
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    /// Where uploads are stored; removed when the sandbox stops.
    pub upload_dir: tempfile::TempDir,
    /// Fault decisions.
    pub faults: Faults,
    /// Remembered Idempotency-Keys.
    pub idempotency: Mutex<IdempotencyStore>,
    /// The request log.
    pub log: RequestLog,
    /// The webhook HTTP client.
    pub webhook_agent: ureq::Agent,
    /// Keeps each job's deliveries in order.
    pub delivery_order: webhooks::DeliveryOrder,
    /// One permit per connection served at once (`max_connections`).
    pub connections: Arc<tokio::sync::Semaphore>,
    /// Connections being served now.
    pub open_connections: std::sync::atomic::AtomicUsize,
    next_request: AtomicU64,
}

impl Shared {
    /// Builds the shared state.
    pub fn new(config: SandboxConfig, base_url: String) -> std::io::Result<Self> {
        let store = Store::new(&config, Instant::now());
        Ok(Shared {
            clock: Clock::start(config.speed),
            store: Mutex::new(store),
            base_url,
            upload_dir: tempfile::Builder::new()
                .prefix("removebgvideo-sandbox-")
                .tempdir()?,
            faults: Faults::new(config.faults.clone()),
            idempotency: Mutex::new(IdempotencyStore::default()),
            log: RequestLog::new(config.log_to_stderr),
            webhook_agent: webhooks::agent(),
            delivery_order: webhooks::DeliveryOrder::default(),
            connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
            open_connections: std::sync::atomic::AtomicUsize::new(0),
            next_request: AtomicU64::new(1),
            config,
        })
    }

    /// A new request id.
    pub fn request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("req_{n:08}{:06x}", fastrand::u32(..0x100_0000))
    }

    /// Locks the state.
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .expect("the sandbox state lock is never poisoned: handlers do not panic")
    }

    /// Advances jobs to now and sends the webhooks that triggers.
    pub fn advance(self: &Arc<Self>) {
        let mut store = self.store();
        let deliveries = store.materialize(self.clock.now());
        // Queued before the state is unlocked: a concurrent advance's later events queue
        // behind these.
        webhooks::send(self, deliveries);
        drop(store);
    }

    /// An absolute URL for a sandbox path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

pub type AppState = Arc<Shared>;

/// The key of an authenticated request.
#[derive(Clone, Debug)]
pub struct ApiKeyOf(pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

fn route_for(operation: Operation) -> MethodRouter<AppState> {
    match operation {
        Operation::Health => get(health),
        Operation::Upload => post(uploads::upload).layer(DefaultBodyLimit::disable()),
        Operation::CreateJob => post(create_job),
        Operation::StartJob => post(start_job),
        Operation::GetJob => get(get_job),
        Operation::ListJobs => get(list_jobs),
        Operation::UsageSummary => get(usage_summary),
        Operation::UsageEvents => get(usage_events),
        Operation::LegacyDownload => get(legacy_download),
    }
}

/// Every route the sandbox serves as part of the API, as (method, path): the operations of the
/// core, so the OpenAPI document (built from the same table) describes each one.
pub fn api_routes() -> Vec<(&'static str, &'static str)> {
    Operation::ALL
        .iter()
        .map(|op| (op.method().as_str(), op.path_template()))
        .collect()
}

/// The router: API routes behind the guard, plus the sandbox's own file routes.
pub fn router(shared: AppState) -> Router {
    let mut api = Router::new();
    let mut public = Router::new();
    for operation in Operation::ALL {
        let target = if operation.needs_api_key() {
            &mut api
        } else {
            &mut public
        };
        *target = std::mem::take(target).route(operation.path_template(), route_for(operation));
    }
    let api = api.route_layer(middleware::from_fn_with_state(shared.clone(), api_guard));
    Router::new()
        .merge(api)
        .merge(public)
        .route("/openapi.json", get(openapi))
        .route("/sandbox/stats", get(stats))
        .route(
            "/sandbox/uploads/{video_id}/{filename}",
            get(uploads::serve_upload),
        )
        .route(
            "/sandbox/outputs/{job_id}/{file}",
            get(outputs::serve_output),
        )
        .fallback(not_found)
        .with_state(shared)
}

/// `GET /sandbox/stats`: counters for benchmarks and load tests (`requests`: every request
/// answered since the start, this one excluded; `rate_limited`: those answered 429).
async fn stats(State(shared): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "requests": shared.log.total(),
        "rate_limited": shared.log.rate_limited(),
    }))
}

async fn not_found() -> Failure {
    Failure::new(404, ErrorCode::NotFound, "No such route")
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi(State(app): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(&app.base_url))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Auth, rate limit and idempotency for every route that needs a key.
async fn api_guard(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(key) = header_str(request.headers(), API_KEY_HEADER)
        .map(str::trim)
        .map(str::to_owned)
    else {
        return Failure::new(
            401,
            ErrorCode::MissingApiKey,
            format!("Missing {API_KEY_HEADER} header"),
        )
        .into_response();
    };
    let admission = {
        let mut store = app.store();
        let Some(account) = store.account_mut(&key) else {
            return Failure::new(401, ErrorCode::InvalidApiKey, "Invalid API key").into_response();
        };
        let admission = account.bucket.admit(Instant::now());
        (
            admission,
            account.bucket.limit(),
            account.bucket.seconds_to_full(),
        )
    };
    let (admission, limit, reset) = admission;
    let remaining = match admission {
        Admission::Allowed { remaining } => remaining,
        Admission::Limited { retry_after } => {
            let mut response = Failure::new(
                429,
                ErrorCode::RateLimited,
                "Too many requests for this API key",
            )
            .into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            );
            if app.config.rate_limit_headers {
                headers.insert("X-RateLimit-Limit", HeaderValue::from(limit));
                headers.insert("X-RateLimit-Remaining", HeaderValue::from(0u32));
                headers.insert("X-RateLimit-Reset", HeaderValue::from(reset));
            }
            return response;
        }
    };
    app.advance();
    request.extensions_mut().insert(ApiKeyOf(key.clone()));
    let honoured = request.method() == Method::POST && app.config.honour_idempotency_keys;
    if let Some(raw) = request
        .headers()
        .get(IDEMPOTENCY_KEY_HEADER)
        .filter(|_| honoured)
        && let Err(error) = validate_idempotency_key(raw.as_bytes())
    {
        return Failure::from_validation(error).into_response();
    }
    let idempotency_key = honoured
        .then(|| header_str(request.headers(), IDEMPOTENCY_KEY_HEADER).map(str::to_owned))
        .flatten();
    let mut response = match idempotency_key {
        None => next.run(request).await,
        Some(idem) => run_idempotent(&app, &key, &idem, request, next).await,
    };
    if app.config.rate_limit_headers {
        let headers = response.headers_mut();
        headers.insert("X-RateLimit-Limit", HeaderValue::from(limit));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from(remaining));
        headers.insert("X-RateLimit-Reset", HeaderValue::from(reset));
    }
    response
}

/// Releases an in-flight Idempotency-Key unless its answer was stored.
struct InFlightGuard<'a> {
    app: &'a AppState,
    api_key: &'a str,
    idem: &'a str,
    token: Token,
    settled: bool,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.app
                .idempotency
                .lock()
                .expect("idempotency store")
                .abandon(self.api_key, self.idem, self.token);
        }
    }
}

async fn run_idempotent(
    app: &AppState,
    api_key: &str,
    idem: &str,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    // Uploads are streamed, so their key is matched on the route alone; JSON bodies are
    // small and matched on their bytes too.
    let streamed = parts.uri.path() == Operation::Upload.path_template();
    let (body, fingerprint) = if streamed {
        (body, format!("{} {}", parts.method, parts.uri.path()))
    } else {
        let Ok(bytes) = to_bytes(body, MAX_JSON_BODY).await else {
            return Failure::new(
                413,
                ErrorCode::InvalidRequest,
                "The JSON body is larger than 1 MiB",
            )
            .into_response();
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        (
            Body::from(bytes),
            format!("{} {} {digest}", parts.method, parts.uri.path()),
        )
    };
    let ttl = std::time::Duration::from_secs(app.config.idempotency_ttl_secs);
    let begin = app.idempotency.lock().expect("idempotency store").begin(
        api_key,
        idem,
        &fingerprint,
        Instant::now(),
        ttl,
    );
    let echo = HeaderValue::from_str(idem).ok();
    let mut response = match begin {
        Begin::Replay(stored) => {
            let mut response = Response::builder().status(stored.status);
            if let Some(content_type) = &stored.content_type {
                response = response.header(header::CONTENT_TYPE, content_type);
            }
            let mut response = response.body(Body::from(stored.body)).expect("a valid stored response");
            response.headers_mut().insert(IDEMPOTENT_REPLAYED_HEADER, HeaderValue::from_static("true"));
            response
        }
        Begin::Conflict => Failure::new(
            409,
            ErrorCode::IdempotencyConflict,
            "This Idempotency-Key was used with a different request; use a new key for a new request",
        )
        .into_response(),
        Begin::InProgress => Failure::new(
            409,
            ErrorCode::IdempotencyConflict,
            "A request with this Idempotency-Key is still being processed; retry later",
        )
        .into_response(),
        Begin::Proceed(token) => {
            // Abandons the key unless the answer is stored: a panic or a dropped connection
            // must not leave it in flight, answering 409 to every retry.
            let mut guard = InFlightGuard { app, api_key, idem, token, settled: false };
            let response = next.run(Request::from_parts(parts, body)).await;
            let status = response.status().as_u16();
            // Retries must be processed afresh after a failure that did nothing: a 5xx, a 429,
            // or a failed upload (its body may simply have broken off in transit).
            if status >= 500 || status == 429 || (streamed && status >= 300) {
                response
            } else {
                let (parts, body) = response.into_parts();
                let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
                let stored = StoredResponse {
                    status,
                    content_type: header_str(&parts.headers, header::CONTENT_TYPE.as_str()).map(str::to_owned),
                    body: bytes.clone(),
                };
                app.idempotency.lock().expect("idempotency store").finish(api_key, idem, token, stored, Instant::now());
                guard.settled = true;
                Response::from_parts(parts, Body::from(bytes))
            }
        }
    };
    if let Some(echo) = echo {
        response.headers_mut().insert(IDEMPOTENCY_KEY_HEADER, echo);
    }
    response
}

/// Parses and validates a JSON body with the core's rules, exactly as the SDK does.
fn parse_body<T: serde::de::DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, Failure> {
    let value: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(bytes).map_err(|err| {
            Failure::new(
                400,
                ErrorCode::InvalidRequest,
                format!("The body is not valid JSON: {err}"),
            )
        })?
    };
    parse_and_validate::<T>(&value)
        .map(|(request, _warnings)| request)
        .map_err(Failure::from_validation)
}

/// The sandbox delivers webhooks only to this machine.
fn check_loopback_webhook(url: Option<&str>) -> Result<(), Failure> {
    let Some(url) = url else { return Ok(()) };
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let loopback = host.as_deref().is_some_and(|h| {
        h == "localhost"
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if loopback {
        return Ok(());
    }
    let mut failure = Failure::new(
        400,
        ErrorCode::InvalidRequest,
        "The sandbox delivers webhooks only to loopback hosts",
    );
    failure.problems.push(Problem::error(
        "/webhook_url",
        ProblemCode::InvalidUrl,
        "webhook_url must point to a loopback host (127.0.0.1, ::1 or localhost) in the sandbox",
    ));
    Err(failure)
}

/// Output URLs are stored as sandbox paths; answers carry them absolute.
fn absolute(app: &Shared, mut job: Job) -> Job {
    job.output_url = job.output_url.map(|path| app.url(&path));
    job
}

fn upload_duration(app: &Shared, video_url: &str) -> Option<f64> {
    let prefix = app.url("/sandbox/uploads/");
    let video_id = video_url.strip_prefix(&prefix)?.split('/').next()?;
    app.store().upload(video_id).and_then(|u| u.duration_secs)
}

async fn create_job(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let request: CreateJobRequest = parse_body(&body)?;
    check_loopback_webhook(request.webhook_url.as_deref())?;
    let duration = upload_duration(&app, &request.video_url);
    let (accepted, run) = app
        .store()
        .create_job(&key, request, duration, app.clock.now())?;
    if let Some(run) = run {
        webhooks::schedule_run(&app, &run);
    }
    Ok(Json(accepted).into_response())
}

async fn start_job(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    Path(job_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Failure> {
    let request: StartJobRequest = parse_body(&body)?;
    check_loopback_webhook(request.webhook_url.as_deref())?;
    let (accepted, run) = app
        .store()
        .start_job(&key, &job_id, request, app.clock.now())?;
    webhooks::schedule_run(&app, &run);
    Ok(Json(accepted).into_response())
}

async fn get_job(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    Path(job_id): Path<String>,
) -> Result<Json<Job>, Failure> {
    let job = app.store().get_job(&key, &job_id, Instant::now())?;
    Ok(Json(absolute(&app, job)))
}

/// Reads a query with the core's rules; a malformed query is a 400 naming the parameter.
fn parse_query<T: serde::de::DeserializeOwned + Validate>(raw: Option<&str>) -> Result<T, Failure> {
    let pairs: serde_json::Map<String, Value> =
        url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| {
                let value = v
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(v.into_owned()));
                (k.into_owned(), value)
            })
            .collect();
    parse_and_validate::<T>(&Value::Object(pairs))
        .map(|(q, _)| q)
        .map_err(Failure::from_validation)
}

async fn list_jobs(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, Failure> {
    let query: ListJobsQuery = parse_query(uri.query())?;
    let mut list = app.store().list_jobs(&key, &query, Instant::now());
    list.jobs = list.jobs.into_iter().map(|j| absolute(&app, j)).collect();
    Ok(Json(json!(list)))
}

async fn usage_summary(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, Failure> {
    let query: UsageSummaryQuery = parse_query(uri.query())?;
    let summary = app
        .store()
        .usage_summary(&key, query.days.unwrap_or(30), app.clock.now());
    Ok(Json(json!(summary)))
}

async fn usage_events(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, Failure> {
    let query: UsageEventsQuery = parse_query(uri.query())?;
    let events = app.store().usage_events(&key, query.limit.unwrap_or(20));
    Ok(Json(json!({ "events": events })))
}

async fn legacy_download(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let mut answer = app.store().legacy_download(&key, &job_id, Instant::now())?;
    if let Some(path) = answer["download_url"].as_str() {
        answer["download_url"] = json!(app.url(path));
    }
    Ok(Json(answer))
}
