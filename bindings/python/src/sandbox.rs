//! `NativeSandbox`: the Rust sandbox in-process, for `removebgvideo.testing.Sandbox`.

use std::sync::Mutex;

use pyo3::prelude::*;
use removebgvideo_sandbox::{Sandbox, SandboxConfig};

use crate::convert::from_json;

#[derive(Debug)]
#[pyclass(module = "removebgvideo._native", frozen)]
pub struct NativeSandbox {
    sandbox: Mutex<Option<Sandbox>>,
    #[pyo3(get)]
    base_url: String,
    #[pyo3(get)]
    demo_key: String,
    #[pyo3(get)]
    no_credits_key: String,
    #[pyo3(get)]
    rate_limited_key: String,
    #[pyo3(get)]
    webhook_secret: String,
}

#[pymethods]
impl NativeSandbox {
    /// Starts a sandbox; `config_json` holds `SandboxConfig` fields (absent ones default).
    #[new]
    fn new(py: Python<'_>, config_json: &str) -> PyResult<Self> {
        let config: SandboxConfig = from_json(py, "config", config_json)?;
        // An unusable setting is a ValidationError naming it, like any other bad argument.
        config
            .check()
            .map_err(|e| crate::convert::to_py_err(py, e))?;
        let sandbox = py.detach(|| Sandbox::start(config)).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot start the sandbox: {e}"))
        })?;
        Ok(NativeSandbox {
            base_url: sandbox.base_url().to_owned(),
            demo_key: sandbox.demo_key().to_owned(),
            no_credits_key: sandbox.no_credits_key().to_owned(),
            rate_limited_key: sandbox.rate_limited_key().to_owned(),
            webhook_secret: sandbox.webhook_secret().to_owned(),
            sandbox: Mutex::new(Some(sandbox)),
        })
    }

    /// The requests it has seen, as JSON records.
    fn request_log(&self) -> String {
        let guard = self.sandbox.lock().expect("sandbox");
        let log = guard.as_ref().map(|s| s.request_log()).unwrap_or_default();
        serde_json::to_string(&log).expect("JSON")
    }

    /// Stops it (idempotent).
    fn stop(&self, py: Python<'_>) {
        let sandbox = self.sandbox.lock().expect("sandbox").take();
        if let Some(sandbox) = sandbox {
            py.detach(|| sandbox.shutdown());
        }
    }
}
