//! The native module of the `removebgvideo` Python package. It converts only: Python's
//! arguments to the Rust client's types and back, Rust errors to Python exceptions. The
//! Python layer (`python/removebgvideo`) gives it typed classes.

mod client;
mod convert;
mod sandbox;

use std::time::Duration;

use pyo3::prelude::*;
use removebgvideo::core::{Headers, Model, Timestamp};

use crate::convert::to_py_err;

/// Verifies a webhook delivery; returns the event as JSON or raises WebhookVerificationError.
/// `now_ms` replays a delivery at a given time (tests); by default it is the wall clock.
#[pyfunction]
#[pyo3(signature = (body, headers, secret, tolerance, now_ms=None))]
fn verify_webhook(
    py: Python<'_>,
    body: &[u8],
    headers: Vec<(String, String)>,
    secret: &str,
    tolerance: f64,
    now_ms: Option<u64>,
) -> PyResult<String> {
    let headers: Headers = headers.into_iter().collect();
    let now = now_ms
        .map(Timestamp::from_unix_millis)
        .unwrap_or_else(|| Timestamp::from(std::time::SystemTime::now()));
    removebgvideo::webhook::verify(
        &headers,
        body,
        secret,
        now,
        Duration::from_secs_f64(tolerance.max(0.0)),
    )
    .map(|verified| serde_json::to_string(&verified).expect("JSON"))
    .map_err(|e| to_py_err(py, e))
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

/// (kind, exception class) for every error kind.
#[pyfunction]
fn exception_classes() -> Vec<(String, &'static str)> {
    use removebgvideo::bridge::{ERROR_KINDS, error_class};
    ERROR_KINDS
        .iter()
        .map(|kind| {
            (
                serde_json::to_value(kind)
                    .expect("JSON")
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                error_class(*kind),
            )
        })
        .collect()
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust `tracing` events reach Python's `logging` (logger "removebgvideo") via `log`.
    // No level caching: a level set later (logging.basicConfig, pytest's caplog) must apply,
    // and the SDK logs only on rare events such as retries. The HTTP and TLS crates log
    // several debug records per request; asking Python about each took the GIL that often and
    // cost a batch most of its CPU (docs/benchmarks.md), so only their warnings pass.
    let _ = pyo3_log::Logger::new(module.py(), pyo3_log::Caching::Nothing)?
        .filter(log::LevelFilter::Warn)
        .filter_target("removebgvideo".to_owned(), log::LevelFilter::Trace)
        .install();
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<client::NativeClient>()?;
    module.add_class::<client::NativeCancel>()?;
    module.add_class::<sandbox::NativeSandbox>()?;
    module.add_function(wrap_pyfunction!(verify_webhook, module)?)?;
    module.add_function(wrap_pyfunction!(estimate_credits, module)?)?;
    module.add_function(wrap_pyfunction!(validate_request, module)?)?;
    module.add_function(wrap_pyfunction!(exception_classes, module)?)?;
    Ok(())
}
