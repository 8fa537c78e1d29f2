//! The native addon of the `removebgvideo` npm package. It converts only: JSON arguments to the
//! client (through `removebgvideo::bridge`, shared with Python) and results back. Every call,
//! short or long, runs on the client's engine (one scheduler thread and a few HTTP workers)
//! and settles through a threadsafe function: no thread per call, and nothing sleeps on
//! libuv's pool, so the app's own `fs`, `dns` and `crypto` never queue behind our retries.
//! Errors are JS errors whose `code` is our stable code (see `errors`); `index.js` turns them
//! into typed errors.

pub mod batch;
mod errors;

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use removebgvideo::core::Model;
use removebgvideo::{CancelToken, Client, Event, bridge};

use crate::errors::{js_error, thrown};

/// A cancellation flag shared with JavaScript (an AbortSignal raises it).
#[derive(Debug)]
#[napi]
pub struct NativeCancel {
    pub(crate) token: CancelToken,
}

#[napi]
impl NativeCancel {
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeCancel {
            token: CancelToken::new(),
        }
    }

    /// Stops the calls using this token at their next pause.
    #[napi]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

impl Default for NativeCancel {
    fn default() -> Self {
        NativeCancel::new()
    }
}

/// A call's messages, in order: each event, then one result or one error. One queue keeps
/// every event before the outcome.
enum Message {
    /// An event, as JSON.
    Event(String),
    /// The result, as JSON.
    Result(String),
    /// The error: the callback, on the JS thread, makes it a JS error (`errors::js_error`).
    Error(removebgvideo::Error),
}

/// What the JS side receives for a call: `(id, "event" | "result", json)` or
/// `(id, "error", error)`.
type MessageArgs = FnArgs<(f64, String, Unknown<'static>)>;

/// One threadsafe function per client carries the messages of all its calls, each tagged
/// with its call's id: a threadsafe function is a libuv handle, and ten thousand of them (one
/// per wait) cost both memory and wake-ups.
type MessageCallback = ThreadsafeFunction<(f64, Message), (), MessageArgs, Status, false>;

/// The Rust client.
#[napi]
pub struct NativeClient {
    pub(crate) client: Client,
    messages: Arc<Mutex<MessageCallback>>,
}

impl std::fmt::Debug for NativeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeClient")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[napi]
impl NativeClient {
    /// Builds the client from its settings, as snake_case JSON; `on_message(id, kind, value)`
    /// receives every call's events and outcome, on the JS thread. It keeps the process alive
    /// only while a call is pending (`busy` / `idle`).
    #[napi(
        constructor,
        ts_args_type = "settingsJson: string, onMessage: (id: number, kind: 'event' | 'result' | 'error', value: unknown) => void"
    )]
    pub fn new(
        env: &Env,
        settings_json: String,
        on_message: Function<'_, MessageArgs, ()>,
    ) -> Result<Self> {
        let client = bridge::Settings::from_json(&settings_json)
            .and_then(bridge::Settings::into_client)
            .map_err(|e| thrown(env, e))?;
        let mut messages: MessageCallback = on_message
            .build_threadsafe_function::<(f64, Message)>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<(f64, Message)>| {
                let (id, message) = ctx.value;
                let (kind, value) = match message {
                    Message::Event(json) => ("event", ctx.env.to_js_value(&json)?),
                    Message::Result(json) => ("result", ctx.env.to_js_value(&json)?),
                    Message::Error(error) => ("error", js_error(&ctx.env, error)?),
                };
                Ok(FnArgs {
                    data: (id, kind.to_owned(), value),
                })
            })?;
        idle(&mut messages, env)?;
        Ok(NativeClient {
            client,
            messages: Arc::new(Mutex::new(messages)),
        })
    }

    /// The settings without the key, as JSON.
    #[napi]
    pub fn describe(&self) -> String {
        let settings = self.client.settings();
        serde_json::json!({ "base_url": settings.base_url, "max_retries": settings.retry.max_retries }).to_string()
    }

    /// A call is pending: the process stays alive for its outcome.
    #[napi]
    pub fn busy(&self, env: &Env) -> Result<()> {
        #[allow(deprecated)]
        // `napi_ref_threadsafe_function`: the documented way to keep a loop alive
        lock(&self.messages).refer(env)
    }

    /// No call is pending: the client no longer keeps the process alive.
    #[napi]
    pub fn idle(&self, env: &Env) -> Result<()> {
        idle(&mut lock(&self.messages), env)
    }

    /// Hands one operation (`{"operation", "arguments"}` JSON) to the client's engine; its
    /// events (when `with_events`) and outcome arrive through the client's `on_message`,
    /// tagged with `id`. No thread
    /// waits for the call and none of libuv's is used: the engine's scheduler and its few HTTP
    /// workers serve every call of the client.
    #[napi]
    pub fn submit(
        &self,
        id: f64,
        operation_json: String,
        options_json: String,
        cancel: Option<&NativeCancel>,
        with_events: bool,
    ) {
        let messages = Arc::clone(&self.messages);
        let send = move |message: Message| {
            // The queue is unbounded: a call from an engine thread never waits for JS.
            lock(&messages).call((id, message), ThreadsafeFunctionCallMode::NonBlocking);
        };
        let parsed = bridge::Operation::from_json(&operation_json)
            .and_then(|operation| Ok((operation, bridge::Options::from_json(&options_json)?)));
        let (operation, mut call) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => return send(Message::Error(error)),
        };
        call.cancel = Some(cancel.map(|c| c.token.clone()).unwrap_or_default());
        if with_events {
            let events = send.clone();
            call.on_event = Some(Arc::new(move |event: &Event| {
                events(Message::Event(
                    serde_json::to_string(event).expect("events serialize"),
                ));
            }));
        }
        bridge::submit(
            &self.client,
            operation,
            call,
            Box::new(move |outcome| {
                send(match outcome {
                    Ok(result) => Message::Result(result),
                    Err(error) => Message::Error(error),
                })
            }),
        );
    }
}

#[napi]
impl NativeClient {
    /// Sends the client's jobs' events to a URL and makes its waits hybrid
    /// (`bridge::UseWebhooksInput` as JSON).
    #[napi]
    pub fn use_webhooks(&self, env: &Env, input_json: String) -> Result<()> {
        bridge::use_webhooks(&self.client, &input_json).map_err(|e| thrown(env, e))
    }

    /// Takes one delivery: its raw body and `[name, value]` header pairs as JSON; the verified
    /// event as JSON. No I/O, so it runs on the JS thread.
    #[napi]
    pub fn handle_webhook(&self, env: &Env, body: Buffer, headers_json: String) -> Result<String> {
        bridge::handle_webhook(&self.client, &body, &headers_json).map_err(|e| thrown(env, e))
    }

    /// Starts a webhook receiver for the client (`bridge::ListenInput` as JSON): an HTTP
    /// listener on threads of its own, never on libuv's.
    #[napi]
    pub fn listen_for_webhooks(&self, env: &Env, input_json: String) -> Result<NativeReceiver> {
        let receiver =
            bridge::listen_for_webhooks(&self.client, &input_json).map_err(|e| thrown(env, e))?;
        Ok(NativeReceiver {
            url: receiver.url().to_owned(),
            receiver: Mutex::new(Some(receiver)),
        })
    }
}

/// A running webhook receiver; stopped by `stop` or when collected.
#[derive(Debug)]
#[napi]
pub struct NativeReceiver {
    url: String,
    receiver: Mutex<Option<removebgvideo::WebhookReceiver>>,
}

#[napi]
impl NativeReceiver {
    /// The URL deliveries are posted to.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// What it took and refused so far, as JSON.
    #[napi]
    pub fn stats(&self) -> String {
        let stats = lock(&self.receiver)
            .as_ref()
            .map(|r| r.stats())
            .unwrap_or_default();
        serde_json::json!({
            "accepted": stats.accepted,
            "duplicates": stats.duplicates,
            "rejected": stats.rejected,
        })
        .to_string()
    }

    /// Stops listening; later calls do nothing.
    #[napi]
    pub fn stop(&self) {
        if let Some(receiver) = lock(&self.receiver).take() {
            receiver.stop();
        }
    }
}

fn idle(messages: &mut MessageCallback, env: &Env) -> Result<()> {
    #[allow(deprecated)] // `napi_unref_threadsafe_function`, the counterpart of `busy`
    messages.unref(env)
}

/// A poisoned lock still holds a usable threadsafe function.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The Rust sandbox in-process.
#[derive(Debug)]
#[napi]
pub struct NativeSandbox {
    sandbox: Option<removebgvideo_sandbox::Sandbox>,
    base_url: String,
}

#[napi]
impl NativeSandbox {
    /// Starts a sandbox; `config_json` holds sandbox settings (absent ones default).
    #[napi(constructor)]
    pub fn new(env: &Env, config_json: String) -> Result<Self> {
        let config: removebgvideo_sandbox::SandboxConfig =
            bridge::parse("config", &config_json).map_err(|e| thrown(env, e))?;
        // An unusable setting is a ValidationError naming it, like any other bad argument.
        config.check().map_err(|e| thrown(env, e))?;
        let sandbox = removebgvideo_sandbox::Sandbox::start(config)
            .map_err(|e| napi::Error::from_reason(format!("cannot start the sandbox: {e}")))?;
        Ok(NativeSandbox {
            base_url: sandbox.base_url().to_owned(),
            sandbox: Some(sandbox),
        })
    }

    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The keys and the webhook secret, as JSON.
    #[napi]
    pub fn keys(&self) -> String {
        serde_json::json!({
            "demo_key": removebgvideo_sandbox::DEMO_KEY,
            "no_credits_key": removebgvideo_sandbox::NO_CREDITS_KEY,
            "rate_limited_key": removebgvideo_sandbox::RATE_LIMITED_KEY,
            "webhook_secret": self.sandbox.as_ref().map(|s| s.webhook_secret().to_owned()),
        })
        .to_string()
    }

    /// The requests it has seen, as JSON.
    #[napi]
    pub fn request_log(&self) -> String {
        serde_json::to_string(
            &self
                .sandbox
                .as_ref()
                .map(|s| s.request_log())
                .unwrap_or_default(),
        )
        .expect("JSON")
    }

    /// Stops it (idempotent).
    #[napi]
    pub fn stop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.shutdown();
        }
    }
}

/// Verifies a webhook delivery against its raw body; `input_json` holds the headers, the
/// secret and the optional tolerance and "now" (`bridge::WebhookInput`). The event as JSON.
#[napi]
pub fn verify_webhook(env: &Env, body: Buffer, input_json: String) -> Result<String> {
    bridge::verify_webhook(&body, &input_json).map_err(|e| thrown(env, e))
}

/// Credits for a video of `duration_seconds` with `model`.
#[napi]
pub fn estimate_credits(env: &Env, model: String, duration_seconds: f64) -> Result<u32> {
    removebgvideo::estimate_credits(&Model::from(model.as_str()), duration_seconds)
        .map(|c| c.min(u64::from(u32::MAX)) as u32)
        .map_err(|e| thrown(env, e))
}

/// Every problem of a request body, as JSON, by the core's rules.
#[napi]
pub fn validate_request(env: &Env, type_name: String, body_json: String) -> Result<String> {
    bridge::validate_request(&type_name, &body_json).map_err(|e| thrown(env, e))
}

/// (kind, error class) for every error kind.
#[napi]
pub fn error_classes() -> Vec<Vec<String>> {
    bridge::error_classes()
        .into_iter()
        .map(|(kind, class)| vec![kind, class.to_owned()])
        .collect()
}
