//! The JSON bridge the language bindings call, so that Python and Node share one conversion
//! of settings, options and arguments (snake_case JSON) to the client, and of results back.
//! Bindings add only what their runtime needs (GIL release, signals, promises, exceptions).

use std::path::PathBuf;
use std::time::Duration;

use removebgvideo_core::units;
use removebgvideo_core::validate::{Validate, parse_and_validate};
use removebgvideo_core::{ErrorCode, ErrorKind, Job, Problem, ProblemCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Background, CallOptions, Client, ClientBuilder, CreateJobRequest, DownloadOptions, Error,
    IdempotencySupport, ListJobsQuery, PollPolicy, RetryPolicy, RunOptions, RunRequest,
    StartJobRequest, UsageEventsQuery, UsageSummaryQuery, VideoSource, WaitLimit, WaitOptions,
};

/// Checks that each timeout a binding gave is a usable number of seconds (finite, above 0, at
/// most a year); every unusable one is a problem naming its field.
fn check_seconds(what: &str, fields: &[(&str, Option<f64>)]) -> Result<(), Error> {
    let problems: Vec<Problem> = fields
        .iter()
        .filter_map(|(name, value)| {
            units::positive_seconds(&format!("/{what}/{name}"), (*value)?).err()
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(problems))
    }
}

/// Seconds already checked by `check_seconds`.
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_default()
}

/// Parses the bindings' JSON; a mistake names its field (`/options/poll/progress_eta`), as
/// every other validation problem does.
pub fn parse<T: for<'de> Deserialize<'de>>(what: &str, json: &str) -> Result<T, Error> {
    let mut reader = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        use serde_path_to_error::Segment;
        let mut path = format!("/{what}");
        for segment in e.path().iter() {
            match segment {
                Segment::Seq { index } => path += &format!("/{index}"),
                Segment::Map { key } => path += &format!("/{key}"),
                Segment::Enum { variant } => path += &format!("/{variant}"),
                Segment::Unknown => {}
            }
        }
        let message = format!("{path}: {}", e.inner());
        Error::validation(vec![Problem::error(
            path,
            ProblemCode::InvalidType,
            message,
        )])
    })
}

/// Client settings, as the bindings pass them; absent ones take the client's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    api_key: Option<String>,
    base_url: Option<String>,
    max_retries: Option<u32>,
    timeout: Option<f64>,
    connect_timeout: Option<f64>,
    transfer_idle_timeout: Option<f64>,
    wait_timeout: Option<f64>,
    user_agent: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    idempotency: Option<String>,
    poll: Option<PollPolicy>,
    retry: Option<RetryPolicy>,
}

impl Settings {
    /// From the bindings' JSON.
    pub fn from_json(json: &str) -> Result<Settings, Error> {
        let settings: Settings = parse("settings", json)?;
        check_seconds(
            "settings",
            &[
                ("timeout", settings.timeout),
                ("connect_timeout", settings.connect_timeout),
                ("transfer_idle_timeout", settings.transfer_idle_timeout),
                ("wait_timeout", settings.wait_timeout),
            ],
        )?;
        if let Some(other) = settings
            .idempotency
            .as_deref()
            .filter(|v| !["detect", "honoured", "not_honoured"].contains(v))
        {
            return Err(Error::validation(vec![Problem::error(
                "/settings/idempotency",
                ProblemCode::UnknownValue,
                format!(
                    "idempotency must be one of detect, honoured, not_honoured (got {other:?})"
                ),
            )]));
        }
        Ok(settings)
    }

    fn builder(self) -> ClientBuilder {
        let mut builder = Client::builder();
        if let Some(key) = self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(url) = self.base_url {
            builder = builder.base_url(url);
        }
        if let Some(retry) = self.retry {
            builder = builder.retry_policy(retry);
        }
        if let Some(retries) = self.max_retries {
            builder = builder.max_retries(retries);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.request_timeout(seconds(timeout));
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(seconds(timeout));
        }
        if let Some(timeout) = self.transfer_idle_timeout {
            builder = builder.transfer_idle_timeout(seconds(timeout));
        }
        if let Some(timeout) = self.wait_timeout {
            builder = builder.wait_timeout(seconds(timeout));
        }
        if let Some(agent) = self.user_agent {
            builder = builder.user_agent(agent);
        }
        for (name, value) in self.headers {
            builder = builder.default_header(name, value);
        }
        if let Some(poll) = self.poll {
            builder = builder.poll_policy(poll);
        }
        builder.idempotency_support(match self.idempotency.as_deref() {
            Some("honoured") => IdempotencySupport::Honoured,
            Some("not_honoured") => IdempotencySupport::NotHonoured,
            _ => IdempotencySupport::Detect,
        })
    }

    /// The client.
    pub fn into_client(self) -> Result<Client, Error> {
        guarded(|| self.builder().build())
    }
}

/// Per-call options, as the bindings pass them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    idempotency_key: Option<String>,
    max_retries: Option<u32>,
    timeout: Option<f64>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// A wait's or run's limit in seconds; absent (and not `unbounded`) means the default.
    wait_timeout: Option<f64>,
    #[serde(default)]
    unbounded: bool,
    poll: Option<PollPolicy>,
    #[serde(default)]
    overwrite: bool,
}

impl Options {
    /// From the bindings' JSON.
    pub fn from_json(json: &str) -> Result<Options, Error> {
        let options: Options = parse("options", json)?;
        check_seconds(
            "options",
            &[
                ("timeout", options.timeout),
                ("wait_timeout", options.wait_timeout),
            ],
        )?;
        Ok(options)
    }

    /// The call options; the binding adds its cancellation and event handler.
    pub fn call(&self) -> CallOptions {
        CallOptions {
            idempotency_key: self.idempotency_key.clone(),
            max_retries: self.max_retries,
            timeout: self.timeout.map(seconds),
            headers: self.headers.clone(),
            cancel: None,
            on_event: None,
        }
    }

    fn limit(&self) -> WaitLimit {
        match (self.unbounded, self.wait_timeout) {
            (true, _) => WaitLimit::Unbounded,
            (false, Some(s)) => WaitLimit::After(seconds(s)),
            (false, None) => WaitLimit::Default,
        }
    }
}

/// A background as bindings give it: text (`transparent`, a preset, `#rrggbb`, `image:URL`)
/// or normalized `[r, g, b]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BackgroundArg {
    Text(String),
    Rgb([f64; 3]),
}

impl BackgroundArg {
    fn resolve(&self) -> Result<Background, Error> {
        match self {
            BackgroundArg::Text(text) => Background::parse(text),
            BackgroundArg::Rgb(channels) => Background::from_rgb(*channels),
        }
    }
}

#[derive(Deserialize)]
struct JobId {
    job_id: String,
}

#[derive(Deserialize)]
struct CreateArgs {
    #[serde(flatten)]
    request: CreateJobRequest,
    typed_background: Option<BackgroundArg>,
}

impl CreateArgs {
    /// The request with its background; a bad background is reported with every other
    /// problem of the request, not alone.
    fn resolve(self) -> Result<CreateJobRequest, Error> {
        match self.typed_background.map(|b| b.resolve()) {
            None => Ok(self.request),
            Some(Ok(background)) => Ok(self.request.with_background(&background)),
            Some(Err(background_error)) => {
                // A background was given, so the alpha rule (which reads an absent background
                // as the default transparent one) would report a problem the caller does not have.
                let mut problems: Vec<Problem> = self
                    .request
                    .problems()
                    .into_iter()
                    .filter(|p| p.code != ProblemCode::AlphaUnsupported)
                    .collect();
                problems.extend(background_error.problems);
                Err(Error::validation(problems))
            }
        }
    }
}

#[derive(Deserialize)]
struct StartArgs {
    job_id: String,
    #[serde(flatten)]
    request: StartJobRequest,
    typed_background: Option<BackgroundArg>,
}

#[derive(Deserialize)]
struct DownloadArgs {
    job_id: Option<String>,
    job: Option<Job>,
    path: PathBuf,
}

#[derive(Deserialize)]
struct RunArgs {
    file: Option<PathBuf>,
    download_to: Option<PathBuf>,
    start: Option<StartJobRequest>,
    #[serde(flatten)]
    create: CreateArgs,
}

/// Operations that can run for long (uploads, waits, downloads, runs): bindings keep them
/// cancellable (Ctrl-C, AbortSignal, asyncio).
pub fn is_long(operation: &str) -> bool {
    matches!(operation, "upload" | "wait" | "download" | "run")
}

fn to_json(value: impl serde::Serialize) -> String {
    serde_json::to_string(&value).expect("our types serialize")
}

/// Calls one operation with JSON arguments; the result as JSON.
pub fn call(
    client: &Client,
    operation: &str,
    args_json: &str,
    options: &Options,
    call: CallOptions,
) -> Result<String, Error> {
    guarded(|| dispatch(client, operation, args_json, options, call))
}

/// Runs one entry point of a binding so that a panic (a bug of ours) comes back as an
/// `sdk_bug` error: Python would get a `PanicException` that `except Exception` misses, and
/// Node would abort the whole process.
pub fn guarded<T>(work: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(Error::new(
            ErrorCode::SdkBug,
            format!("the SDK hit a bug and stopped this call ({what}); please report it"),
        ))
    })
}

/// Verifies a webhook delivery for a binding: the tolerance in seconds and `now` in Unix
/// milliseconds are checked, never trusted, before they become durations.
pub fn verify_webhook(
    body: &[u8],
    headers: removebgvideo_core::Headers,
    secret: &str,
    tolerance_seconds: Option<f64>,
    now_ms: Option<f64>,
) -> Result<String, Error> {
    guarded(|| {
        let tolerance = match tolerance_seconds {
            Some(seconds) => units::seconds("/tolerance_seconds", seconds)?,
            None => removebgvideo_core::webhook::DEFAULT_TOLERANCE,
        };
        let now = match now_ms {
            Some(ms) => units::unix_millis("/now", ms)?,
            None => removebgvideo_core::Timestamp::from(std::time::SystemTime::now()),
        };
        removebgvideo_core::webhook::verify(&headers, body, secret, now, tolerance).map(to_json)
    })
}

fn dispatch(
    client: &Client,
    operation: &str,
    args_json: &str,
    options: &Options,
    call: CallOptions,
) -> Result<String, Error> {
    match operation {
        "health" => client.health(&call).map(to_json),
        "upload" => {
            #[derive(Deserialize)]
            struct Path {
                path: PathBuf,
            }
            let Path { path } = parse("arguments", args_json)?;
            client.upload(&path, &call).map(to_json)
        }
        "create_job" => {
            let request = parse::<CreateArgs>("arguments", args_json)?.resolve()?;
            client.create_job(&request, &call).map(to_json)
        }
        "start_job" => {
            let args: StartArgs = parse("arguments", args_json)?;
            let request = match &args.typed_background {
                Some(background) => args.request.clone().with_background(&background.resolve()?),
                None => args.request.clone(),
            };
            client.start_job(&args.job_id, &request, &call).map(to_json)
        }
        "get_job" => client
            .get_job(&parse::<JobId>("arguments", args_json)?.job_id, &call)
            .map(to_json),
        "list_jobs" => client
            .list_jobs(&parse::<ListJobsQuery>("arguments", args_json)?, &call)
            .map(to_json),
        "usage_summary" => client
            .usage_summary(&parse::<UsageSummaryQuery>("arguments", args_json)?, &call)
            .map(to_json),
        "usage_events" => client
            .usage_events(&parse::<UsageEventsQuery>("arguments", args_json)?, &call)
            .map(to_json),
        "legacy_download" => client
            .legacy_download(&parse::<JobId>("arguments", args_json)?.job_id, &call)
            .map(to_json),
        "wait" => {
            let JobId { job_id } = parse("arguments", args_json)?;
            let wait = WaitOptions {
                limit: options.limit(),
                poll: options.poll.clone(),
                call,
            };
            client.wait(&job_id, &wait).map(to_json)
        }
        "download" => {
            let args: DownloadArgs = parse("arguments", args_json)?;
            let download = DownloadOptions {
                overwrite: options.overwrite,
                call,
            };
            let done = match (args.job, args.job_id) {
                (Some(job), _) => client.download_job(job, &args.path, &download),
                (None, Some(id)) => client.download(&id, &args.path, &download),
                (None, None) => Err(Error::validation(vec![Problem::error(
                    "/job_id",
                    ProblemCode::Required,
                    "download needs a job or a job_id",
                )])),
            }?;
            Ok(to_json(
                json!({ "path": done.path, "bytes": done.bytes, "job": done.job }),
            ))
        }
        "run" => {
            let args: RunArgs = parse("arguments", args_json)?;
            let run = RunOptions {
                limit: options.limit(),
                poll: options.poll.clone(),
                call,
            };
            // Exactly one source: a URL, or a file to upload first.
            let video_url = args.create.request.video_url.clone();
            let source = match (&args.file, video_url.trim().is_empty()) {
                (Some(file), true) => VideoSource::File(file.clone()),
                (None, false) => VideoSource::Url(video_url),
                _ => {
                    return Err(Error::validation(vec![Problem::error(
                        "/video_url",
                        ProblemCode::Required,
                        "run needs exactly one source: video_url or file",
                    )]));
                }
            };
            let job = args.create.resolve()?;
            let request = RunRequest {
                source,
                job,
                start: args.start,
                download_to: args.download_to,
                overwrite: options.overwrite,
            };
            let result = client.run(&request, &run)?;
            Ok(to_json(json!({
                "job": result.job,
                "upload": result.upload,
                "output": result.output.map(|o| json!({ "path": o.path, "bytes": o.bytes, "job": o.job })),
            })))
        }
        other => Err(Error::validation(vec![Problem::error(
            "/operation",
            ProblemCode::UnknownValue,
            format!("unknown operation {other:?}"),
        )])),
    }
}

fn problems_of<T: serde::de::DeserializeOwned + Validate>(value: &Value) -> Vec<Problem> {
    match parse_and_validate::<T>(value) {
        Ok((_, warnings)) => warnings,
        Err(error) => error.problems,
    }
}

/// Every problem (errors and warnings) of a request body, as JSON, by the core's rules.
pub fn validate_request(type_name: &str, body_json: &str) -> Result<String, Error> {
    guarded(|| validate_request_unguarded(type_name, body_json))
}

fn validate_request_unguarded(type_name: &str, body_json: &str) -> Result<String, Error> {
    use removebgvideo_core::requests::*;
    let value: Value = parse("body", body_json)?;
    let problems = match type_name {
        "CreateJobRequest" => problems_of::<CreateJobRequest>(&value),
        "StartJobRequest" => problems_of::<StartJobRequest>(&value),
        "ListJobsQuery" => problems_of::<ListJobsQuery>(&value),
        "UsageSummaryQuery" => problems_of::<UsageSummaryQuery>(&value),
        "UsageEventsQuery" => problems_of::<UsageEventsQuery>(&value),
        "UploadFile" => problems_of::<UploadFile>(&value),
        other => {
            return Err(Error::validation(vec![Problem::error(
                "/type_name",
                ProblemCode::UnknownValue,
                format!("no request type {other:?}"),
            )]));
        }
    };
    Ok(to_json(problems))
}

/// The exception class of each kind, the same name in Python and Node: one exhaustive map, so
/// a new kind cannot be forgotten (the compiler stops it).
pub fn error_class(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Authentication => "AuthenticationError",
        ErrorKind::InsufficientCredits => "InsufficientCreditsError",
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::RateLimit => "RateLimitError",
        ErrorKind::InvalidRequest => "InvalidRequestError",
        ErrorKind::Conflict => "ConflictError",
        ErrorKind::Server => "ServerError",
        ErrorKind::Connection => "APIConnectionError",
        ErrorKind::OutcomeUnknown => "OutcomeUnknownError",
        ErrorKind::Validation => "ValidationError",
        ErrorKind::JobFailed => "JobFailedError",
        ErrorKind::WaitTimeout => "WaitTimeoutError",
        ErrorKind::Cancelled => "CancelledError",
        ErrorKind::Download => "DownloadError",
        ErrorKind::Webhook => "WebhookVerificationError",
        ErrorKind::UnexpectedResponse => "UnexpectedResponseError",
        ErrorKind::SdkBug => "SDKBugError",
    }
}

/// Every kind, so bindings can check each has its class.
pub const ERROR_KINDS: [ErrorKind; 17] = [
    ErrorKind::Authentication,
    ErrorKind::InsufficientCredits,
    ErrorKind::NotFound,
    ErrorKind::RateLimit,
    ErrorKind::InvalidRequest,
    ErrorKind::Conflict,
    ErrorKind::Server,
    ErrorKind::Connection,
    ErrorKind::OutcomeUnknown,
    ErrorKind::Validation,
    ErrorKind::JobFailed,
    ErrorKind::WaitTimeout,
    ErrorKind::Cancelled,
    ErrorKind::Download,
    ErrorKind::Webhook,
    ErrorKind::UnexpectedResponse,
    ErrorKind::SdkBug,
];

/// An error as the bindings receive it: the shared JSON form plus its class name.
pub fn error_payload(error: &Error) -> String {
    let mut value = error.to_json();
    value["class"] = json!(error_class(error.kind()));
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistake_in_the_bindings_json_names_its_field() {
        let error = Options::from_json(r#"{"poll": {"progress_eta": "yes"}}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/options/poll/progress_eta");
        let error = Options::from_json(r#"{"poll": {"max_eta_intervall": 5}}"#).unwrap_err();
        assert!(
            error.problems[0].message.contains("max_eta_intervall"),
            "{error:?}"
        );
    }

    #[test]
    fn unusable_numbers_from_a_binding_are_errors_naming_their_field_never_panics() {
        for json in [
            r#"{"timeout": -1}"#,
            r#"{"wait_timeout": 1e20}"#,
            r#"{"timeout": 0}"#,
        ] {
            let error = Options::from_json(json).unwrap_err();
            assert_eq!(error.code, ErrorCode::ValidationError, "{json}");
            assert_eq!(error.problems[0].code, ProblemCode::OutOfRange, "{json}");
            assert!(error.problems[0].path.starts_with("/options/"), "{json}");
        }
        let error = Settings::from_json(r#"{"connect_timeout": 1e300}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/settings/connect_timeout");
        let error = Settings::from_json(r#"{"idempotency": "honored"}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/settings/idempotency");
        for (tolerance, now) in [
            (Some(f64::INFINITY), None),
            (Some(f64::NAN), None),
            (Some(-1.0), None),
            (None, Some(f64::NEG_INFINITY)),
        ] {
            let error =
                verify_webhook(b"{}", Default::default(), "whsec", tolerance, now).unwrap_err();
            assert_eq!(error.code, ErrorCode::ValidationError);
        }
    }

    #[test]
    fn a_panic_comes_back_as_a_typed_error() {
        let error = guarded::<()>(|| panic!("index out of bounds")).unwrap_err();
        assert_eq!(error.code, ErrorCode::SdkBug);
        assert_eq!(error_class(error.kind()), "SDKBugError");
        assert!(error.message.contains("index out of bounds"));
    }
}
