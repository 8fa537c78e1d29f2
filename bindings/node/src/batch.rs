//! Batches for Node: a run on a thread of its own (the coordinator blocks on the engine's
//! answers; not libuv's pool, which the app's own I/O needs), its item results and progress
//! carried to JS by one threadsafe function, which keeps the process alive until the run
//! ends. Status, events and reports read the ledger (and, for the report, the API) on
//! libuv's pool: a promise each, never a blocking call on the JS thread.

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use removebgvideo_batch::bridge;

use crate::errors::{js_error, thrown};
use crate::{NativeCancel, NativeClient};

/// A batch run's messages, in order: item results and progress, then the summary or the error.
enum BatchMessage {
    Item(String),
    Progress(String),
    Summary(String),
    Error(removebgvideo::Error),
}

type BatchArgs = FnArgs<(String, Unknown<'static>)>;
type BatchCallback = ThreadsafeFunction<BatchMessage, (), BatchArgs, Status, false>;

#[napi]
impl NativeClient {
    /// Runs (or resumes) a batch (`BatchArgs` JSON) on a thread of its own;
    /// `on_message(kind, value)` gets `("item", json)`, `("progress", json)`, then
    /// `("summary", json)` or `("error", error)`, on the JS thread.
    #[napi(
        ts_args_type = "argsJson: string, cancel: NativeCancel, onMessage: (kind: 'item' | 'progress' | 'summary' | 'error', value: unknown) => void"
    )]
    pub fn batch_run(
        &self,
        args_json: String,
        cancel: &NativeCancel,
        on_message: Function<'_, BatchArgs, ()>,
    ) -> Result<()> {
        let messages: BatchCallback = on_message
            .build_threadsafe_function::<BatchMessage>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<BatchMessage>| {
                let (kind, value) = match ctx.value {
                    BatchMessage::Item(json) => ("item", ctx.env.to_js_value(&json)?),
                    BatchMessage::Progress(json) => ("progress", ctx.env.to_js_value(&json)?),
                    BatchMessage::Summary(json) => ("summary", ctx.env.to_js_value(&json)?),
                    BatchMessage::Error(error) => ("error", js_error(&ctx.env, error)?),
                };
                Ok(FnArgs {
                    data: (kind.to_owned(), value),
                })
            })?;
        let messages = std::sync::Arc::new(messages);
        let client = self.client.clone();
        let token = cancel.token.clone();
        let send = {
            let messages = messages.clone();
            move |message: BatchMessage| {
                messages.call(message, ThreadsafeFunctionCallMode::NonBlocking);
            }
        };
        let (item, progress) = (send.clone(), send.clone());
        let callbacks = bridge::Callbacks {
            on_item: Some(std::sync::Arc::new(move |json| {
                item(BatchMessage::Item(json))
            })),
            on_progress: Some(std::sync::Arc::new(move |json| {
                progress(BatchMessage::Progress(json))
            })),
        };
        std::thread::Builder::new()
            .name("removebgvideo-batch".into())
            .spawn(move || {
                let outcome = removebgvideo::bridge::guarded(|| {
                    bridge::run(&client, &args_json, callbacks, token)
                });
                send(match outcome {
                    Ok(summary) => BatchMessage::Summary(summary),
                    Err(error) => BatchMessage::Error(error),
                });
            })
            .map_err(|e| Error::from_reason(format!("cannot start the batch's thread: {e}")))?;
        Ok(())
    }

    /// The SLA report of a batch run before, with the API's usage reconciled (JSON).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn batch_report(&self, args_json: String) -> AsyncTask<LedgerTask> {
        AsyncTask::new(LedgerTask {
            query: Query::Report(Some(self.client.clone())),
            args_json,
        })
    }
}

/// What a ledger task reads.
#[derive(Debug)]
pub enum Query {
    Status,
    Events(String),
    Report(Option<removebgvideo::Client>),
}

/// One read of the ledger on libuv's pool.
#[derive(Debug)]
pub struct LedgerTask {
    query: Query,
    args_json: String,
}

impl Task for LedgerTask {
    type Output = std::result::Result<String, removebgvideo::Error>;
    type JsValue = String;

    fn compute(&mut self) -> Result<Self::Output> {
        let args = &self.args_json;
        Ok(removebgvideo::bridge::guarded(|| match &self.query {
            Query::Status => bridge::status(args),
            Query::Events(key) => bridge::events(args, key),
            Query::Report(client) => bridge::report(client.as_ref(), args),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<String> {
        output.map_err(|error| thrown(&env, error))
    }
}

/// The status of a batch run before (`BatchArgs` JSON), as JSON.
#[napi(ts_return_type = "Promise<string>")]
pub fn batch_status(args_json: String) -> AsyncTask<LedgerTask> {
    AsyncTask::new(LedgerTask {
        query: Query::Status,
        args_json,
    })
}

/// An item's log, as a JSON array.
#[napi(ts_return_type = "Promise<string>")]
pub fn batch_events(args_json: String, key: String) -> AsyncTask<LedgerTask> {
    AsyncTask::new(LedgerTask {
        query: Query::Events(key),
        args_json,
    })
}

/// The SLA report of a batch without the API's usage, as JSON.
#[napi(ts_return_type = "Promise<string>")]
pub fn batch_report(args_json: String) -> AsyncTask<LedgerTask> {
    AsyncTask::new(LedgerTask {
        query: Query::Report(None),
        args_json,
    })
}

/// A manifest's text checked (`csv` or `jsonl`): its keys as JSON, or a ValidationError.
#[napi]
pub fn check_manifest(env: &Env, text: String, format: String) -> Result<String> {
    bridge::check_manifest(&text, &format).map_err(|e| thrown(env, e))
}
