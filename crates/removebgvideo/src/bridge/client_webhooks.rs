//! A client's webhooks for the bindings: `use_webhooks`, `handle_webhook` (a framework's route
//! hands a delivery over) and `listen_for_webhooks` (a receiver of our own). Inputs are
//! checked, never trusted; durations come in milliseconds and are named as the public APIs
//! name them (`tolerance`, `fallback`, in seconds) in errors.

use std::net::IpAddr;

use removebgvideo_core::validate::{Problem, ProblemCode};
use removebgvideo_core::webhook::DEFAULT_TOLERANCE;
use removebgvideo_core::{Headers, units};
use schemars::JsonSchema;
use serde::Deserialize;

use super::checks::moved;
use super::number::Float;
use super::parse::parse;
use super::{guarded, to_json};
use crate::receiver::{ReceiverOptions, WebhookReceiver};
use crate::webhooks::{DEFAULT_WEBHOOK_FALLBACK, WebhookSettings};
use crate::{Client, Error};

/// What `use_webhooks` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UseWebhooksInput {
    /// The URL the API delivers to (a tunnel's or gateway's public URL, or your own route);
    /// jobs created without a `webhook_url` get it.
    pub url: String,
    /// The signing secret configured for the API key.
    pub secret: String,
    /// How far a delivery's signing time may be from now, in milliseconds (default 300 s).
    pub tolerance_ms: Option<Float>,
    /// The pause between a hybrid wait's fallback polls once a delivery came, in
    /// milliseconds (default 30 s).
    pub fallback_ms: Option<Float>,
}

/// What `listen_for_webhooks` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenInput {
    /// The signing secret configured for the API key.
    pub secret: String,
    /// The address to listen on (default `127.0.0.1`).
    pub host: Option<String>,
    /// The port (default 0: one the OS picks).
    pub port: Option<u16>,
    /// The path deliveries are posted to (default `/webhooks`).
    pub path: Option<String>,
    /// The URL the API should deliver to when it is not the receiver's own (a tunnel's or
    /// gateway's that forwards to it).
    pub public_url: Option<String>,
    /// How far a delivery's signing time may be from now, in milliseconds (default 300 s).
    pub tolerance_ms: Option<Float>,
    /// The pause between fallback polls once a delivery came, in milliseconds (default 30 s).
    pub fallback_ms: Option<Float>,
}

/// The settings' problems named as the caller gave them (`url`, not the job's `webhook_url`).
fn named_as_given(error: Error, url_field: &str) -> Error {
    if error.code != removebgvideo_core::ErrorCode::ValidationError {
        return error;
    }
    // Rebuilt, so that the error's message names the fields as its problems do.
    Error::validation(
        error
            .problems
            .into_iter()
            .map(|problem| match problem.path.as_str() {
                "/webhook_url" => moved(problem, "/webhook_url", url_field),
                "/webhook_secret" => moved(problem, "/webhook_secret", "/secret"),
                "/webhook_fallback" => moved(problem, "/webhook_fallback", "/fallback"),
                _ => problem,
            })
            .collect(),
    )
}

fn duration(path: &str, ms: Option<Float>) -> Result<Option<std::time::Duration>, Error> {
    ms.map(|ms| units::seconds(path, ms.0 / 1000.0).map_err(|p| Error::validation(vec![p])))
        .transpose()
}

/// Sends the client's jobs' events to `url` and makes its waits hybrid.
pub fn use_webhooks(client: &Client, input_json: &str) -> Result<(), Error> {
    guarded(|| {
        let input: UseWebhooksInput = parse("", input_json)?;
        let settings = WebhookSettings {
            tolerance: duration("/tolerance", input.tolerance_ms)?.unwrap_or(DEFAULT_TOLERANCE),
            fallback: duration("/fallback", input.fallback_ms)?.unwrap_or(DEFAULT_WEBHOOK_FALLBACK),
            ..WebhookSettings::new(input.url, input.secret)
        };
        client
            .use_webhooks(settings)
            .map_err(|e| named_as_given(e, "/url"))
    })
}

/// Takes one delivery (raw body, `[name, value]` header pairs as JSON): the verified event as
/// JSON (`event`, `delivery_id`, `timestamp`, `data`, and `duplicate`), or the error to answer
/// 400 with.
pub fn handle_webhook(client: &Client, body: &[u8], headers_json: &str) -> Result<String, Error> {
    guarded(|| {
        let pairs: Vec<(String, String)> = parse("/headers", headers_json)?;
        let headers: Headers = pairs.into_iter().collect();
        let delivery = client.handle_webhook(&headers, body)?;
        let mut value = serde_json::to_value(&delivery.webhook).expect("our types serialize");
        value["duplicate"] = delivery.duplicate.into();
        Ok(to_json(value))
    })
}

/// Starts a receiver for the client (see [`Client::listen_for_webhooks`]).
pub fn listen_for_webhooks(client: &Client, input_json: &str) -> Result<WebhookReceiver, Error> {
    guarded(|| {
        let input: ListenInput = parse("", input_json)?;
        let tolerance = duration("/tolerance", input.tolerance_ms)?;
        let fallback = duration("/fallback", input.fallback_ms)?;
        let mut options = ReceiverOptions::default();
        if let Some(host) = &input.host {
            options.host = host.parse::<IpAddr>().map_err(|_| {
                Error::validation(vec![Problem::error(
                    "/host",
                    ProblemCode::InvalidType,
                    format!("host must be an IP address to listen on, such as 127.0.0.1 or 0.0.0.0 (got {host:?})"),
                )])
            })?;
        }
        if let Some(port) = input.port {
            options.port = port;
        }
        if let Some(path) = input.path {
            options.path = path;
        }
        options.public_url = input.public_url;
        let receiver = client
            .listen_for_webhooks(&options, &input.secret)
            .map_err(|e| named_as_given(e, "/public_url"))?;
        if tolerance.is_some() || fallback.is_some() {
            // Before any job names the receiver: its inbox has taken nothing yet.
            let settings = client
                .webhook_settings()
                .expect("listening set the webhooks");
            client
                .use_webhooks(WebhookSettings {
                    tolerance: tolerance.unwrap_or(settings.tolerance),
                    fallback: fallback.unwrap_or(settings.fallback),
                    ..settings
                })
                .map_err(|e| named_as_given(e, "/fallback"))?;
        }
        Ok(receiver)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::builder()
            .api_key("rbv_test")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap()
    }

    #[test]
    fn problems_name_the_fields_as_the_caller_gave_them() {
        let error = use_webhooks(&client(), r#"{"url": "not a url", "secret": " "}"#).unwrap_err();
        let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["/url", "/secret"], "{error}");
        assert!(error.problems[0].message.starts_with("url "), "{error}");
        let error = use_webhooks(
            &client(),
            r#"{"url": "http://h/", "secret": "s", "fallback_ms": 0}"#,
        )
        .unwrap_err();
        assert_eq!(error.problems[0].path, "/fallback", "{error}");
        let error =
            listen_for_webhooks(&client(), r#"{"secret": "s", "host": "nowhere"}"#).unwrap_err();
        assert_eq!(error.problems[0].path, "/host", "{error}");
        let error = handle_webhook(&client(), b"{}", "[]").unwrap_err();
        assert_eq!(
            error.code,
            removebgvideo_core::ErrorCode::WebhookInvalidSignature
        );
    }
}
