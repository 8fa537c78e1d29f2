//! `NativeClient`: every client method behind one JSON-in, JSON-out `call`, run with the GIL
//! released; long calls stay interruptible by Ctrl-C and cancellable from asyncio.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;
use removebgvideo::{CancelToken, Client, Event, bridge};

use crate::convert::to_py_err;
use crate::exit_guard;

/// How often a blocking call looks for Ctrl-C while the GIL is released.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// A cancellation flag shared with Python (asyncio cancellation raises it).
#[derive(Debug)]
#[pyclass(module = "removebgvideo._native", frozen)]
pub struct NativeCancel {
    pub(crate) token: CancelToken,
}

#[pymethods]
impl NativeCancel {
    #[new]
    fn new() -> Self {
        NativeCancel {
            token: CancelToken::new(),
        }
    }

    /// Stops the calls using this token at their next pause.
    fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether it was cancelled.
    fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// The Rust client, shared by all Python threads.
#[derive(Debug)]
#[pyclass(module = "removebgvideo._native", frozen)]
pub struct NativeClient {
    client: Client,
}

/// Runs long work on a helper thread while this one waits with the GIL released, looking
/// for Ctrl-C every 50 ms: on an interrupt the work is cancelled and KeyboardInterrupt raised.
fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &CancelToken,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let (sender, mut receiver) = mpsc::channel();
        scope.spawn(move || {
            let _ = sender.send(work());
        });
        loop {
            let (back, received) = py.detach(move || {
                let received = receiver.recv_timeout(SIGNAL_CHECK);
                (receiver, received)
            });
            receiver = back;
            match received {
                Ok(value) => return Ok(value),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        cancel.cancel();
                        // The work stops at its next pause; wait for it without the GIL.
                        let _ = py.detach(move || receiver.recv());
                        return Err(interrupt);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "the client's worker thread stopped unexpectedly",
                    ));
                }
            }
        }
    })
}

/// Passes JSON to a Python callable (taking the GIL for it); what it raises is reported as
/// unraisable, never into the Rust work that called it.
pub(crate) fn json_callback(callback: Py<PyAny>) -> Arc<dyn Fn(String) + Send + Sync> {
    Arc::new(move |json: String| {
        exit_guard::with_python(|py| {
            if let Err(error) = callback.call1(py, (json,)) {
                error.write_unraisable(py, None);
            }
        });
    })
}

/// Passes each event, as JSON, to a Python callable (taking the GIL for it).
fn event_handler(callback: Py<PyAny>) -> removebgvideo::EventHandler {
    Arc::new(move |event: &Event| {
        let json = serde_json::to_string(event).expect("events serialize");
        exit_guard::with_python(|py| {
            if let Err(error) = callback.call1(py, (json,)) {
                error.write_unraisable(py, None);
            }
        });
    })
}

/// Whether this is Python's main thread, the one signal handlers run on.
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let current = threading.call_method0("current_thread")?;
    let main = threading.call_method0("main_thread")?;
    Ok(current.is(&main))
}

#[pymethods]
impl NativeClient {
    /// Builds the client from `Client(...)`'s settings, as JSON.
    #[new]
    fn new(py: Python<'_>, settings_json: &str) -> PyResult<Self> {
        let client = bridge::Settings::from_json(settings_json)
            .and_then(bridge::Settings::into_client)
            .map_err(|e| to_py_err(py, e))?;
        Ok(NativeClient { client })
    }

    /// The settings, without the key (for `repr`).
    fn describe(&self) -> String {
        let settings = self.client.settings();
        serde_json::json!({
            "base_url": settings.base_url,
            "max_retries": settings.retry.max_retries,
            "timeout": settings.request_timeout.as_secs_f64(),
        })
        .to_string()
    }

    /// Hands one operation to the client's engine and returns at once; `deliver(kind, value)`
    /// is called later, on one of the engine's threads with the GIL held, with `("result",
    /// json)` or `("error", exception)`. `AsyncClient` completes its futures from there with
    /// `loop.call_soon_threadsafe`: no thread pool and no cap on calls in flight.
    #[pyo3(signature = (operation_json, options_json, deliver, on_event=None, cancel=None))]
    fn submit(
        &self,
        py: Python<'_>,
        operation_json: &str,
        options_json: &str,
        deliver: Py<PyAny>,
        on_event: Option<Py<PyAny>>,
        cancel: Option<Py<NativeCancel>>,
    ) -> PyResult<()> {
        let operation =
            bridge::Operation::from_json(operation_json).map_err(|e| to_py_err(py, e))?;
        let mut call = bridge::Options::from_json(options_json).map_err(|e| to_py_err(py, e))?;
        call.cancel = Some(cancel.map(|c| c.get().token.clone()).unwrap_or_default());
        call.on_event = on_event.map(event_handler);
        let done = Box::new(move |outcome: Result<String, removebgvideo::Error>| {
            // An interpreter shutting down has nobody left to tell (and attaching would abort).
            exit_guard::with_python(|py| {
                let delivered = match outcome {
                    Ok(json) => deliver.call1(py, ("result", json)),
                    Err(error) => deliver.call1(py, ("error", to_py_err(py, error).into_value(py))),
                };
                if let Err(error) = delivered {
                    error.write_unraisable(py, None);
                }
            });
        });
        // With the GIL held: handing a call over never blocks (the engine's threads take the
        // GIL only to deliver, holding no lock of the engine), and releasing it for each of ten
        // thousand hand-overs makes the event loop queue for it behind every delivery.
        bridge::submit(&self.client, operation, call, done);
        Ok(())
    }

    /// Runs (or resumes) a batch (`removebgvideo_batch::bridge::BatchArgs` as JSON) until it
    /// ends or `cancel` stops it, with the GIL released; `on_item` and `on_progress` get
    /// JSON. On the main thread Ctrl-C stops it (everything stays resumable). Returns the
    /// summary as JSON.
    #[pyo3(signature = (args_json, on_item=None, on_progress=None, cancel=None))]
    fn batch_run(
        &self,
        py: Python<'_>,
        args_json: &str,
        on_item: Option<Py<PyAny>>,
        on_progress: Option<Py<PyAny>>,
        cancel: Option<Py<NativeCancel>>,
    ) -> PyResult<String> {
        let token = cancel.map(|c| c.get().token.clone()).unwrap_or_default();
        let callbacks = removebgvideo_batch::bridge::Callbacks {
            on_item: on_item.map(json_callback),
            on_progress: on_progress.map(json_callback),
        };
        let client = &self.client;
        let work = || {
            bridge::guarded(|| {
                removebgvideo_batch::bridge::run(client, args_json, callbacks, token.clone())
            })
        };
        let result = if on_main_thread(py)? {
            interruptible(py, &token, work)?
        } else {
            py.detach(work)
        };
        result.map_err(|e| to_py_err(py, e))
    }

    /// The SLA report of a batch run before, with the API's usage reconciled (JSON).
    fn batch_report(&self, py: Python<'_>, args_json: &str) -> PyResult<String> {
        let client = &self.client;
        py.detach(|| {
            bridge::guarded(|| removebgvideo_batch::bridge::report(Some(client), args_json))
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// Sends the client's jobs' events to a URL and makes its waits hybrid
    /// (`bridge::UseWebhooksInput` as JSON).
    fn use_webhooks(&self, py: Python<'_>, input_json: &str) -> PyResult<()> {
        bridge::use_webhooks(&self.client, input_json).map_err(|e| to_py_err(py, e))
    }

    /// Takes one delivery: its raw body and `[name, value]` header pairs as JSON; the verified
    /// event as JSON, or the verification error raised. No I/O: the GIL is kept.
    fn handle_webhook(&self, py: Python<'_>, body: &[u8], headers_json: &str) -> PyResult<String> {
        bridge::handle_webhook(&self.client, body, headers_json).map_err(|e| to_py_err(py, e))
    }

    /// Starts a webhook receiver for the client (`bridge::ListenInput` as JSON).
    fn listen_for_webhooks(&self, py: Python<'_>, input_json: &str) -> PyResult<NativeReceiver> {
        let client = &self.client;
        let receiver = py
            .detach(|| bridge::listen_for_webhooks(client, input_json))
            .map_err(|e| to_py_err(py, e))?;
        Ok(NativeReceiver {
            url: receiver.url().to_owned(),
            receiver: std::sync::Mutex::new(Some(receiver)),
        })
    }

    /// Calls one operation: its JSON (`{"operation", "arguments"}`) and the options' JSON in,
    /// the result as JSON out. Long operations run on a helper thread so Ctrl-C can interrupt
    /// them.
    #[pyo3(signature = (operation_json, options_json, on_event=None, cancel=None))]
    fn call(
        &self,
        py: Python<'_>,
        operation_json: &str,
        options_json: &str,
        on_event: Option<Py<PyAny>>,
        cancel: Option<Py<NativeCancel>>,
    ) -> PyResult<String> {
        let operation =
            bridge::Operation::from_json(operation_json).map_err(|e| to_py_err(py, e))?;
        let long = operation.is_long();
        let mut call = bridge::Options::from_json(options_json).map_err(|e| to_py_err(py, e))?;
        let token = cancel.map(|c| c.get().token.clone()).unwrap_or_default();
        call.cancel = Some(token.clone());
        call.on_event = on_event.map(event_handler);
        let client = &self.client;
        let work = || bridge::call_operation(client, operation, call);
        // Only the main thread receives Ctrl-C; elsewhere watching for it would only cost a
        // helper thread and twenty GIL round trips a second per call (a batch's CPU).
        let result = if long && on_main_thread(py)? {
            interruptible(py, &token, work)?
        } else {
            py.detach(work)
        };
        result.map_err(|e| to_py_err(py, e))
    }
}

/// A running webhook receiver; stopped by `stop` or when collected.
#[derive(Debug)]
#[pyclass(module = "removebgvideo._native", frozen)]
pub struct NativeReceiver {
    /// The URL deliveries are posted to.
    #[pyo3(get)]
    url: String,
    receiver: std::sync::Mutex<Option<removebgvideo::WebhookReceiver>>,
}

#[pymethods]
impl NativeReceiver {
    /// What it took and refused so far, as JSON.
    fn stats(&self) -> String {
        let receiver = self.receiver.lock().unwrap_or_else(|p| p.into_inner());
        let stats = receiver.as_ref().map(|r| r.stats()).unwrap_or_default();
        serde_json::json!({
            "accepted": stats.accepted,
            "duplicates": stats.duplicates,
            "rejected": stats.rejected,
        })
        .to_string()
    }

    /// Stops listening; later calls do nothing.
    fn stop(&self, py: Python<'_>) {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(receiver) = receiver {
            py.detach(|| receiver.stop());
        }
    }
}
