//! A small HTTP client for the sandbox tests: every JSON answer is checked against the
//! committed JSON Schema, so the emulator cannot drift from the published contract.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use removebgvideo_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

pub const PLAYGROUND_VIDEO: &str = "https://cdn.removebgvideo.com/uploads/your-video.mp4";

/// A sandbox running `speed` times faster than real time.
pub fn sandbox(speed: f64) -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed,
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

fn bundle() -> &'static Value {
    static BUNDLE: OnceLock<Value> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schema/removebgvideo.schema.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("the committed schema"))
            .expect("JSON")
    })
}

/// The compiled validator of `$defs/<type_name>`, compiled once per test binary.
fn validator(type_name: &str) -> Arc<jsonschema::Validator> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
        OnceLock::new();
    let mut validators = VALIDATORS.get_or_init(Default::default).lock().unwrap();
    validators
        .entry(type_name.to_owned())
        .or_insert_with(|| {
            let mut schema = bundle().clone();
            schema["$ref"] = json!(format!("#/$defs/{type_name}"));
            Arc::new(jsonschema::validator_for(&schema).expect("the schema compiles"))
        })
        .clone()
}

/// Fails unless `value` is valid for `$defs/<type_name>` of the committed schema.
pub fn assert_schema(type_name: &str, value: &Value) {
    let validator = validator(type_name);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{type_name} does not match the schema: {errors:?}\n{value:#}"
    );
}

/// The schema type of a successful answer, by route.
fn success_type(method: &str, path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    Some(match (method, segments.as_slice()) {
        ("POST", ["", "v1", "uploads"]) => "UploadResult",
        ("POST", ["", "v1", "jobs"]) => "JobAccepted",
        ("POST", ["", "v1", "jobs", _, "start"]) => "JobAccepted",
        ("GET", ["", "v1", "jobs"]) => "JobList",
        ("GET", ["", "v1", "jobs", _]) => "Job",
        ("GET", ["", "v1", "usage", "summary"]) => "UsageSummary",
        ("GET", ["", "v1", "usage", "events"]) => "UsageEvents",
        ("GET", ["", "api", "download", _]) => "LegacyDownload",
        ("GET", ["", "health"]) => "Health",
        _ => return None,
    })
}

/// A client for one sandbox and key.
pub struct Api {
    pub base: String,
    pub key: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(sandbox: &Sandbox, key: &str) -> Self {
        Api {
            base: sandbox.base_url().to_owned(),
            key: Some(key.to_owned()),
            agent: agent(),
        }
    }

    /// Sends a request; checks the answer against the schema (success type, or ErrorBody).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, ureq::Error> {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = &self.key {
            request = request.header("X-Api-Key", key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(body).unwrap())
                    .unwrap(),
            ),
            None => self.agent.run(request.body(()).unwrap()),
        }?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = response
            .into_body()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()?;
        let reply = Reply {
            status,
            headers,
            bytes,
        };
        // A malformed-body fault sends JSON that does not parse; everything else must conform.
        let parsed = serde_json::from_slice::<Value>(&reply.bytes).ok();
        if let Some(value) = parsed.filter(|_| {
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
        }) {
            match (status, success_type(method, path)) {
                (200..=299, Some(type_name)) => assert_schema(type_name, &value),
                (400..=599, _) => assert_schema("ErrorBody", &value),
                _ => {}
            }
        }
        assert!(
            reply.header("x-request-id").is_some(),
            "every answer has a request id: {method} {path}"
        );
        Ok(reply)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None).expect("an answer")
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, &[], Some(body)).expect("an answer")
    }

    /// Polls a job until `done` says so, at most `bound` of real time.
    pub fn poll_until(
        &self,
        job_id: &str,
        bound: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let job = self.get(&format!("/v1/jobs/{job_id}")).json();
            if done(&job) {
                return job;
            }
            assert!(
                started.elapsed() < bound,
                "job {job_id} never got there; last seen {job:#}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_terminal(&self, job_id: &str) -> Value {
        self.poll_until(job_id, Duration::from_secs(20), |job| {
            matches!(job["status"].as_str(), Some("completed" | "failed"))
        })
    }
}

/// The secret token of an output URL (`.../sandbox/outputs/{job}/{token}.{ext}`).
pub fn output_token(url: &str) -> String {
    let file = url.rsplit('/').next().unwrap_or_default();
    file.split('.').next().unwrap_or_default().to_owned()
}
