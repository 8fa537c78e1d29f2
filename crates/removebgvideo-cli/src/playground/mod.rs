//! `playground`: the API Playground checklist as one command, against the embedded sandbox
//! (no key, no network) or any server, with a JSON and Markdown report and the SLA baseline.

mod checks;
mod paths;
mod report;
mod scenarios;
mod usage;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use removebgvideo::{CallOptions, CancelToken, Client, Error, ErrorCode, PollPolicy};
use removebgvideo_sandbox::{Sandbox, SandboxConfig};
use serde::Serialize;

use crate::args::{Global, PlaygroundArgs};
use crate::commands::{client, usage_error};
use crate::output::exit;
pub use report::Report;

/// The input the embedded sandbox runs: the API Playground's URL, a 10 s video.
const SANDBOX_VIDEO: &str = "https://cdn.removebgvideo.com/uploads/your-video.mp4?duration=10";
/// Scenario runs in flight at once.
const PARALLEL_RUNS: usize = 4;

/// Where the checklist runs, and with which clients.
pub struct Target {
    pub client: Client,
    pub invalid_client: Client,
    pub rate_limited_client: Option<Client>,
    /// A key without credits: the sandbox's own, or `--no-credits-key` against a server.
    pub no_credits_client: Option<Client>,
    pub sandbox: Option<Sandbox>,
    pub base_url: String,
    pub video_urls: Vec<String>,
    pub poll: Option<PollPolicy>,
    pub work_dir: PathBuf,
    /// Raised by Ctrl-C or SIGTERM: every call of the playground stops.
    pub cancel: CancelToken,
}

impl Target {
    /// Options for one call: it stops when the playground is cancelled.
    pub fn call(&self) -> CallOptions {
        CallOptions {
            cancel: Some(self.cancel.clone()),
            ..CallOptions::default()
        }
    }
}

/// One response, for the observability check.
#[derive(Clone, Debug, Serialize)]
pub struct ResponseRecord {
    pub job_id: String,
    pub request_id: Option<String>,
}

fn target(
    global: &Global,
    args: &PlaygroundArgs,
    speed: f64,
    cancel: &CancelToken,
) -> Result<Target, Error> {
    let work_dir =
        std::env::temp_dir().join(format!("removebgvideo-playground-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).map_err(|e| {
        Error::new(
            "download_failed".into(),
            format!("cannot create {}: {e}", work_dir.display()),
        )
    })?;
    match &global.base_url {
        None => {
            let sandbox = Sandbox::start(SandboxConfig {
                speed,
                ..SandboxConfig::default()
            })
            .map_err(|e| {
                Error::new(
                    "connection_error".into(),
                    format!("cannot start the embedded sandbox: {e}"),
                )
            })?;
            let base = sandbox.base_url().to_owned();
            // The sandbox's clock runs `speed` times faster: poll as much faster, so the figures
            // measure the emulated service, not our polling.
            let poll = PollPolicy {
                // `speed` is a checked factor, so these quotients are finite and positive.
                initial_interval: Duration::from_secs_f64(1.0 / speed)
                    .max(Duration::from_millis(5)),
                max_interval: Duration::from_secs_f64(10.0 / speed).max(Duration::from_millis(20)),
                min_interval: Duration::from_millis(5),
                ..PollPolicy::default()
            };
            let video_urls = if args.video_urls.is_empty() {
                vec![SANDBOX_VIDEO.into()]
            } else {
                args.video_urls.clone()
            };
            Ok(Target {
                client: client(global, Some(&base), Some(sandbox.demo_key()))?,
                invalid_client: client(global, Some(&base), Some("rbv_playground_invalid_key"))?,
                rate_limited_client: Some(client(
                    global,
                    Some(&base),
                    Some(sandbox.rate_limited_key()),
                )?),
                no_credits_client: Some(client(
                    global,
                    Some(&base),
                    Some(sandbox.no_credits_key()),
                )?),
                base_url: base,
                sandbox: Some(sandbox),
                video_urls,
                poll: Some(poll),
                work_dir,
                cancel: cancel.clone(),
            })
        }
        Some(base) => {
            if args.video_urls.is_empty() {
                return Err(usage_error(
                    "/video_url",
                    removebgvideo::core::ProblemCode::Required,
                    "--video-url is required against a real server (at least one representative video)".into(),
                ));
            }
            Ok(Target {
                client: client(global, None, None)?,
                invalid_client: client(global, None, Some("rbv_playground_invalid_key"))?,
                rate_limited_client: None,
                no_credits_client: args
                    .no_credits_key
                    .as_deref()
                    .map(|key| client(global, None, Some(key)))
                    .transpose()?,
                base_url: base.clone(),
                sandbox: None,
                video_urls: args.video_urls.clone(),
                poll: None,
                work_dir,
                cancel: cancel.clone(),
            })
        }
    }
}

/// Runs everything and returns the report; the exit status says whether all passed.
pub fn run(
    global: &Global,
    args: &PlaygroundArgs,
    cancel: &CancelToken,
) -> Result<(Report, u8), Error> {
    if args.runs == 0 {
        return Err(usage_error(
            "/runs",
            removebgvideo::core::ProblemCode::OutOfRange,
            "--runs must be at least 1".into(),
        ));
    }
    let speed = crate::commands::speed(args.speed)?;
    let started = Instant::now();
    let target = target(global, args, speed, cancel)?;
    let (idempotency, draft) = checks::idempotency(&target);
    let mut checks = vec![
        checks::authentication(&target),
        checks::rate_limits(&target, args.skip_rate_limit),
        idempotency,
    ];
    let draft = draft.as_deref();

    // The usage view is watched over the scenario runs. The timeout, retry and
    // insufficient-credit paths run beside them, to keep the whole command short: only the
    // timeout check's stuck job is of this key, and it is counted.
    let usage_before = usage::before(&target);

    let responses = Mutex::new(Vec::new());
    let plan: Vec<(String, String)> = args
        .models
        .iter()
        .flat_map(|model| (0..args.runs as usize).map(move |i| (model.clone(), i)))
        .map(|(model, i)| {
            let input = target.video_urls[i % target.video_urls.len()].clone();
            (model, input)
        })
        .collect();
    let records = Mutex::new(Vec::new());
    let next = Mutex::new(plan.into_iter());
    let ((timeout, stuck_job), retry, insufficient_credits) = std::thread::scope(|scope| {
        let timeout = scope.spawn(|| paths::timeout(&target, draft));
        let retry = scope.spawn(|| paths::retry(&target, draft));
        let credits = scope.spawn(|| paths::insufficient_credits(&target));
        for _ in 0..PARALLEL_RUNS {
            scope.spawn(|| {
                loop {
                    let Some((model, input)) = next.lock().expect("plan").next() else {
                        break;
                    };
                    let record =
                        scenarios::run_one(&target, &model, &input, &args.text_prompt, &responses);
                    records.lock().expect("records").push(record);
                }
            });
        }
        (
            timeout.join().expect("the timeout check"),
            retry.join().expect("the retry check"),
            credits.join().expect("the insufficient-credits check"),
        )
    });
    let own_jobs: Vec<usage::OwnJob> = records
        .lock()
        .expect("records")
        .iter()
        .filter_map(|r| {
            let id = r.job_id.clone()?;
            let completed = r.final_status == "completed";
            Some(usage::OwnJob {
                id,
                completed,
                credits: if completed {
                    r.credits_used.unwrap_or(0.0)
                } else {
                    0.0
                },
            })
        })
        .chain(stuck_job.map(|id| usage::OwnJob {
            id,
            completed: false,
            credits: 0.0,
        }))
        .collect();
    let usage = usage::check_usage(&target, usage_before, &own_jobs);
    let mut records = records.into_inner().expect("records");
    records.sort_by(|a, b| {
        args.models
            .iter()
            .position(|m| *m == a.model)
            .cmp(&args.models.iter().position(|m| *m == b.model))
    });
    checks.push(checks::observability(
        &responses.into_inner().expect("responses"),
    ));
    checks.push(checks::failure_branch(&target));
    checks.extend([timeout, retry, insufficient_credits, usage]);

    let summaries: Vec<scenarios::ScenarioSummary> = args
        .models
        .iter()
        .map(|m| scenarios::summarize(m, &records))
        .collect();
    let report = Report::new(&target, args, checks, summaries, records, started.elapsed());
    let _ = std::fs::remove_dir_all(&target.work_dir);
    if cancel.is_cancelled() {
        // The checks after the signal failed only because they were stopped: no report.
        return Err(Error::new(
            ErrorCode::Cancelled,
            "the playground was cancelled",
        ));
    }
    let all_passed = report
        .checks
        .iter()
        .all(|c| c.status != checks::Status::Fail)
        && report.scenarios.iter().all(|s| s.succeeded == s.runs);
    Ok((
        report,
        if all_passed {
            exit::OK
        } else {
            exit::CHECKS_FAILED
        },
    ))
}
