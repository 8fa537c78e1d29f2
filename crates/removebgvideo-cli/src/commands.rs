//! The endpoint commands: each converts arguments to a client call and prints the answer.

use std::time::Duration;

use removebgvideo::core::units;
use removebgvideo::core::validate::{Problem, ProblemCode, display_path};
use removebgvideo::{
    Background, CallOptions, CancelToken, Client, CreateJobRequest, DownloadOptions, Error, Job,
    ListJobsQuery, StartJobRequest, UsageEventsQuery, UsageSummaryQuery, WaitLimit, WaitOptions,
};
use serde_json::{Value, json};

use crate::args::{Global, JobSettings, Jobs, Usage};
use crate::output::print_result;

/// A usage error naming the option and the rule.
pub fn usage_error(path: &str, code: ProblemCode, message: String) -> Error {
    Error::validation(vec![Problem::error(path, code, message)])
}

/// `--header "Name: value"` pairs.
pub fn parse_headers(headers: &[String]) -> Result<Vec<(String, String)>, Error> {
    headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| {
                    usage_error(
                        "/header",
                        ProblemCode::InvalidType,
                        format!("--header must be \"Name: value\" (got {h:?})"),
                    )
                })
        })
        .collect()
}

/// The client for these global options; `base_url` and `api_key` may be overridden.
pub fn client(
    global: &Global,
    base_url: Option<&str>,
    api_key: Option<&str>,
) -> Result<Client, Error> {
    let mut builder =
        Client::builder().user_agent(format!("removebgvideo-cli/{}", env!("CARGO_PKG_VERSION")));
    if let Some(key) = api_key.or(global.api_key.as_deref()) {
        builder = builder.api_key(key);
    }
    if let Some(url) = base_url.or(global.base_url.as_deref()) {
        builder = builder.base_url(url);
    }
    if let Some(retries) = global.max_retries {
        builder = builder.max_retries(retries);
    }
    for (name, value) in parse_headers(&global.extra_headers)? {
        builder = builder.default_header(name, value);
    }
    builder.build()
}

/// Call options that stop on Ctrl-C.
pub fn call_options(cancel: &CancelToken, idempotency_key: Option<String>) -> CallOptions {
    CallOptions {
        idempotency_key,
        cancel: Some(cancel.clone()),
        ..CallOptions::default()
    }
}

fn background(text: &Option<String>) -> Result<Option<Background>, Error> {
    text.as_deref().map(Background::parse).transpose()
}

/// A create request from the job settings.
pub fn create_request(video_url: &str, settings: &JobSettings) -> Result<CreateJobRequest, Error> {
    let mut request = CreateJobRequest::new(video_url);
    if let Some(background) = background(&settings.background)? {
        request = request.with_background(&background);
    }
    request.model = settings.model.as_deref().map(Into::into);
    request.output_format = settings.output_format.as_deref().map(Into::into);
    request.text_prompt = settings.text_prompt.clone();
    request.webhook_url = settings.webhook_url.clone();
    Ok(request)
}

fn start_request(
    settings: &JobSettings,
    preview_duration: Option<f64>,
) -> Result<StartJobRequest, Error> {
    let mut request = StartJobRequest::default();
    if let Some(background) = background(&settings.background)? {
        request = request.with_background(&background);
    }
    request.model = settings.model.as_deref().map(Into::into);
    request.output_format = settings.output_format.as_deref().map(Into::into);
    request.text_prompt = settings.text_prompt.clone();
    request.webhook_url = settings.webhook_url.clone();
    request.preview_duration = preview_duration;
    Ok(request)
}

/// A number given to `flag`, converted by one of the core's `units` rules (which never panic,
/// unlike `Duration::from_secs_f64` on NaN, infinity, negatives or 1e20). The problem names
/// the flag as typed: the rule says `timeout`, the command line `--timeout`.
pub fn flag_number<T>(
    flag: &str,
    convert: impl FnOnce(&str) -> Result<T, Problem>,
) -> Result<T, Error> {
    let path = format!("/{}", flag.trim_start_matches('-').replace('-', "_"));
    convert(&path).map_err(|mut problem| {
        if let Some(rule) = problem.message.strip_prefix(&display_path(&path)) {
            problem.message = format!("{flag}{rule}");
        }
        Error::from(problem)
    })
}

/// The fastest clock the sandbox may be given: a million times real time already finishes a
/// 10-minute video in under a millisecond, and a bound keeps `elapsed * speed` far from
/// overflowing a duration.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// A `--speed` flag: a clock factor above 0 and at most [`MAX_SPEED`].
pub fn speed(value: f64) -> Result<f64, Error> {
    flag_number("--speed", |path| units::factor(path, value, 0.0, MAX_SPEED))
}

/// `--timeout` in seconds as a wait limit.
pub fn limit(seconds: Option<f64>) -> Result<WaitLimit, Error> {
    match seconds {
        None => Ok(WaitLimit::Default),
        Some(s) => {
            flag_number("--timeout", |path| units::positive_seconds(path, s)).map(WaitLimit::After)
        }
    }
}

pub fn job_line(job: &Job) -> String {
    let mut line = format!("{}  {}", job.id, job.status);
    if let Some(progress) = job.progress {
        line.push_str(&format!("  {progress:.0}%"));
    }
    if let Some(url) = &job.output_url {
        line.push_str(&format!("  {url}"));
    }
    if let Some(error) = &job.error {
        line.push_str(&format!("  error: {error}"));
    }
    line
}

pub fn upload(
    client: &Client,
    file: &std::path::Path,
    key: Option<String>,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<(), Error> {
    let uploaded = client.upload(file, &call_options(cancel, key))?;
    print_result(
        &json!(uploaded),
        &format!(
            "{}  {} bytes  {}",
            uploaded.video_id, uploaded.size, uploaded.video_url
        ),
        json_mode,
    );
    Ok(())
}

pub fn jobs(
    client: &Client,
    command: &Jobs,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<(), Error> {
    match command {
        Jobs::Create {
            video_url,
            settings,
            metadata,
            no_start,
            idempotency_key,
        } => {
            let mut request = create_request(video_url, settings)?;
            if let Some(text) = metadata {
                let value: Value = serde_json::from_str(text).map_err(|e| {
                    usage_error(
                        "/metadata",
                        ProblemCode::InvalidType,
                        format!("--metadata is not JSON: {e}"),
                    )
                })?;
                let Value::Object(map) = value else {
                    return Err(usage_error(
                        "/metadata",
                        ProblemCode::InvalidType,
                        "--metadata must be a JSON object".into(),
                    ));
                };
                request.metadata = Some(map);
            }
            if *no_start {
                request.auto_start = Some(false);
            }
            let accepted =
                client.create_job(&request, &call_options(cancel, idempotency_key.clone()))?;
            print_result(
                &json!(accepted),
                &format!("{}  {}", accepted.id, accepted.status),
                json_mode,
            );
        }
        Jobs::Start {
            id,
            settings,
            preview_duration,
            idempotency_key,
        } => {
            let request = start_request(settings, *preview_duration)?;
            let accepted =
                client.start_job(id, &request, &call_options(cancel, idempotency_key.clone()))?;
            print_result(
                &json!(accepted),
                &format!("{}  {}", accepted.id, accepted.status),
                json_mode,
            );
        }
        Jobs::Get { id } => {
            let job = client.get_job(id, &call_options(cancel, None))?;
            print_result(&json!(job), &job_line(&job), json_mode);
        }
        Jobs::List {
            limit,
            offset,
            status,
        } => {
            let query = ListJobsQuery {
                limit: *limit,
                offset: *offset,
                status: status.as_deref().map(Into::into),
            };
            let list = client.list_jobs(&query, &call_options(cancel, None))?;
            let lines: Vec<String> = list.jobs.iter().map(job_line).collect();
            let human = if lines.is_empty() {
                "no jobs".to_owned()
            } else {
                lines.join("\n")
            };
            print_result(&json!(list), &human, json_mode);
        }
        Jobs::Wait { id, timeout } => {
            let options = WaitOptions {
                limit: limit(*timeout)?,
                call: call_options(cancel, None),
                ..Default::default()
            };
            let job = client.wait(id, &options)?;
            print_result(&json!(job), &job_line(&job), json_mode);
        }
        Jobs::Download {
            id,
            path,
            overwrite,
        } => {
            let options = DownloadOptions {
                overwrite: *overwrite,
                call: call_options(cancel, None),
            };
            let download = client.download(id, path, &options)?;
            let value =
                json!({ "path": download.path, "bytes": download.bytes, "job": download.job });
            print_result(
                &value,
                &format!("{}  {} bytes", download.path.display(), download.bytes),
                json_mode,
            );
        }
    }
    Ok(())
}

pub fn usage(
    client: &Client,
    command: &Usage,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<(), Error> {
    match command {
        Usage::Summary { days } => {
            let summary = client.usage_summary(
                &UsageSummaryQuery { days: *days },
                &call_options(cancel, None),
            )?;
            let human = format!(
                "jobs {}  completed {}  credits used {}{}",
                summary.total_jobs,
                summary.completed_jobs,
                summary.credits_used,
                summary
                    .credits_remaining
                    .map(|c| format!("  credits left {c}"))
                    .unwrap_or_default()
            );
            print_result(&json!(summary), &human, json_mode);
        }
        Usage::Events { limit } => {
            let events = client.usage_events(
                &UsageEventsQuery { limit: *limit },
                &call_options(cancel, None),
            )?;
            let lines: Vec<String> = events
                .events
                .iter()
                .map(|e| {
                    format!(
                        "{}  {}  {}  {}",
                        e.created_at.as_deref().unwrap_or("-"),
                        e.event.as_deref().unwrap_or("-"),
                        e.job_id.as_deref().unwrap_or("-"),
                        e.credits.map(|c| c.to_string()).unwrap_or_default()
                    )
                })
                .collect();
            print_result(&json!(events), &lines.join("\n"), json_mode);
        }
    }
    Ok(())
}

/// `webhooks verify`: the headers file is a JSON object or "Name: value" lines.
pub fn verify_webhook(
    secret: &str,
    headers: &std::path::Path,
    body: &std::path::Path,
    tolerance: u64,
    json_mode: bool,
) -> Result<(), Error> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            usage_error(
                "/file",
                ProblemCode::Required,
                format!("cannot read {}: {e}", path.display()),
            )
        })
    };
    let header_text = String::from_utf8_lossy(&read(headers)?).into_owned();
    let pairs: Vec<(String, String)> = match serde_json::from_str::<Value>(&header_text) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        _ => header_text
            .lines()
            .filter_map(|line| {
                line.split_once(':')
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            })
            .collect(),
    };
    let headers: removebgvideo::core::Headers = pairs.into_iter().collect();
    let now = removebgvideo::core::Timestamp::from(std::time::SystemTime::now());
    let verified = removebgvideo::webhook::verify(
        &headers,
        &read(body)?,
        secret,
        now,
        Duration::from_secs(tolerance),
    )?;
    let human = format!(
        "valid {} delivery for job {} ({})",
        verified.event, verified.data.id, verified.data.status
    );
    print_result(&json!(verified), &human, json_mode);
    Ok(())
}
