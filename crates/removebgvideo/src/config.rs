//! Client settings and their builder: key, base URL, timeouts, retry and poll policies.

use std::time::Duration;

use removebgvideo_core::{
    ApiKey, Error, PollPolicy, Problem, ProblemCode, RetryBudget, RetryPolicy,
};

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://api.removebgvideo.com";
/// The environment variable the key is read from when none is given.
pub const API_KEY_ENV: &str = "REMOVEBGVIDEO_API_KEY";

pub use removebgvideo_core::machine::IdempotencySupport;

/// Everything a client is built from. Cloning it is cheap; the key and the values of default
/// headers (which may carry tokens) are never printed.
#[derive(Clone)]
pub struct Settings {
    /// The API key.
    pub api_key: ApiKey,
    /// Base URL, without a trailing slash.
    pub base_url: String,
    /// Connection setup limit (default 5 s).
    pub connect_timeout: Duration,
    /// Limit of one API call, answer included (default 60 s).
    pub request_timeout: Duration,
    /// Uploads and downloads have no total limit, but fail after this long without a byte
    /// (default 60 s).
    pub transfer_idle_timeout: Duration,
    /// Retries of each call.
    pub retry: RetryPolicy,
    /// The retry budget shared by all calls of the client.
    pub retry_budget: RetryBudget,
    /// The polling schedule of waits.
    pub poll: PollPolicy,
    /// Default limit of a wait (and of a whole run): 30 minutes.
    pub wait_timeout: Duration,
    /// Sent as User-Agent, after `removebgvideo-rust/VERSION`.
    pub user_agent_suffix: Option<String>,
    /// Headers sent with every request (for example `X-Sandbox-Fault` in tests).
    pub default_headers: Vec<(String, String)>,
    /// Whether the server honours Idempotency-Key.
    pub idempotency: IdempotencySupport,
    /// A ceiling on the client's requests per second (all calls of the client and its clones
    /// share it); `None` paces only after a 429.
    pub max_requests_per_second: Option<f64>,
    /// HTTP workers of the client's engine (default 4).
    pub engine_workers: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("api_key", &self.api_key)
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("transfer_idle_timeout", &self.transfer_idle_timeout)
            .field("retry", &self.retry)
            .field("retry_budget", &self.retry_budget)
            .field("poll", &self.poll)
            .field("wait_timeout", &self.wait_timeout)
            .field("user_agent_suffix", &self.user_agent_suffix)
            .field("default_headers", &RedactedHeaders(&self.default_headers))
            .field("idempotency", &self.idempotency)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .field("engine_workers", &self.engine_workers)
            .finish()
    }
}

/// Header names with their values hidden: a default header may carry a token.
struct RedactedHeaders<'a>(&'a [(String, String)]);

impl std::fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, _)| (name, "[redacted]")))
            .finish()
    }
}

impl Settings {
    /// Whether the base URL is on this machine (the sandbox).
    pub fn is_loopback(&self) -> bool {
        url::Url::parse(&self.base_url).is_ok_and(|url| is_loopback_host(url.host()))
    }

    /// The User-Agent header value.
    pub fn user_agent(&self) -> String {
        let base = format!("removebgvideo-rust/{}", env!("CARGO_PKG_VERSION"));
        match &self.user_agent_suffix {
            Some(suffix) => format!("{base} {suffix}"),
            None => base,
        }
    }
}

/// Builds a [`crate::Client`].
#[derive(Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<ApiKey>,
    base_url: Option<String>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    transfer_idle_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    retry_budget: Option<RetryBudget>,
    poll: Option<PollPolicy>,
    wait_timeout: Option<Duration>,
    user_agent_suffix: Option<String>,
    default_headers: Vec<(String, String)>,
    idempotency: IdempotencySupport,
    max_requests_per_second: Option<f64>,
    engine_workers: Option<usize>,
    time: Option<std::sync::Arc<dyn crate::Time>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key)
            .field("base_url", &self.base_url)
            .field("default_headers", &RedactedHeaders(&self.default_headers))
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The clock the client's drivers read and pause through (default: the real one). A
    /// [`crate::VirtualClock`] lets tests run retries, polls and deadlines without sleeping.
    pub fn clock(mut self, time: std::sync::Arc<dyn crate::Time>) -> Self {
        self.time = Some(time);
        self
    }

    /// The clock chosen, if any.
    pub(crate) fn chosen_clock(&self) -> Option<std::sync::Arc<dyn crate::Time>> {
        self.time.clone()
    }

    /// The API key; without one, `REMOVEBGVIDEO_API_KEY` is read.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey::new(key));
        self
    }

    /// The base URL (default `https://api.removebgvideo.com`). `http://` is accepted only for
    /// loopback hosts, such as the sandbox.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Connection setup limit.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Limit of one API call.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Idle limit of uploads and downloads.
    pub fn transfer_idle_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_idle_timeout = Some(timeout);
        self
    }

    /// Retries, backoff and Retry-After handling.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Shortcut: how many retries each call gets (0 turns retries off).
    pub fn max_retries(mut self, retries: u32) -> Self {
        let mut policy = self.retry.take().unwrap_or_default();
        policy.max_retries = retries;
        self.retry = Some(policy);
        self
    }

    /// The retry budget shared by all calls.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = Some(budget);
        self
    }

    /// The polling schedule.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = Some(policy);
        self
    }

    /// Default limit of waits and runs.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }

    /// Text appended to the User-Agent (your application's name).
    pub fn user_agent(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// A header sent with every request.
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_headers.push((name.into(), value.into()));
        self
    }

    /// A ceiling on requests per second for every call of the client (a batch that must stay
    /// within its key's limit). Above 0; the rate gate paces after 429s either way.
    pub fn max_requests_per_second(mut self, rate: f64) -> Self {
        self.max_requests_per_second = Some(rate);
        self
    }

    /// HTTP workers of the client's engine: at least 1, at most 64 (default 4). Each holds one
    /// request at a time; the engine's waits need no thread of their own.
    pub fn engine_workers(mut self, workers: usize) -> Self {
        self.engine_workers = Some(workers);
        self
    }

    /// Whether the server honours Idempotency-Key (detected by default).
    pub fn idempotency_support(mut self, support: IdempotencySupport) -> Self {
        self.idempotency = support;
        self
    }

    /// The settings, checked: a key is present, the base URL is https (or http on loopback).
    pub fn settings(self) -> Result<Settings, Error> {
        let mut problems = Vec::new();
        let api_key = self
            .api_key
            .or_else(|| std::env::var(API_KEY_ENV).ok().map(ApiKey::new));
        let api_key = match api_key.filter(|k| !k.expose().is_empty()) {
            Some(key) => Some(key),
            None => {
                problems.push(Problem::error(
                    "/api_key",
                    ProblemCode::Required,
                    format!("api_key is required: pass one or set {API_KEY_ENV}"),
                ));
                None
            }
        };
        let base_url = self
            .base_url
            .unwrap_or_else(|| DEFAULT_BASE_URL.into())
            .trim_end_matches('/')
            .to_owned();
        if let Some(poll) = &self.poll
            && let Err(error) = poll.check()
        {
            problems.extend(error.problems);
        }
        if let Some(rate) = self.max_requests_per_second
            && !(rate.is_finite() && rate > 0.0 && rate <= 1e6)
        {
            problems.push(Problem::error(
                "/max_requests_per_second",
                ProblemCode::OutOfRange,
                format!("max_requests_per_second must be a number above 0 and at most 1000000 (got {rate})"),
            ));
        }
        if let Some(workers) = self.engine_workers
            && !(1..=64).contains(&workers)
        {
            problems.push(Problem::error(
                "/engine_workers",
                ProblemCode::OutOfRange,
                format!("engine_workers must be from 1 to 64 (got {workers})"),
            ));
        }
        if let Err(rule) = check_base_url(&base_url) {
            problems.push(Problem::error(
                "/base_url",
                ProblemCode::InvalidUrl,
                format!("base_url {rule}"),
            ));
        }
        match api_key {
            Some(api_key) if problems.is_empty() => Ok(Settings {
                api_key,
                base_url,
                connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(5)),
                request_timeout: self.request_timeout.unwrap_or(Duration::from_secs(60)),
                transfer_idle_timeout: self
                    .transfer_idle_timeout
                    .unwrap_or(Duration::from_secs(60)),
                retry: self.retry.unwrap_or_default(),
                retry_budget: self.retry_budget.unwrap_or_default(),
                poll: self.poll.unwrap_or_default(),
                wait_timeout: self
                    .wait_timeout
                    .unwrap_or(removebgvideo_core::poll::DEFAULT_WAIT_TIMEOUT),
                user_agent_suffix: self.user_agent_suffix,
                default_headers: self.default_headers,
                idempotency: self.idempotency,
                max_requests_per_second: self.max_requests_per_second,
                engine_workers: self
                    .engine_workers
                    .unwrap_or(crate::engine::DEFAULT_WORKERS),
            }),
            _ => Err(Error::validation(problems)),
        }
    }
}

fn is_loopback_host(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// https anywhere; plain http only to this machine, where nobody can read the key in transit.
fn check_base_url(base_url: &str) -> Result<(), String> {
    let url = url::Url::parse(base_url).map_err(|e| format!("is not a URL ({e})"))?;
    if url.host().is_none() {
        return Err("has no host".into());
    }
    let loopback = is_loopback_host(url.host());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("must use https: plain http is only allowed to loopback hosts (localhost, 127.0.0.1, ::1)".into()),
        other => Err(format!("must use https (got {other:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_key_and_no_header_value() {
        let builder = ClientBuilder::default()
            .api_key("rbv_secret_key")
            .default_header("Authorization", "Bearer tok_secret");
        let settings = builder.clone().settings().unwrap();
        for shown in [format!("{builder:?}"), format!("{settings:?}")] {
            assert!(!shown.contains("rbv_secret_key"), "{shown}");
            assert!(!shown.contains("tok_secret"), "{shown}");
            assert!(shown.contains("Authorization"), "{shown}");
        }
    }
}
