//! The native module of the `removebgvideo` Python package. It converts only: Python's
//! arguments to the Rust client's types and back, Rust errors to Python exceptions. The
//! Python layer (`python/removebgvideo`) gives it typed classes.

mod client;
mod convert;
mod exit_guard;
mod sandbox;

use pyo3::prelude::*;
use removebgvideo::core::Model;

use crate::convert::to_py_err;

/// Verifies a webhook delivery against its raw body; `input_json` holds the headers, the
/// secret and the optional tolerance and "now" (`bridge::WebhookInput`). Returns the event as
/// JSON or raises WebhookVerificationError.
#[pyfunction]
fn verify_webhook(py: Python<'_>, body: &[u8], input_json: &str) -> PyResult<String> {
    removebgvideo::bridge::verify_webhook(body, input_json).map_err(|e| to_py_err(py, e))
}

/// Credits for a video of `duration_seconds` with `model`.
#[pyfunction]
fn estimate_credits(py: Python<'_>, model: &str, duration_seconds: f64) -> PyResult<u64> {
    removebgvideo::estimate_credits(&Model::from(model), duration_seconds)
        .map_err(|e| to_py_err(py, e))
}

/// Every problem (errors and warnings) of a request body, as JSON, by the core's rules.
#[pyfunction]
fn validate_request(py: Python<'_>, type_name: &str, body_json: &str) -> PyResult<String> {
    removebgvideo::bridge::validate_request(type_name, body_json).map_err(|e| to_py_err(py, e))
}

/// The status of a batch run before (`BatchArgs` as JSON), as JSON.
#[pyfunction]
fn batch_status(py: Python<'_>, args_json: &str) -> PyResult<String> {
    removebgvideo_batch::bridge::status(args_json).map_err(|e| to_py_err(py, e))
}

/// An item's log (`BatchArgs` as JSON, and the item's key), as a JSON array.
#[pyfunction]
fn batch_events(py: Python<'_>, args_json: &str, key: &str) -> PyResult<String> {
    removebgvideo_batch::bridge::events(args_json, key).map_err(|e| to_py_err(py, e))
}

/// The SLA report of a batch without the API's usage (no client needed), as JSON.
#[pyfunction]
fn batch_report(py: Python<'_>, args_json: &str) -> PyResult<String> {
    removebgvideo_batch::bridge::report(None, args_json).map_err(|e| to_py_err(py, e))
}

/// A manifest's text checked (`csv` or `jsonl`): its keys as JSON, or ValidationError.
#[pyfunction]
fn check_manifest(py: Python<'_>, text: &str, format: &str) -> PyResult<String> {
    removebgvideo_batch::bridge::check_manifest(text, format).map_err(|e| to_py_err(py, e))
}

/// (kind, exception class) for every error kind.
#[pyfunction]
fn exception_classes() -> Vec<(String, &'static str)> {
    removebgvideo::bridge::error_classes()
}

/// Passes the SDK's own records to Python, and only the warnings and errors of the crates
/// below it. The HTTP crate logs on every read of a body; sending those to `pyo3_log`, even
/// just to be filtered out there, cost a batch half of its CPU and a download three quarters
/// of its speed (docs/benchmarks.md).
struct OwnLogs(pyo3_log::Logger);

impl OwnLogs {
    fn wanted(metadata: &log::Metadata<'_>) -> bool {
        let target = metadata.target();
        target == "removebgvideo"
            || target.starts_with("removebgvideo::")
            || metadata.level() <= log::Level::Warn
    }
}

// The engine's threads log too, and may do so while the interpreter shuts down: taking the GIL
// then would abort the process, so a record that comes too late is dropped (`exit_guard`).
impl log::Log for OwnLogs {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        OwnLogs::wanted(metadata)
            && exit_guard::with_python(|_| self.0.enabled(metadata)).unwrap_or(false)
    }

    fn log(&self, record: &log::Record<'_>) {
        if OwnLogs::wanted(record.metadata()) {
            exit_guard::with_python(|_| self.0.log(record));
        }
    }

    fn flush(&self) {}
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust `tracing` events reach Python's `logging` (logger "removebgvideo") via `log`.
    // No level caching: a level set later (logging.basicConfig, pytest's caplog) must apply,
    // and the SDK logs only on rare events such as retries.
    let logger = pyo3_log::Logger::new(module.py(), pyo3_log::Caching::Nothing)?;
    if log::set_boxed_logger(Box::new(OwnLogs(logger))).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<client::NativeClient>()?;
    module.add_class::<client::NativeCancel>()?;
    module.add_class::<client::NativeReceiver>()?;
    module.add_class::<sandbox::NativeSandbox>()?;
    module.add_function(wrap_pyfunction!(verify_webhook, module)?)?;
    module.add_function(wrap_pyfunction!(estimate_credits, module)?)?;
    module.add_function(wrap_pyfunction!(validate_request, module)?)?;
    module.add_function(wrap_pyfunction!(exception_classes, module)?)?;
    module.add_function(wrap_pyfunction!(batch_status, module)?)?;
    module.add_function(wrap_pyfunction!(batch_events, module)?)?;
    module.add_function(wrap_pyfunction!(batch_report, module)?)?;
    module.add_function(wrap_pyfunction!(check_manifest, module)?)?;
    module.add_function(wrap_pyfunction!(exit_guard::close_for_exit, module)?)?;
    Ok(())
}
