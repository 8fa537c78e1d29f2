//! Rust errors to the Python exception tree, and JSON arguments from Python. The argument
//! conversions themselves are the client's (`removebgvideo::bridge`), shared with Node.

use pyo3::prelude::*;
use removebgvideo::Error;
use serde::Deserialize;

/// Raises the Python exception of a Rust error: `removebgvideo._errors.<Class>(payload)`.
pub fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let errors = py.import("removebgvideo._errors")?;
        let class = errors.getattr(removebgvideo::bridge::error_class(error.kind()))?;
        let instance = class.call_method1(
            "_from_payload",
            (removebgvideo::bridge::error_payload(&error).to_string(),),
        )?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|e| e)
}

/// A JSON argument from Python, with a `ValidationError` naming the field when malformed.
pub fn from_json<T: for<'de> Deserialize<'de>>(
    py: Python<'_>,
    what: &str,
    json: &str,
) -> PyResult<T> {
    removebgvideo::bridge::parse(what, json).map_err(|e| to_py_err(py, e))
}
