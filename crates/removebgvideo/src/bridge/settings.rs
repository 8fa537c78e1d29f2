//! Client settings, as the bindings pass them; absent ones take the client's defaults.

use schemars::JsonSchema;
use serde::Deserialize;

use super::checks::{Problems, positive_ms};
use super::number::Float;
use super::parse::parse;
use super::policy::{PollPolicyArgs, RetryPolicyArgs};
use removebgvideo_core::ErrorCode;

use crate::{Client, ClientBuilder, Error, IdempotencySupport};

/// Whether the server honours Idempotency-Key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// Learn it from the server's answers (the default).
    #[default]
    Detect,
    /// Always trust the key: a POST whose outcome is unknown is retried with it.
    Honoured,
    /// Never trust the key: such a POST is not retried.
    NotHonoured,
}

/// Client settings; absent ones take the SDK's defaults (2 retries, 60 s per request, 30
/// minutes per wait).
// Durations are milliseconds on the wire (`timeout_ms`), seconds in the packages.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The API key; without one, `REMOVEBGVIDEO_API_KEY` is read.
    pub api_key: Option<String>,
    /// Default `https://api.removebgvideo.com`; plain http only to loopback hosts.
    pub base_url: Option<String>,
    /// Retries of each call (default 2).
    pub max_retries: Option<u32>,
    /// The limit of one API call (default 60 s).
    pub timeout_ms: Option<Float>,
    /// The limit of connection setup (default 5 s).
    pub connect_timeout_ms: Option<Float>,
    /// The idle limit of uploads and downloads (default 60 s).
    pub transfer_idle_timeout_ms: Option<Float>,
    /// The default limit of waits and runs (default 30 minutes).
    pub wait_timeout_ms: Option<Float>,
    /// Text appended to the User-Agent (your application's name).
    pub user_agent: Option<String>,
    /// Headers sent with every request.
    // `[name, value]` pairs on the wire (a map in the packages), so their order is kept.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Whether the server honours Idempotency-Key (detected by default).
    pub idempotency: Option<Idempotency>,
    /// The polling schedule of waits.
    pub poll_policy: Option<PollPolicyArgs>,
    /// How each request is retried.
    pub retry_policy: Option<RetryPolicyArgs>,
}

impl Settings {
    /// From the bindings' JSON.
    pub fn from_json(json: &str) -> Result<Settings, Error> {
        parse("settings", json)
    }

    /// The builder, every setting checked; each problem is kept in `problems`, named by its
    /// path.
    fn builder(self, problems: &mut Problems) -> ClientBuilder {
        let mut builder = Client::builder();
        if let Some(key) = self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(url) = self.base_url {
            builder = builder.base_url(url);
        }
        if let Some(retry) = &self.retry_policy {
            builder = builder.retry_policy(retry.resolve(problems, "/settings/retry_policy"));
        }
        if let Some(retries) = self.max_retries {
            builder = builder.max_retries(retries);
        }
        let mut limit = |name: &str, ms| positive_ms(problems, &format!("/settings/{name}"), ms);
        let request = limit("timeout", self.timeout_ms);
        let connect = limit("connect_timeout", self.connect_timeout_ms);
        let idle = limit("transfer_idle_timeout", self.transfer_idle_timeout_ms);
        let wait = limit("wait_timeout", self.wait_timeout_ms);
        if let Some(timeout) = request {
            builder = builder.request_timeout(timeout);
        }
        if let Some(timeout) = connect {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = idle {
            builder = builder.transfer_idle_timeout(timeout);
        }
        if let Some(timeout) = wait {
            builder = builder.wait_timeout(timeout);
        }
        if let Some(agent) = self.user_agent {
            builder = builder.user_agent(agent);
        }
        for (name, value) in self.headers {
            builder = builder.default_header(name, value);
        }
        // A policy with problems is left out, so the client's own check of it does not
        // report them a second time.
        if let Some(poll) = self
            .poll_policy
            .as_ref()
            .and_then(|p| p.resolve(problems, "/settings/poll_policy"))
        {
            builder = builder.poll_policy(poll);
        }
        builder = builder.idempotency_support(match self.idempotency.unwrap_or_default() {
            Idempotency::Detect => IdempotencySupport::Detect,
            Idempotency::Honoured => IdempotencySupport::Honoured,
            Idempotency::NotHonoured => IdempotencySupport::NotHonoured,
        });
        builder
    }

    /// The client. Every problem is reported at once: those of the values given here and
    /// those the client's own rules find (a missing key, a plain-http base URL).
    pub fn into_client(self) -> Result<Client, Error> {
        super::guarded(|| {
            let mut problems = Problems::default();
            let built = self.builder(&mut problems).build();
            match built {
                Ok(client) => problems.finish(client),
                Err(error) if error.code == ErrorCode::ValidationError => {
                    problems.extend(error.problems);
                    Err(problems.into_error())
                }
                Err(error) => Err(error),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use removebgvideo_core::ProblemCode;

    use super::*;

    fn problem_paths(json: &str) -> Vec<String> {
        let error = Settings::from_json(json)
            .and_then(Settings::into_client)
            .unwrap_err();
        error.problems.iter().map(|p| p.path.clone()).collect()
    }

    #[test]
    fn every_unusable_setting_is_named_by_its_path() {
        assert_eq!(
            problem_paths(r#"{"api_key": "k", "connect_timeout_ms": 1e300, "timeout_ms": -1}"#),
            ["/settings/timeout", "/settings/connect_timeout"]
        );
        // The client's own rules are reported with them.
        assert_eq!(
            problem_paths(r#"{"api_key": "k", "base_url": "ftp://x", "timeout_ms": -1}"#),
            ["/settings/timeout", "/base_url"]
        );
        let error = Settings::from_json(r#"{"idempotency": "honored"}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/settings/idempotency");
        assert_eq!(
            problem_paths(r#"{"api_key": "k", "poll_policy": {"factor": 0}}"#),
            ["/settings/poll_policy/factor"]
        );
        let error = Settings::from_json(r#"{"retry_policy": {"max_retry": 1}}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/settings/retry_policy/max_retry");
        assert_eq!(error.problems[0].code, ProblemCode::UnknownValue);
    }

    #[test]
    fn a_usable_setting_reaches_the_client() {
        let client = Settings::from_json(
            r#"{"api_key": "k", "timeout_ms": 2500, "retry_policy": {"max_retries": 7}, "idempotency": "honoured"}"#,
        )
        .and_then(Settings::into_client)
        .unwrap();
        let settings = client.settings();
        assert_eq!(
            settings.request_timeout,
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(settings.retry.max_retries, 7);
    }
}
