//! Requests as plain data (method, path, query, headers, body) and responses parsed from bytes.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorBody, ErrorCode, ErrorKind};
use crate::job::{Job, JobAccepted, JobList};
use crate::requests::{
    CreateJobRequest, ListJobsQuery, StartJobRequest, UploadFile, UsageEventsQuery,
    UsageSummaryQuery, validate_job_id,
};
use crate::responses::{Health, LegacyDownload, UploadResult, UsageEvents, UsageSummary};
use crate::retry::retry_after;
use crate::timestamp::Timestamp;
use crate::validate::{Problem, Validate};

/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "X-Api-Key";
/// Header carrying the idempotency key of a POST.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// The longest `Idempotency-Key` a server must remember, in bytes (the published limit; longer
/// keys are refused with 400 rather than stored).
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 255;
/// Response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";
/// Response header by which a server says it replayed a stored answer for an Idempotency-Key.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The API key. Never printed: Debug and Display show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; surrounding whitespace (a pasted newline) is dropped.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into().trim().to_owned())
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET: safe to repeat.
    Get,
    /// POST: repeated safely only with an honoured Idempotency-Key.
    Post,
}

impl Method {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Every endpoint of the API, with its method and path (the OpenAPI document is built from this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `GET /health`.
    Health,
    /// `POST /v1/uploads`.
    Upload,
    /// `POST /v1/jobs`.
    CreateJob,
    /// `POST /v1/jobs/{job_id}/start`.
    StartJob,
    /// `GET /v1/jobs/{job_id}`.
    GetJob,
    /// `GET /v1/jobs`.
    ListJobs,
    /// `GET /v1/usage/summary`.
    UsageSummary,
    /// `GET /v1/usage/events`.
    UsageEvents,
    /// `GET /api/download/{job_id}` (legacy).
    LegacyDownload,
}

impl Operation {
    /// Every operation, in documentation order.
    pub const ALL: [Operation; 9] = [
        Operation::Upload,
        Operation::CreateJob,
        Operation::StartJob,
        Operation::GetJob,
        Operation::ListJobs,
        Operation::UsageSummary,
        Operation::UsageEvents,
        Operation::LegacyDownload,
        Operation::Health,
    ];

    /// The HTTP method.
    pub fn method(self) -> Method {
        match self {
            Operation::Upload | Operation::CreateJob | Operation::StartJob => Method::Post,
            _ => Method::Get,
        }
    }

    /// The path, with `{job_id}` where the id goes.
    pub fn path_template(self) -> &'static str {
        match self {
            Operation::Health => "/health",
            Operation::Upload => "/v1/uploads",
            Operation::CreateJob | Operation::ListJobs => "/v1/jobs",
            Operation::StartJob => "/v1/jobs/{job_id}/start",
            Operation::GetJob => "/v1/jobs/{job_id}",
            Operation::UsageSummary => "/v1/usage/summary",
            Operation::UsageEvents => "/v1/usage/events",
            Operation::LegacyDownload => "/api/download/{job_id}",
        }
    }

    /// The snake_case name (the OpenAPI operationId, and the method name in every SDK).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Health => "health",
            Operation::Upload => "upload",
            Operation::CreateJob => "create_job",
            Operation::StartJob => "start_job",
            Operation::GetJob => "get_job",
            Operation::ListJobs => "list_jobs",
            Operation::UsageSummary => "usage_summary",
            Operation::UsageEvents => "usage_events",
            Operation::LegacyDownload => "legacy_download",
        }
    }

    /// Whether the endpoint needs the API key (all but health).
    pub fn needs_api_key(self) -> bool {
        self != Operation::Health
    }
}

/// One request header. Sensitive values (the API key) are redacted in Debug.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name.
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether Debug must hide the value.
    pub sensitive: bool,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.sensitive {
            "[redacted]"
        } else {
            &self.value
        };
        write!(f, "{}: {}", self.name, value)
    }
}

/// A request ready to be sent by whatever does I/O.
#[derive(Clone, PartialEq)]
pub struct HttpRequest {
    /// Which endpoint.
    pub operation: Operation,
    /// The method.
    pub method: Method,
    /// The path, already percent-encoded.
    pub path: String,
    /// Query parameters, not yet encoded.
    pub query: Vec<(String, String)>,
    /// Headers, the API key among them.
    pub headers: Vec<Header>,
    /// The JSON body of a POST; uploads stream theirs (see [`MultipartFraming`]).
    pub body: Option<Vec<u8>>,
    /// The Idempotency-Key sent, for POSTs.
    pub idempotency_key: Option<String>,
    /// Validation warnings (the request is still sent); the client logs them.
    pub warnings: Vec<Problem>,
}

impl HttpRequest {
    /// Path and encoded query, to append to the base URL.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k, QUERY), encode(v, QUERY)))
            .collect();
        format!("{}?{}", self.path, query.join("&"))
    }

    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path_and_query", &self.path_and_query())
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// Characters escaped in a path segment: everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Characters escaped in a query key or value.
const QUERY: &AsciiSet = SEGMENT;

fn encode(text: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(text, set).to_string()
}

/// The multipart framing of an upload: the client streams `head`, the file, then `tail`, so the
/// file is never held in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartFraming {
    /// The `Content-Type` header value, with the boundary.
    pub content_type: String,
    /// Bytes before the file.
    pub head: Vec<u8>,
    /// Bytes after the file.
    pub tail: Vec<u8>,
}

impl MultipartFraming {
    /// The whole body length for a file of `file_size` bytes (the `Content-Length`).
    pub fn content_length(&self, file_size: u64) -> u64 {
        self.head.len() as u64 + file_size + self.tail.len() as u64
    }
}

/// Builds every request of the API for one key; checks each before building it.
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    api_key: ApiKey,
    user_agent: String,
}

impl RequestBuilder {
    /// For this key, sending this User-Agent.
    pub fn new(api_key: ApiKey, user_agent: impl Into<String>) -> Self {
        RequestBuilder {
            api_key,
            user_agent: user_agent.into(),
        }
    }

    fn request(&self, operation: Operation, path: String) -> HttpRequest {
        let mut headers = vec![
            Header {
                name: "User-Agent".into(),
                value: self.user_agent.clone(),
                sensitive: false,
            },
            Header {
                name: "Accept".into(),
                value: "application/json".into(),
                sensitive: false,
            },
        ];
        if operation.needs_api_key() {
            headers.push(Header {
                name: API_KEY_HEADER.into(),
                value: self.api_key.expose().to_owned(),
                sensitive: true,
            });
        }
        HttpRequest {
            operation,
            method: operation.method(),
            path,
            query: Vec::new(),
            headers,
            body: None,
            idempotency_key: None,
            warnings: Vec::new(),
        }
    }

    fn post_json(
        &self,
        operation: Operation,
        path: String,
        body: &impl Serialize,
        idempotency_key: &str,
    ) -> HttpRequest {
        let mut request = self.request(operation, path);
        // Serializing our own plain data types cannot fail.
        request.body = Some(serde_json::to_vec(body).unwrap_or_default());
        request.headers.push(Header {
            name: "Content-Type".into(),
            value: "application/json".into(),
            sensitive: false,
        });
        request.headers.push(Header {
            name: IDEMPOTENCY_KEY_HEADER.into(),
            value: idempotency_key.to_owned(),
            sensitive: false,
        });
        request.idempotency_key = Some(idempotency_key.to_owned());
        request
    }

    fn job_path(operation: Operation, job_id: &str) -> Result<String, Error> {
        validate_job_id(job_id)?;
        Ok(operation
            .path_template()
            .replace("{job_id}", &encode(job_id, SEGMENT)))
    }

    /// `GET /health`.
    pub fn health(&self) -> HttpRequest {
        self.request(Operation::Health, Operation::Health.path_template().into())
    }

    /// `POST /v1/uploads`: the request head and the multipart framing around the file.
    /// `boundary` must be random (the client draws it) and not occur in the file.
    pub fn upload(
        &self,
        file: &UploadFile,
        boundary: &str,
        idempotency_key: &str,
    ) -> Result<(HttpRequest, MultipartFraming), Error> {
        let warnings = checked(file.problems(), idempotency_key)?;
        let mut request = self.request(Operation::Upload, Operation::Upload.path_template().into());
        let filename: String = file
            .filename
            .chars()
            .filter(|c| !c.is_control())
            .map(|c| if c == '"' { '\'' } else { c })
            .collect();
        let framing = MultipartFraming {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            head: format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {}\r\n\r\n",
                file.content_type
            )
            .into_bytes(),
            tail: format!("\r\n--{boundary}--\r\n").into_bytes(),
        };
        request.headers.push(Header {
            name: "Content-Type".into(),
            value: framing.content_type.clone(),
            sensitive: false,
        });
        request.headers.push(Header {
            name: IDEMPOTENCY_KEY_HEADER.into(),
            value: idempotency_key.to_owned(),
            sensitive: false,
        });
        request.idempotency_key = Some(idempotency_key.to_owned());
        request.warnings = warnings;
        Ok((request, framing))
    }

    /// `POST /v1/jobs`.
    pub fn create_job(
        &self,
        body: &CreateJobRequest,
        idempotency_key: &str,
    ) -> Result<HttpRequest, Error> {
        let warnings = checked(body.problems(), idempotency_key)?;
        let path = Operation::CreateJob.path_template().into();
        let mut request = self.post_json(Operation::CreateJob, path, body, idempotency_key);
        request.warnings = warnings;
        Ok(request)
    }

    /// `POST /v1/jobs/{job_id}/start`.
    pub fn start_job(
        &self,
        job_id: &str,
        body: &StartJobRequest,
        idempotency_key: &str,
    ) -> Result<HttpRequest, Error> {
        let path = Self::job_path(Operation::StartJob, job_id);
        let warnings = checked(
            path.as_ref()
                .err()
                .map(|e| e.problems.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(body.problems())
                .collect(),
            idempotency_key,
        )?;
        let path = path?;
        let mut request = self.post_json(Operation::StartJob, path, body, idempotency_key);
        request.warnings = warnings;
        Ok(request)
    }

    /// `GET /v1/jobs/{job_id}`.
    pub fn get_job(&self, job_id: &str) -> Result<HttpRequest, Error> {
        Ok(self.request(
            Operation::GetJob,
            Self::job_path(Operation::GetJob, job_id)?,
        ))
    }

    /// `GET /v1/jobs?limit=&offset=&status=`.
    pub fn list_jobs(&self, query: &ListJobsQuery) -> Result<HttpRequest, Error> {
        query.validate()?;
        let mut request = self.request(
            Operation::ListJobs,
            Operation::ListJobs.path_template().into(),
        );
        request.query = [
            query.limit.map(|v| ("limit", v.to_string())),
            query.offset.map(|v| ("offset", v.to_string())),
            query.status.as_ref().map(|v| ("status", v.to_string())),
        ]
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(request)
    }

    /// `GET /v1/usage/summary?days=`.
    pub fn usage_summary(&self, query: &UsageSummaryQuery) -> Result<HttpRequest, Error> {
        query.validate()?;
        let mut request = self.request(
            Operation::UsageSummary,
            Operation::UsageSummary.path_template().into(),
        );
        request.query = query
            .days
            .map(|d| ("days".to_owned(), d.to_string()))
            .into_iter()
            .collect();
        Ok(request)
    }

    /// `GET /v1/usage/events?limit=`.
    pub fn usage_events(&self, query: &UsageEventsQuery) -> Result<HttpRequest, Error> {
        query.validate()?;
        let mut request = self.request(
            Operation::UsageEvents,
            Operation::UsageEvents.path_template().into(),
        );
        request.query = query
            .limit
            .map(|l| ("limit".to_owned(), l.to_string()))
            .into_iter()
            .collect();
        Ok(request)
    }

    /// `GET /api/download/{job_id}` (legacy).
    pub fn legacy_download(&self, job_id: &str) -> Result<HttpRequest, Error> {
        Ok(self.request(
            Operation::LegacyDownload,
            Self::job_path(Operation::LegacyDownload, job_id)?,
        ))
    }
}

/// Response headers with case-insensitive lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Adds a header.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

/// A response body type; those that describe jobs remember the request id they came with.
pub trait ResponseBody: DeserializeOwned {
    /// Records the request id of the response (a no-op for most bodies).
    fn set_request_id(&mut self, _request_id: Option<String>) {}
}

impl ResponseBody for Job {
    fn set_request_id(&mut self, request_id: Option<String>) {
        self.request_id = request_id;
    }
}

impl ResponseBody for JobAccepted {
    fn set_request_id(&mut self, request_id: Option<String>) {
        self.request_id = request_id;
    }
}

impl ResponseBody for JobList {
    fn set_request_id(&mut self, request_id: Option<String>) {
        for job in &mut self.jobs {
            job.request_id = request_id.clone();
        }
    }
}

impl ResponseBody for UploadResult {}
impl ResponseBody for UsageSummary {}
impl ResponseBody for UsageEvents {}
impl ResponseBody for LegacyDownload {}
impl ResponseBody for Health {}
impl ResponseBody for serde_json::Value {}

/// The most of a body quoted in an error message.
const BODY_EXCERPT: usize = 200;

/// Reads a response: a typed body on 2xx, else a typed error. Never panics: an empty, non-JSON
/// or wrongly shaped body becomes `unexpected_response` (2xx) or an error derived from the
/// status (non-2xx), always with the status and any request id.
pub fn parse_response<T: ResponseBody>(
    status: u16,
    headers: &Headers,
    body: &[u8],
    now: Timestamp,
) -> Result<T, Error> {
    let header_request_id = headers.get(REQUEST_ID_HEADER).map(str::to_owned);
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<T>(body) {
            Ok(mut value) => {
                value.set_request_id(header_request_id);
                Ok(value)
            }
            Err(err) => Err(Error::new(
                ErrorCode::UnexpectedResponse,
                format!(
                    "the {status} response body is not the documented JSON ({err}); body: {}",
                    excerpt(body)
                ),
            )
            .with_status(status)
            .with_request_id(header_request_id)),
        };
    }
    Err(parse_error(status, headers, body, now))
}

/// The typed error of a non-2xx response.
pub fn parse_error(status: u16, headers: &Headers, body: &[u8], now: Timestamp) -> Error {
    let header_request_id = headers.get(REQUEST_ID_HEADER).map(str::to_owned);
    let mut error = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error: detail }) => {
            let message = if detail.message.trim().is_empty() {
                format!("HTTP {status} ({})", detail.code)
            } else {
                detail.message
            };
            let mut error = Error::new(detail.code, message)
                .with_status(status)
                .with_request_id(detail.request_id.or(header_request_id));
            error.problems = detail.problems;
            error
        }
        Err(_) => {
            let code = ErrorKind::default_code_for_status(status);
            let message = if body.is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                format!(
                    "HTTP {status} with a body that is not the documented error JSON: {}",
                    excerpt(body)
                )
            };
            Error::new(code, message)
                .with_status(status)
                .with_request_id(header_request_id)
        }
    };
    error.retry_after = retry_after(headers, now);
    error
}

/// A short, printable excerpt of a body for error messages.
fn excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty)".into();
    }
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text
        .chars()
        .take(BODY_EXCERPT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > BODY_EXCERPT {
        cut.push('…');
    }
    cut
}

/// Whether a response shows that the server honours Idempotency-Key: it echoes the key back
/// (as Stripe does) or says it replayed a stored answer.
pub fn honours_idempotency(headers: &Headers) -> bool {
    headers.get(IDEMPOTENCY_KEY_HEADER).is_some()
        || headers.get(IDEMPOTENT_REPLAYED_HEADER).is_some()
}

/// A POST's problems with those of its Idempotency-Key: warnings, or every error at once.
fn checked(problems: Vec<Problem>, idempotency_key: &str) -> Result<Vec<Problem>, Error> {
    crate::validate::into_result(
        problems
            .into_iter()
            .chain(crate::requests::idempotency_key_problems(
                "/idempotency_key",
                idempotency_key.as_bytes(),
            ))
            .collect(),
    )
}
