//! Runs one operation on the client: its arguments, checked, become the client's requests and
//! options; its result comes back as JSON.

use removebgvideo_core::validate::Validate;
use removebgvideo_core::{Background, Problem, ProblemCode};
use serde_json::json;

use super::checks::{Problems, positive_ms};
use super::number::Float;
use super::operation::{
    BackgroundArg, CreateJobArgs, DownloadArgs, Operation, RunArgs, StartJobArgs, WaitArgs,
};
use super::{guarded, to_json};
use crate::{
    CallOptions, Client, CreateJobRequest, Download, DownloadOptions, Error, ListJobsQuery,
    PollPolicy, RunOptions, RunRequest, StartJobRequest, UsageEventsQuery, UsageSummaryQuery,
    VideoSource, WaitLimit, WaitOptions,
};

/// Calls one operation, given as the bindings' JSON; the result as JSON. This is the one
/// entry of the bindings' calls.
pub fn call(client: &Client, operation_json: &str, call: CallOptions) -> Result<String, Error> {
    guarded(|| dispatch(client, Operation::from_json(operation_json)?, call))
}

/// Calls one operation already read (a binding that needs to know it first, to pick a thread).
pub fn call_operation(
    client: &Client,
    operation: Operation,
    call: CallOptions,
) -> Result<String, Error> {
    guarded(|| dispatch(client, operation, call))
}

fn dispatch(client: &Client, operation: Operation, call: CallOptions) -> Result<String, Error> {
    match operation {
        Operation::Health(_) => client.health(&call).map(to_json),
        Operation::Upload(args) => client.upload(&args.path, &call).map(to_json),
        Operation::CreateJob(args) => client
            .create_job(&create_request(args)?, &call)
            .map(to_json),
        Operation::StartJob(args) => {
            let job_id = args.job_id.clone();
            client
                .start_job(&job_id, &start_request(args)?, &call)
                .map(to_json)
        }
        Operation::GetJob(args) => client.get_job(&args.job_id, &call).map(to_json),
        Operation::ListJobs(args) => {
            let query = ListJobsQuery {
                limit: args.limit,
                offset: args.offset,
                status: args.status,
            };
            client.list_jobs(&query, &call).map(to_json)
        }
        Operation::UsageSummary(args) => {
            let query = UsageSummaryQuery { days: args.days };
            client.usage_summary(&query, &call).map(to_json)
        }
        Operation::UsageEvents(args) => {
            let query = UsageEventsQuery { limit: args.limit };
            client.usage_events(&query, &call).map(to_json)
        }
        Operation::LegacyDownload(args) => client.legacy_download(&args.job_id, &call).map(to_json),
        Operation::Wait(args) => wait(client, args, call),
        Operation::Download(args) => download(client, args, call),
        Operation::Run(args) => run(client, args, call),
    }
}

/// How long a wait or a run may take, and its polling schedule, checked.
fn limit_and_poll(
    problems: &mut Problems,
    timeout_ms: Option<Float>,
    unbounded: Option<bool>,
    poll: Option<&super::policy::PollPolicyArgs>,
) -> (WaitLimit, Option<PollPolicy>) {
    let timeout = positive_ms(problems, "/arguments/timeout", timeout_ms);
    let limit = match (unbounded.unwrap_or(false), timeout) {
        (true, _) => WaitLimit::Unbounded,
        (false, Some(after)) => WaitLimit::After(after),
        (false, None) => WaitLimit::Default,
    };
    let poll = poll.and_then(|p| p.resolve(problems, "/arguments/poll_policy"));
    (limit, poll)
}

fn wait(client: &Client, args: WaitArgs, call: CallOptions) -> Result<String, Error> {
    let mut problems = Problems::default();
    let (limit, poll) = limit_and_poll(
        &mut problems,
        args.timeout_ms,
        args.unbounded,
        args.poll_policy.as_ref(),
    );
    let wait = problems.finish(WaitOptions { limit, poll, call })?;
    client.wait(&args.job_id, &wait).map(to_json)
}

fn download_json(done: Download) -> serde_json::Value {
    json!({ "path": done.path, "bytes": done.bytes, "job": done.job })
}

fn download(client: &Client, args: DownloadArgs, call: CallOptions) -> Result<String, Error> {
    let download = DownloadOptions {
        overwrite: args.overwrite.unwrap_or(false),
        call,
    };
    let done = match (args.job, args.job_id) {
        (Some(job), None) => client.download_job(job, &args.path, &download),
        (None, Some(id)) => client.download(&id, &args.path, &download),
        (None, None) => Err(Error::validation(vec![Problem::error(
            "/arguments/job_id",
            ProblemCode::Required,
            "download needs a job or a job_id",
        )])),
        (Some(_), Some(_)) => Err(Error::validation(vec![Problem::error(
            "/arguments/job_id",
            ProblemCode::NotApplicable,
            "download takes a job or a job_id, not both",
        )])),
    }?;
    Ok(to_json(download_json(done)))
}

fn run(client: &Client, args: RunArgs, call: CallOptions) -> Result<String, Error> {
    let mut problems = Problems::default();
    let (limit, poll) = limit_and_poll(
        &mut problems,
        args.timeout_ms,
        args.unbounded,
        args.poll_policy.as_ref(),
    );
    let run = problems.finish(RunOptions { limit, poll, call })?;
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
    let result = client.run(&request, &run)?;
    Ok(to_json(json!({
        "job": result.job,
        "upload": result.upload,
        "output": result.output.map(download_json),
    })))
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
        Some(Err(background_error)) => {
            // A background was given, so the alpha rule (which reads an absent background
            // as the default transparent one) would report a problem the caller does not have.
            let mut problems: Vec<Problem> = request
                .problems()
                .into_iter()
                .filter(|p| p.code != ProblemCode::AlphaUnsupported)
                .collect();
            problems.extend(background_error.problems);
            Err(Error::validation(problems))
        }
    }
}
