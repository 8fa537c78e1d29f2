//! The native addon of the `removebgvideo` npm package. It converts only: JSON arguments to the
//! client (through `removebgvideo::bridge`, shared with Python) and results back. No call
//! blocks the event loop: short calls run on the libuv thread pool, long ones (waits, runs,
//! transfers) on a thread of their own, so a `Promise.all` of many waits does not queue behind
//! libuv's four threads. Errors are JS errors whose `code` is our stable code (see `errors`);
//! `index.js` turns them into typed errors.

mod errors;

use std::sync::Arc;

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
    token: CancelToken,
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

type EventCallback = ThreadsafeFunction<String, (), String, Status, false>;

/// A long call's messages, in order: each event, then one result or one error. One queue
/// keeps every event before the outcome.
enum Message {
    /// An event, as JSON.
    Event(String),
    /// The result, as JSON.
    Result(String),
    /// The error: the callback, on the JS thread, makes it a JS error (`errors::js_error`).
    Error(removebgvideo::Error),
}

/// What the JS side of a long call receives: `("event" | "result", json)` or
/// `("error", error)`.
type MessageArgs = FnArgs<(String, Unknown<'static>)>;

type MessageCallback = ThreadsafeFunction<Message, (), MessageArgs, Status, false>;

/// Whether an operation is long: it then goes through `call_on_thread`.
#[napi]
pub fn is_long_operation(operation: String) -> bool {
    bridge::is_long(&operation)
}

/// Runs one operation (`{"operation", "arguments"}` JSON) through the bridge, handing each
/// event, as JSON, to `on_event`. Both ways of calling (the libuv pool, a thread of its own)
/// go through here.
fn run_call(
    client: &Client,
    operation_json: &str,
    options_json: &str,
    cancel: CancelToken,
    on_event: Option<Box<dyn Fn(String) + Send + Sync>>,
) -> std::result::Result<String, removebgvideo::Error> {
    let mut call = bridge::Options::from_json(options_json)?;
    call.cancel = Some(cancel);
    if let Some(on_event) = on_event {
        call.on_event = Some(Arc::new(move |event: &Event| {
            on_event(serde_json::to_string(event).expect("events serialize"));
        }));
    }
    bridge::call(client, operation_json, call)
}

/// One call, computed on the libuv pool.
pub struct CallTask {
    client: Client,
    operation_json: String,
    options_json: String,
    cancel: CancelToken,
    on_event: Option<Arc<EventCallback>>,
}

impl std::fmt::Debug for CallTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTask")
            .field("operation", &self.operation_json)
            .finish_non_exhaustive()
    }
}

impl Task for CallTask {
    // Our error, if any, becomes a JS error in `resolve`, on the JS thread, where an `Env` is.
    type Output = std::result::Result<String, removebgvideo::Error>;
    type JsValue = String;

    fn compute(&mut self) -> Result<Self::Output> {
        let on_event = self.on_event.clone().map(|callback| {
            Box::new(move |json: String| {
                callback.call(json, ThreadsafeFunctionCallMode::NonBlocking);
            }) as Box<dyn Fn(String) + Send + Sync>
        });
        Ok(run_call(
            &self.client,
            &self.operation_json,
            &self.options_json,
            self.cancel.clone(),
            on_event,
        ))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<String> {
        output.map_err(|error| thrown(&env, error))
    }
}

/// The Rust client.
#[derive(Debug)]
#[napi]
pub struct NativeClient {
    client: Client,
}

#[napi]
impl NativeClient {
    /// Builds the client from its settings, as snake_case JSON.
    #[napi(constructor)]
    pub fn new(env: &Env, settings_json: String) -> Result<Self> {
        let client = bridge::Settings::from_json(&settings_json)
            .and_then(bridge::Settings::into_client)
            .map_err(|e| thrown(env, e))?;
        Ok(NativeClient { client })
    }

    /// The settings without the key, as JSON.
    #[napi]
    pub fn describe(&self) -> String {
        let settings = self.client.settings();
        serde_json::json!({ "base_url": settings.base_url, "max_retries": settings.retry.max_retries }).to_string()
    }

    /// Calls one operation; resolves with the result as JSON.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn call(
        &self,
        operation_json: String,
        options_json: String,
        cancel: Option<&NativeCancel>,
        on_event: Option<EventCallback>,
    ) -> AsyncTask<CallTask> {
        AsyncTask::new(CallTask {
            client: self.client.clone(),
            operation_json,
            options_json,
            cancel: cancel.map(|c| c.token.clone()).unwrap_or_default(),
            on_event: on_event.map(Arc::new),
        })
    }
}

#[napi]
impl NativeClient {
    /// Calls one long operation on a thread of its own; its events and outcome arrive through
    /// `on_message` (see `Message`).
    #[napi(
        ts_args_type = "operationJson: string, optionsJson: string, cancel: NativeCancel | undefined | null, onMessage: (kind: 'event' | 'result' | 'error', value: unknown) => void"
    )]
    pub fn call_on_thread(
        &self,
        operation_json: String,
        options_json: String,
        cancel: Option<&NativeCancel>,
        on_message: Function<'_, MessageArgs, ()>,
    ) -> Result<()> {
        let client = self.client.clone();
        let cancel = cancel.map(|c| c.token.clone()).unwrap_or_default();
        let on_message: MessageCallback = on_message
            .build_threadsafe_function::<Message>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<Message>| {
                let (kind, value) = match ctx.value {
                    Message::Event(json) => ("event", ctx.env.to_js_value(&json)?),
                    Message::Result(json) => ("result", ctx.env.to_js_value(&json)?),
                    Message::Error(error) => ("error", js_error(&ctx.env, error)?),
                };
                Ok(FnArgs {
                    data: (kind.to_owned(), value),
                })
            })?;
        let on_message = Arc::new(on_message);
        std::thread::Builder::new()
            .name("removebgvideo-call".into())
            .spawn(move || {
                let events = Arc::clone(&on_message);
                let outcome = run_call(
                    &client,
                    &operation_json,
                    &options_json,
                    cancel,
                    Some(Box::new(move |json: String| {
                        events.call(Message::Event(json), ThreadsafeFunctionCallMode::Blocking);
                    })),
                );
                let message = match outcome {
                    Ok(result) => Message::Result(result),
                    Err(error) => Message::Error(error),
                };
                on_message.call(message, ThreadsafeFunctionCallMode::Blocking);
            })
            .map_err(|e| napi::Error::from_reason(format!("cannot start a call thread: {e}")))?;
        Ok(())
    }
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
