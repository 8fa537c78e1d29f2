//! Runs one operation on the client: its arguments, checked, become the client's requests and
//! options; its result comes back as JSON.

use std::marker::PhantomData;
use std::path::PathBuf;

use removebgvideo_core::http::{HttpRequest, ResponseBody};
use removebgvideo_core::machine::TransmitBody;
use removebgvideo_core::validate::{Validate, problems_with_background};
use removebgvideo_core::{
    Background, Health, Job, JobAccepted, JobList, LegacyDownload, Problem, ProblemCode,
    UsageEvents, UsageSummary,
};
use serde::Serialize;
use serde_json::json;

use super::checks::{Problems, positive_ms};
use super::number::Float;
use super::operation::{
    BackgroundArg, CreateJobArgs, DownloadArgs, Operation, RunArgs, StartJobArgs, WaitArgs,
};
use super::{guarded, to_json};
use crate::{
    CallOptions, Callback, Client, CreateJobRequest, Download, DownloadOptions, Error,
    ListJobsQuery, PollPolicy, RunOptions, RunRequest, RunResult, StartJobRequest,
    UsageEventsQuery, UsageSummaryQuery, VideoSource, WaitLimit, WaitOptions,
};

/// Calls one operation, given as the bindings' JSON, on the caller's thread; the result as
/// JSON. This is the one entry of the bindings' blocking calls.
pub fn call(client: &Client, operation_json: &str, call: CallOptions) -> Result<String, Error> {
    guarded(|| prepare(client, Operation::from_json(operation_json)?, &call)?.run(client, &call))
}

/// Calls one operation already read (a binding that needs to know it first, to pick a thread).
pub fn call_operation(
    client: &Client,
    operation: Operation,
    call: CallOptions,
) -> Result<String, Error> {
    guarded(|| prepare(client, operation, &call)?.run(client, &call))
}

/// Hands one operation to the client's engine; `done` receives the result as JSON on one of
/// the engine's workers (or at once, for arguments that do not check out). This is the one
/// entry of the bindings' promises and futures: no thread waits for the call.
pub fn submit(client: &Client, operation: Operation, call: CallOptions, done: Callback<String>) {
    match guarded(|| prepare(client, operation, &call)) {
        Ok(prepared) => prepared.submit(client, &call, done),
        Err(error) => done(Err(error)),
    }
}

/// An operation whose arguments checked out, ready to run on either path.
trait Prepared {
    /// On the caller's thread.
    fn run(self: Box<Self>, client: &Client, call: &CallOptions) -> Result<String, Error>;
    /// On the engine.
    fn submit(self: Box<Self>, client: &Client, call: &CallOptions, done: Callback<String>);
}

/// One API request whose answer is a `T`.
struct Api<T> {
    request: Result<HttpRequest, Error>,
    body: TransmitBody,
    answer: PhantomData<fn() -> T>,
}

fn api<T>(request: Result<HttpRequest, Error>) -> Result<Box<dyn Prepared>, Error>
where
    T: ResponseBody + Serialize + Send + 'static,
{
    Ok(Box::new(Api::<T> {
        request,
        body: TransmitBody::Json,
        answer: PhantomData,
    }))
}

impl<T: ResponseBody + Serialize + Send + 'static> Prepared for Api<T> {
    fn run(self: Box<Self>, client: &Client, call: &CallOptions) -> Result<String, Error> {
        client
            .execute::<T>(self.request?, self.body, call, None)
            .map(|(value, _)| to_json(value))
    }

    fn submit(self: Box<Self>, client: &Client, call: &CallOptions, done: Callback<String>) {
        client.submit_call::<T>(
            self.request,
            self.body,
            call,
            Box::new(move |outcome| done(outcome.map(to_json))),
        );
    }
}

/// Checks an operation's arguments and builds what the client runs for it.
fn prepare(
    client: &Client,
    operation: Operation,
    call: &CallOptions,
) -> Result<Box<dyn Prepared>, Error> {
    let builder = client.builder_ref();
    let key = || Client::idempotency_key(call);
    match operation {
        Operation::Health(_) => api::<Health>(Ok(builder.health())),
        Operation::Upload(args) => Ok(Box::new(Upload(args.path))),
        Operation::CreateJob(args) => {
            api::<JobAccepted>(builder.create_job(&create_request(args)?, &key()))
        }
        Operation::StartJob(args) => {
            let job_id = args.job_id.clone();
            api::<JobAccepted>(builder.start_job(&job_id, &start_request(args)?, &key()))
        }
        Operation::GetJob(args) => api::<Job>(builder.get_job(&args.job_id)),
        Operation::ListJobs(args) => api::<JobList>(builder.list_jobs(&ListJobsQuery {
            limit: args.limit,
            offset: args.offset,
            status: args.status,
        })),
        Operation::UsageSummary(args) => {
            api::<UsageSummary>(builder.usage_summary(&UsageSummaryQuery { days: args.days }))
        }
        Operation::UsageEvents(args) => {
            api::<UsageEvents>(builder.usage_events(&UsageEventsQuery { limit: args.limit }))
        }
        Operation::LegacyDownload(args) => {
            api::<LegacyDownload>(builder.legacy_download(&args.job_id))
        }
        Operation::Wait(args) => wait(args, call),
        Operation::Download(args) => download(args, call),
        Operation::Run(args) => run(args, call),
    }
}

/// How long a wait or a run may take, and its polling schedule, checked (every problem of
/// both at once).
fn limit_and_poll(
    timeout_ms: Option<Float>,
    unbounded: Option<bool>,
    poll: Option<&super::policy::PollPolicyArgs>,
) -> Result<(WaitLimit, Option<PollPolicy>), Error> {
    let mut problems = Problems::default();
    let timeout = positive_ms(&mut problems, "/arguments/timeout", timeout_ms);
    let limit = match (unbounded.unwrap_or(false), timeout) {
        (true, _) => WaitLimit::Unbounded,
        (false, Some(after)) => WaitLimit::After(after),
        (false, None) => WaitLimit::Default,
    };
    let poll = poll.and_then(|p| p.resolve(&mut problems, "/arguments/poll_policy"));
    problems.finish((limit, poll))
}

/// An upload of a file.
struct Upload(PathBuf);

impl Prepared for Upload {
    fn run(self: Box<Self>, client: &Client, call: &CallOptions) -> Result<String, Error> {
        client.upload(&self.0, call).map(to_json)
    }

    fn submit(self: Box<Self>, client: &Client, call: &CallOptions, done: Callback<String>) {
        client.submit_upload(
            &self.0,
            call,
            Box::new(move |outcome| done(outcome.map(to_json))),
        );
    }
}

/// A wait, its limit and schedule checked.
struct Wait {
    job_id: String,
    options: WaitOptions,
}

fn wait(args: WaitArgs, call: &CallOptions) -> Result<Box<dyn Prepared>, Error> {
    let (limit, poll) = limit_and_poll(args.timeout_ms, args.unbounded, args.poll_policy.as_ref())?;
    let options = WaitOptions {
        limit,
        poll,
        call: call.clone(),
    };
    Ok(Box::new(Wait {
        job_id: args.job_id,
        options,
    }))
}

impl Prepared for Wait {
    fn run(self: Box<Self>, client: &Client, _call: &CallOptions) -> Result<String, Error> {
        client.wait(&self.job_id, &self.options).map(to_json)
    }

    fn submit(self: Box<Self>, client: &Client, _call: &CallOptions, done: Callback<String>) {
        client.submit_wait(
            &self.job_id,
            &self.options,
            Box::new(move |outcome| done(outcome.map(to_json))),
        );
    }
}

fn download_json(done: Download) -> String {
    to_json(json!({ "path": done.path, "bytes": done.bytes, "job": done.job }))
}

/// A download of a job in hand, or of a job read first by its id.
struct Fetch {
    job: Result<Job, String>,
    path: PathBuf,
    options: DownloadOptions,
}

fn download(args: DownloadArgs, call: &CallOptions) -> Result<Box<dyn Prepared>, Error> {
    let job = match (args.job, args.job_id) {
        (Some(job), None) => Ok(job),
        (None, Some(id)) => Err(id),
        (None, None) => {
            return Err(Error::validation(vec![Problem::error(
                "/arguments/job_id",
                ProblemCode::Required,
                "download needs a job or a job_id",
            )]));
        }
        (Some(_), Some(_)) => {
            return Err(Error::validation(vec![Problem::error(
                "/arguments/job_id",
                ProblemCode::NotApplicable,
                "download takes a job or a job_id, not both",
            )]));
        }
    };
    let options = DownloadOptions {
        overwrite: args.overwrite.unwrap_or(false),
        call: call.clone(),
    };
    Ok(Box::new(Fetch {
        job,
        path: args.path,
        options,
    }))
}

impl Prepared for Fetch {
    fn run(self: Box<Self>, client: &Client, _call: &CallOptions) -> Result<String, Error> {
        let done = match self.job {
            Ok(job) => client.download_job(job, &self.path, &self.options),
            Err(id) => client.download(&id, &self.path, &self.options),
        }?;
        Ok(download_json(done))
    }

    fn submit(self: Box<Self>, client: &Client, _call: &CallOptions, done: Callback<String>) {
        let Fetch { job, path, options } = *self;
        let finish: Callback<Download> = Box::new(move |outcome| done(outcome.map(download_json)));
        match job {
            Ok(job) => client.submit_download(job, &path, &options, finish),
            Err(id) => {
                // The job is read first, through the engine too, then downloaded.
                let then = client.clone();
                let read = client.builder_ref().get_job(&id);
                let call = options.call.clone();
                client.submit_call::<Job>(
                    read,
                    TransmitBody::Json,
                    &call,
                    Box::new(move |outcome| match outcome {
                        Ok(job) => then.submit_download(job, &path, &options, finish),
                        Err(error) => finish(Err(error)),
                    }),
                );
            }
        }
    }
}

/// A whole run.
struct Run {
    request: RunRequest,
    options: RunOptions,
}

fn run(args: RunArgs, call: &CallOptions) -> Result<Box<dyn Prepared>, Error> {
    let (limit, poll) = limit_and_poll(args.timeout_ms, args.unbounded, args.poll_policy.as_ref())?;
    let options = RunOptions {
        limit,
        poll,
        call: call.clone(),
    };
    // Exactly one source: a URL, or a file to upload first.
    let video_url = args.video_url.unwrap_or_default();
    let source = match (args.file, video_url.trim().is_empty()) {
        (Some(file), true) => VideoSource::File(file),
        (None, false) => VideoSource::Url(video_url.clone()),
        _ => {
            return Err(Error::validation(vec![Problem::error(
                "/video_url",
                ProblemCode::Required,
                "run needs exactly one source: video_url or file",
            )]));
        }
    };
    let job = create_request(CreateJobArgs {
        video_url,
        model: args.model,
        output_format: args.output_format,
        background: args.background,
        text_prompt: args.text_prompt,
        webhook_url: args.webhook_url,
        auto_start: None,
        metadata: args.metadata,
    })?;
    let request = RunRequest {
        source,
        job,
        start: None,
        download_to: args.output,
        overwrite: args.overwrite.unwrap_or(false),
    };
    Ok(Box::new(Run { request, options }))
}

fn run_json(result: RunResult) -> String {
    to_json(json!({
        "job": result.job,
        "upload": result.upload,
        "output": result.output.map(|o| json!({ "path": o.path, "bytes": o.bytes, "job": o.job })),
    }))
}

impl Prepared for Run {
    fn run(self: Box<Self>, client: &Client, _call: &CallOptions) -> Result<String, Error> {
        client.run(&self.request, &self.options).map(run_json)
    }

    fn submit(self: Box<Self>, client: &Client, _call: &CallOptions, done: Callback<String>) {
        client.submit_run(
            &self.request,
            &self.options,
            Box::new(move |outcome| done(outcome.map(run_json))),
        );
    }
}

fn create_request(args: CreateJobArgs) -> Result<CreateJobRequest, Error> {
    let request = CreateJobRequest {
        video_url: args.video_url,
        model: args.model,
        output_format: args.output_format,
        text_prompt: args.text_prompt,
        webhook_url: args.webhook_url,
        auto_start: args.auto_start,
        metadata: args.metadata,
        ..CreateJobRequest::default()
    };
    with_background(
        request,
        args.background.as_ref(),
        CreateJobRequest::with_background,
    )
}

fn start_request(args: StartJobArgs) -> Result<StartJobRequest, Error> {
    let request = StartJobRequest {
        model: args.model,
        output_format: args.output_format,
        text_prompt: args.text_prompt,
        webhook_url: args.webhook_url,
        composition: args.composition,
        preview_duration: args.preview_duration,
        ..StartJobRequest::default()
    };
    with_background(
        request,
        args.background.as_ref(),
        StartJobRequest::with_background,
    )
}

/// The request with its background; a bad background is reported with every other problem
/// of the request, not alone.
fn with_background<R: Validate>(
    request: R,
    background: Option<&BackgroundArg>,
    set: fn(R, &Background) -> R,
) -> Result<R, Error> {
    let resolved = background.map(|b| match b {
        BackgroundArg::Text(text) => Background::parse(text),
        BackgroundArg::Rgb(channels) => Background::from_rgb(*channels),
    });
    match resolved {
        None => Ok(request),
        Some(Ok(background)) => Ok(set(request, &background)),
        bad @ Some(Err(_)) => Err(Error::validation(problems_with_background(
            &request,
            bad.as_ref(),
        ))),
    }
}
