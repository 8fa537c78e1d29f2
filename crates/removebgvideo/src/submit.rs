//! Every operation handed to the client's engine instead of the caller's thread: the same core
//! machines as the blocking methods, with a callback that receives the outcome on one of the
//! engine's workers. The bindings' promises and futures, and [`Client::watch`], sit on these.

use std::path::{Path, PathBuf};

use removebgvideo_core::http::{HttpRequest, ResponseBody};
use removebgvideo_core::machine::TransmitBody;
use removebgvideo_core::{Error, Event, Job, UploadResult};

use crate::client::Client;
use crate::download::Download;
use crate::options::{CallOptions, DownloadOptions, RunOptions, RunRequest, WaitOptions};
use crate::output_file::OutputFile;
use crate::run::RunResult;

/// Receives an operation's outcome.
pub type Callback<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

impl Client {
    /// Sends one API request through the engine (see the blocking methods for each).
    pub(crate) fn submit_call<T: ResponseBody + Send + 'static>(
        &self,
        request: Result<HttpRequest, Error>,
        body: TransmitBody,
        call: &CallOptions,
        done: Callback<T>,
    ) {
        let request = match request {
            Ok(request) => request,
            Err(error) => return done(Err(error)),
        };
        let machine = self.call_machine::<T>(request, body, call, None);
        self.engine().submit(
            machine,
            call,
            None,
            None,
            Box::new(move |outcome, _| done(outcome.map(|answer| answer.value))),
        );
    }

    /// [`Client::create_job`] through the engine.
    pub fn submit_create_job(
        &self,
        request: &removebgvideo_core::CreateJobRequest,
        call: &CallOptions,
        done: Callback<removebgvideo_core::JobAccepted>,
    ) {
        let key = Client::idempotency_key(call);
        let request = self
            .builder_ref()
            .create_job(&self.with_webhook_url(request), &key);
        self.submit_call(request, TransmitBody::Json, call, done);
    }

    /// [`Client::start_job`] through the engine.
    pub fn submit_start_job(
        &self,
        job_id: &str,
        request: &removebgvideo_core::StartJobRequest,
        call: &CallOptions,
        done: Callback<removebgvideo_core::JobAccepted>,
    ) {
        let key = Client::idempotency_key(call);
        let request = self.builder_ref().start_job(job_id, request, &key);
        self.submit_call(request, TransmitBody::Json, call, done);
    }

    /// [`Client::get_job`] through the engine.
    pub fn submit_get_job(&self, job_id: &str, call: &CallOptions, done: Callback<Job>) {
        let request = self.builder_ref().get_job(job_id);
        self.submit_call(request, TransmitBody::Json, call, done);
    }

    /// [`Client::upload`] through the engine.
    pub fn submit_upload(&self, path: &Path, call: &CallOptions, done: Callback<UploadResult>) {
        let prepared = self.upload_request(path, call);
        match prepared {
            Ok((request, body)) => self.submit_call(Ok(request), body, call, done),
            Err(error) => done(Err(error)),
        }
    }

    /// [`Client::wait`] through the engine: no thread waits, however many waits there are.
    pub fn submit_wait(&self, job_id: &str, options: &WaitOptions, done: Callback<Job>) {
        let deadline = self.deadline(options.limit);
        match self.wait_machine(job_id, deadline, options.poll.clone(), &options.call) {
            Ok(machine) => self.engine().submit(
                machine,
                &options.call,
                None,
                Some(job_id.to_owned()),
                Box::new(move |outcome, _| done(outcome)),
            ),
            Err(error) => done(Err(error)),
        }
    }

    /// [`Client::download_job`] through the engine; the part file is made durable and put in
    /// place on a worker before `done` hears of it.
    pub fn submit_download(
        &self,
        job: Job,
        path: &Path,
        options: &DownloadOptions,
        done: Callback<Download>,
    ) {
        let call = options.call.clone();
        let prepared = self
            .download_machine(job, &call, None)
            .and_then(|machine| Ok((machine, OutputFile::new(path, options.overwrite)?)));
        let (machine, output) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return done(Err(error)),
        };
        let target = path.to_owned();
        let events = call.clone();
        self.engine().submit(
            machine,
            &call,
            Some(output),
            None,
            Box::new(move |outcome, output| {
                let placed = outcome.and_then(|fetched| {
                    output
                        .ok_or_else(crate::transfer::nowhere_to_write)?
                        .finish()?;
                    events.emit(Event::Download {
                        bytes_done: fetched.bytes,
                        bytes_total: fetched.total,
                    });
                    Ok(Download {
                        path: target,
                        bytes: fetched.bytes,
                        job: fetched.job,
                    })
                });
                done(placed)
            }),
        );
    }

    /// [`Client::run`] through the engine.
    pub fn submit_run(
        &self,
        request: &RunRequest,
        options: &RunOptions,
        done: Callback<RunResult>,
    ) {
        let prepared = self.run_machine(request, options);
        let (machine, output, run_key) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return done(Err(error)),
        };
        let target: Option<PathBuf> = request.download_to.clone();
        let events = options.call.clone();
        self.engine().submit(
            machine,
            &options.call,
            output,
            None,
            Box::new(move |outcome, output| {
                let result = outcome.and_then(|done| {
                    crate::run::finish_run(done, output, target, &events)
                        .map_err(|e| e.with_idempotency_key(Some(run_key)))
                });
                done(result)
            }),
        );
    }
}
