//! The client: every endpoint, each call one core [`CallMachine`] driven on the caller's thread.

use std::sync::Arc;

use removebgvideo_core::http::{Headers, HttpRequest, RequestBuilder, ResponseBody};
use removebgvideo_core::machine::{CallMachine, Shared, TransmitBody};
use removebgvideo_core::{
    CreateJobRequest, Error, Health, Job, JobAccepted, JobList, LegacyDownload, ListJobsQuery,
    StartJobRequest, Timestamp, UsageEvents, UsageEventsQuery, UsageSummary, UsageSummaryQuery,
};

use crate::clock::{SystemClock, ThreadRandom, Time};
use crate::config::{ClientBuilder, Settings};
use crate::engine::Engine;
use crate::options::CallOptions;
use crate::transport;
use crate::wire::Wire;

/// The RemoveBGVideo client. Cheap to clone (clones share one connection pool and one retry
/// budget) and safe to share between threads. The key never appears in its Debug output.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    /// The agent and settings every attempt is sent with (shared with the engine's workers).
    pub(crate) wire: Arc<Wire>,
    pub(crate) builder: RequestBuilder,
    pub(crate) time: Arc<dyn Time>,
    /// The retry policy and budget, and what was learned about idempotency, shared by every
    /// machine of this client and its clones.
    pub(crate) shared: Shared,
    /// The engine, started by the first call that needs it.
    engine: std::sync::OnceLock<Engine>,
    /// Where its jobs' events go, and the inbox that checks them (see `use_webhooks`).
    pub(crate) webhooks: std::sync::RwLock<Option<Arc<crate::webhooks::Webhooks>>>,
}

impl Client {
    /// A client for the public API with this key.
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder().api_key(api_key).build()
    }

    /// A client with the key from `REMOVEBGVIDEO_API_KEY`.
    pub fn from_env() -> Result<Client, Error> {
        Client::builder().build()
    }

    /// Every setting, with defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from checked settings.
    pub fn with_settings(settings: Settings) -> Client {
        Client::with_time(settings, Arc::new(SystemClock::start()))
    }

    /// A client whose drivers read `time` and pause through it: a [`crate::VirtualClock`]
    /// makes retries, polls and deadlines pass without sleeping (tests).
    pub fn with_time(settings: Settings, time: Arc<dyn Time>) -> Client {
        let shared = Shared::new(
            settings.retry.clone(),
            settings.retry_budget.clone(),
            settings.request_timeout,
            settings.transfer_idle_timeout,
            settings.idempotency,
            Box::new(ThreadRandom),
        )
        .with_rate_gate(settings.max_requests_per_second, fastrand::f64());
        Client {
            inner: Arc::new(Inner {
                wire: Arc::new(Wire {
                    agent: transport::agent(&settings),
                    settings: settings.clone(),
                }),
                builder: RequestBuilder::new(settings.api_key.clone(), settings.user_agent()),
                time,
                shared,
                engine: std::sync::OnceLock::new(),
                webhooks: std::sync::RwLock::new(None),
                settings,
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Closes every connection of this client and its clones, in use or idle, and refuses new
    /// ones: a call blocked in the network fails at once instead of at its timeout. For a
    /// process that is stopping (a second Ctrl-C); the client cannot be used afterwards.
    pub fn shutdown(&self) {
        self.inner.wire.agent.clone().shutdown();
    }

    /// The client's engine: one scheduler thread and a few HTTP workers that drive every call
    /// made through it ([`Client::watch`], the `submit_*` methods, the bindings' promises and
    /// futures). Started on first use; shared by the client's clones.
    pub fn engine(&self) -> &Engine {
        self.inner.engine.get_or_init(|| {
            Engine::start(
                self.inner.wire.clone(),
                self.inner.time.clone(),
                self.inner.settings.engine_workers,
            )
        })
    }

    /// Whether the server honours `Idempotency-Key`: as configured, or learned from a success
    /// that echoed it; `None` while not known. A batch keeps it in its ledger, so a resume may
    /// send an unanswered create again with the same key.
    pub fn keys_honoured(&self) -> Option<bool> {
        self.inner.shared.keys_honoured()
    }

    /// Runs `work` on the client's rate gate (every request of the client's key reserves its
    /// send time there) with the client's now: for a coordinator that shares one key's limit
    /// between processes (the batch runner's workers on a shared ledger) and tells each
    /// process's gate of the 429s the others got.
    pub fn with_rate_gate<T>(
        &self,
        work: impl FnOnce(&mut removebgvideo_core::rate::RateGate, Timestamp) -> T,
    ) -> T {
        let now = self.inner.time.now();
        self.inner.shared.with_gate(|gate| work(gate, now))
    }

    /// Tokens left in the retry budget.
    pub fn retry_budget_tokens(&self) -> u32 {
        self.inner.shared.budget_tokens()
    }

    pub(crate) fn builder_ref(&self) -> &RequestBuilder {
        &self.inner.builder
    }

    /// A call machine for `request`, with the call's own retries and timeout.
    pub(crate) fn call_machine<T: ResponseBody>(
        &self,
        request: HttpRequest,
        body: TransmitBody,
        options: &CallOptions,
        deadline: Option<Timestamp>,
    ) -> CallMachine<T> {
        CallMachine::new(
            request,
            body,
            &self.inner.shared,
            options.max_retries,
            options.timeout,
            deadline,
        )
    }

    /// Sends a request until it succeeds or the core says to stop; returns the answer and its
    /// headers. A retry pause that would pass `deadline` is not taken.
    pub(crate) fn execute<T: ResponseBody>(
        &self,
        request: HttpRequest,
        body: TransmitBody,
        options: &CallOptions,
        deadline: Option<Timestamp>,
    ) -> Result<(T, Headers), Error> {
        let mut machine = self.call_machine(request, body, options, deadline);
        self.drive(&mut machine, options, None)
            .map(|answer| (answer.value, answer.headers))
    }

    /// One JSON call without a deadline.
    fn simple<T: ResponseBody>(
        &self,
        request: Result<HttpRequest, Error>,
        options: &CallOptions,
    ) -> Result<T, Error> {
        self.execute(request?, TransmitBody::Json, options, None)
            .map(|(value, _)| value)
    }

    pub(crate) fn idempotency_key(options: &CallOptions) -> String {
        options
            .idempotency_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// `POST /v1/jobs`.
    pub fn create_job(
        &self,
        request: &CreateJobRequest,
        options: &CallOptions,
    ) -> Result<JobAccepted, Error> {
        let key = Client::idempotency_key(options);
        let request = self.with_webhook_url(request);
        self.simple(self.inner.builder.create_job(&request, &key), options)
    }

    /// `POST /v1/jobs/{job_id}/start`: start a draft, or restart a failed job.
    pub fn start_job(
        &self,
        job_id: &str,
        request: &StartJobRequest,
        options: &CallOptions,
    ) -> Result<JobAccepted, Error> {
        let key = Client::idempotency_key(options);
        self.simple(self.inner.builder.start_job(job_id, request, &key), options)
    }

    /// `GET /v1/jobs/{job_id}`.
    pub fn get_job(&self, job_id: &str, options: &CallOptions) -> Result<Job, Error> {
        self.simple(self.inner.builder.get_job(job_id), options)
    }

    /// `GET /v1/jobs`.
    pub fn list_jobs(
        &self,
        query: &ListJobsQuery,
        options: &CallOptions,
    ) -> Result<JobList, Error> {
        self.simple(self.inner.builder.list_jobs(query), options)
    }

    /// `GET /v1/usage/summary`.
    pub fn usage_summary(
        &self,
        query: &UsageSummaryQuery,
        options: &CallOptions,
    ) -> Result<UsageSummary, Error> {
        self.simple(self.inner.builder.usage_summary(query), options)
    }

    /// `GET /v1/usage/events`.
    pub fn usage_events(
        &self,
        query: &UsageEventsQuery,
        options: &CallOptions,
    ) -> Result<UsageEvents, Error> {
        self.simple(self.inner.builder.usage_events(query), options)
    }

    /// `GET /api/download/{job_id}` (legacy).
    pub fn legacy_download(
        &self,
        job_id: &str,
        options: &CallOptions,
    ) -> Result<LegacyDownload, Error> {
        self.simple(self.inner.builder.legacy_download(job_id), options)
    }

    /// `GET /health`.
    pub fn health(&self, options: &CallOptions) -> Result<Health, Error> {
        self.simple(Ok(self.inner.builder.health()), options)
    }
}
