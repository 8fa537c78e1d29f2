//! `NativeClient`: every client method behind one JSON-in, JSON-out `call`, run with the GIL
//! released; long calls stay interruptible by Ctrl-C and cancellable from asyncio.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;
use removebgvideo::core::Job;
use removebgvideo::core::ProblemCode;
use removebgvideo::core::validate::Validate;
use removebgvideo::{
    CancelToken, Client, CreateJobRequest, DownloadOptions, Error, Event, ListJobsQuery,
    RunOptions, RunRequest, StartJobRequest, UsageEventsQuery, UsageSummaryQuery, VideoSource,
    WaitOptions,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::convert::{BackgroundArg, OptionsArgs, SettingsArgs, from_json, to_py_err};

/// How often a blocking call looks for Ctrl-C while the GIL is released.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// A cancellation flag shared with Python (asyncio cancellation raises it).
#[derive(Debug)]
#[pyclass(module = "removebgvideo._native", frozen)]
pub struct NativeCancel {
    pub(crate) token: CancelToken,
}

#[pymethods]
impl NativeCancel {
    #[new]
    fn new() -> Self {
        NativeCancel {
            token: CancelToken::new(),
        }
    }

    /// Stops the calls using this token at their next pause.
    fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether it was cancelled.
    fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// The Rust client, shared by all Python threads.
#[derive(Debug)]
#[pyclass(module = "removebgvideo._native", frozen)]
pub struct NativeClient {
    client: Client,
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
    /// The request with its background; a bad background is reported together with every
    /// other problem of the request, not alone.
    fn resolve(self) -> Result<CreateJobRequest, Error> {
        match self.typed_background.map(|b| b.resolve()) {
            None => Ok(self.request),
            Some(Ok(background)) => Ok(self.request.with_background(&background)),
            Some(Err(background_error)) => {
                // A background was given, so the alpha rule (which reads an absent background
                // as the default transparent one) would report a problem the caller does not have.
                let mut problems: Vec<_> = self
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

/// Runs long work on a helper thread while this one waits with the GIL released, looking
/// for Ctrl-C every 50 ms: on an interrupt the work is cancelled and KeyboardInterrupt raised.
fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &CancelToken,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let (sender, mut receiver) = mpsc::channel();
        scope.spawn(move || {
            let _ = sender.send(work());
        });
        loop {
            let (back, received) = py.detach(move || {
                let received = receiver.recv_timeout(SIGNAL_CHECK);
                (receiver, received)
            });
            receiver = back;
            match received {
                Ok(value) => return Ok(value),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        cancel.cancel();
                        // The work stops at its next pause; wait for it without the GIL.
                        let _ = py.detach(move || receiver.recv());
                        return Err(interrupt);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "the client's worker thread stopped unexpectedly",
                    ));
                }
            }
        }
    })
}

fn to_json(value: impl serde::Serialize) -> String {
    serde_json::to_string(&value).expect("our types serialize")
}

#[pymethods]
impl NativeClient {
    /// Builds the client from `Client(...)`'s settings, as JSON.
    #[new]
    fn new(py: Python<'_>, settings_json: &str) -> PyResult<Self> {
        let settings: SettingsArgs = from_json(py, "settings", settings_json)?;
        let client = settings
            .builder()
            .and_then(|b| b.build())
            .map_err(|e| to_py_err(py, e))?;
        Ok(NativeClient { client })
    }

    /// The settings, without the key (for `repr`).
    fn describe(&self) -> String {
        let settings = self.client.settings();
        to_json(json!({
            "base_url": settings.base_url,
            "max_retries": settings.retry.max_retries,
            "timeout": settings.request_timeout.as_secs_f64(),
        }))
    }

    /// Calls one operation: `args_json` and `options_json` in, the result as JSON out.
    #[pyo3(signature = (operation, args_json, options_json, on_event=None, cancel=None))]
    fn call(
        &self,
        py: Python<'_>,
        operation: &str,
        args_json: &str,
        options_json: &str,
        on_event: Option<Py<PyAny>>,
        cancel: Option<Py<NativeCancel>>,
    ) -> PyResult<String> {
        let options: OptionsArgs = from_json(py, "options", options_json)?;
        let mut call = options.call();
        let token = cancel.map(|c| c.get().token.clone()).unwrap_or_default();
        call.cancel = Some(token.clone());
        if let Some(callback) = on_event {
            call.on_event = Some(Arc::new(move |event: &Event| {
                let json = to_json(event);
                Python::attach(|py| {
                    if let Err(error) = callback.call1(py, (json,)) {
                        error.write_unraisable(py, None);
                    }
                });
            }));
        }
        let client = &self.client;
        let args: Value = from_json(py, "arguments", args_json)?;
        let arg = |what: &str| -> PyResult<String> {
            args.get(what)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    pyo3::exceptions::PyTypeError::new_err(format!("{operation} needs {what}"))
                })
        };
        let result: Result<String, Error> = match operation {
            "health" => py.detach(|| client.health(&call).map(to_json)),
            "upload" => {
                let path = PathBuf::from(arg("path")?);
                interruptible(py, &token, || client.upload(&path, &call).map(to_json))?
            }
            "create_job" => {
                let args: CreateArgs = from_json(py, "arguments", args_json)?;
                py.detach(|| {
                    args.resolve()
                        .and_then(|r| client.create_job(&r, &call))
                        .map(to_json)
                })
            }
            "start_job" => {
                let args: StartArgs = from_json(py, "arguments", args_json)?;
                py.detach(|| {
                    let request = match &args.typed_background {
                        Some(background) => background
                            .resolve()
                            .map(|b| args.request.clone().with_background(&b)),
                        None => Ok(args.request.clone()),
                    }?;
                    client.start_job(&args.job_id, &request, &call).map(to_json)
                })
            }
            "get_job" => {
                let JobId { job_id } = from_json(py, "arguments", args_json)?;
                py.detach(|| client.get_job(&job_id, &call).map(to_json))
            }
            "list_jobs" => {
                let query: ListJobsQuery = from_json(py, "arguments", args_json)?;
                py.detach(|| client.list_jobs(&query, &call).map(to_json))
            }
            "usage_summary" => {
                let query: UsageSummaryQuery = from_json(py, "arguments", args_json)?;
                py.detach(|| client.usage_summary(&query, &call).map(to_json))
            }
            "usage_events" => {
                let query: UsageEventsQuery = from_json(py, "arguments", args_json)?;
                py.detach(|| client.usage_events(&query, &call).map(to_json))
            }
            "legacy_download" => {
                let JobId { job_id } = from_json(py, "arguments", args_json)?;
                py.detach(|| client.legacy_download(&job_id, &call).map(to_json))
            }
            "wait" => {
                let JobId { job_id } = from_json(py, "arguments", args_json)?;
                let wait = WaitOptions {
                    limit: options.limit(),
                    poll: options.poll.clone(),
                    call,
                };
                interruptible(py, &token, || client.wait(&job_id, &wait).map(to_json))?
            }
            "download" => {
                let args: DownloadArgs = from_json(py, "arguments", args_json)?;
                let download = DownloadOptions {
                    overwrite: options.overwrite,
                    call,
                };
                interruptible(py, &token, || {
                    let done = match (args.job, args.job_id) {
                        (Some(job), _) => client.download_job(job, &args.path, &download),
                        (None, Some(id)) => client.download(&id, &args.path, &download),
                        (None, None) => Err(Error::validation(vec![
                            removebgvideo::core::Problem::error(
                                "/job_id",
                                removebgvideo::core::ProblemCode::Required,
                                "download needs a job or a job_id",
                            ),
                        ])),
                    }?;
                    Ok(to_json(
                        json!({ "path": done.path, "bytes": done.bytes, "job": done.job }),
                    ))
                })?
            }
            "run" => {
                let args: RunArgs = from_json(py, "arguments", args_json)?;
                let run = RunOptions {
                    limit: options.limit(),
                    poll: options.poll.clone(),
                    call,
                };
                interruptible(py, &token, || {
                    let source = match &args.file {
                        Some(file) => VideoSource::File(file.clone()),
                        None => VideoSource::Url(args.create.request.video_url.clone()),
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
                })?
            }
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown operation {other:?}"
                )));
            }
        };
        result.map_err(|e| to_py_err(py, e))
    }
}
