//! Fault injection: random faults from the configuration, and planned ones from a header.
//!
//! A test asks for a fault with `X-Sandbox-Fault`, for example `status=503; times=2`. The
//! whole header value identifies the plan: the first `times` requests carrying that exact
//! value get the fault, later ones (a client's retries) do not. Without `times` every request
//! carrying it does. Add a unique `id=...` to keep plans of different tests apart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::FaultConfig;

/// The header that asks for a fault.
pub const FAULT_HEADER: &str = "X-Sandbox-Fault";

/// What to do wrong with one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Answer this status (with a JSON error body) instead of serving the request.
    pub status: Option<u16>,
    /// Process, then answer this status instead of the real answer: a gateway that timed out
    /// or failed after the origin acted (the job exists, the client sees 504).
    pub status_after: Option<u16>,
    /// Close the connection before processing.
    pub drop_before: bool,
    /// Process, then close the connection without answering.
    pub drop_after: bool,
    /// Delay the answer.
    pub latency: Duration,
    /// Send a body that is not JSON.
    pub malformed: bool,
    /// Cut a download short.
    pub truncate: bool,
}

impl FaultPlan {
    /// Whether anything is planned.
    pub fn is_empty(&self) -> bool {
        *self == FaultPlan::default()
    }

    /// A short description for the request log.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(status) = self.status {
            parts.push(format!("status={status}"));
        }
        if let Some(status) = self.status_after {
            parts.push(format!("status-after={status}"));
        }
        for (on, name) in [
            (self.drop_before, "drop-before"),
            (self.drop_after, "drop-after"),
            (self.malformed, "malformed"),
            (self.truncate, "truncate"),
        ] {
            if on {
                parts.push(name.to_owned());
            }
        }
        if !self.latency.is_zero() {
            parts.push(format!("latency-ms={}", self.latency.as_millis()));
        }
        (!parts.is_empty()).then(|| parts.join(";"))
    }
}

/// Parses a fault header; unknown items are errors so a typo does not silently test nothing.
pub fn parse_header(value: &str) -> Result<(FaultPlan, Option<u32>), String> {
    let mut plan = FaultPlan::default();
    let mut times = None;
    for item in value
        .split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, argument) = match item.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (item, None),
        };
        let number = |what: &str| {
            argument
                .and_then(|a| a.parse::<u64>().ok())
                .ok_or_else(|| format!("{FAULT_HEADER}: {what} needs a number, as in {what}=2"))
        };
        match name {
            "status" | "status-after" => {
                let status = number(name)?;
                if !(400..=599).contains(&status) {
                    return Err(format!("{FAULT_HEADER}: {name} must be 400 to 599"));
                }
                if name == "status" {
                    plan.status = Some(status as u16);
                } else {
                    plan.status_after = Some(status as u16);
                }
            }
            "drop-before" => plan.drop_before = true,
            "drop-after" => plan.drop_after = true,
            "malformed" => plan.malformed = true,
            "truncate" => plan.truncate = true,
            "latency-ms" => plan.latency = Duration::from_millis(number("latency-ms")?),
            "times" => times = Some(number("times")? as u32),
            "id" => {}
            other => {
                return Err(format!(
                    "{FAULT_HEADER}: unknown fault {other:?}; use status=N, status-after=N, drop-before, drop-after, latency-ms=N, malformed, truncate, times=N, id=X"
                ));
            }
        }
    }
    Ok((plan, times))
}

/// Decides the faults of each request.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: Mutex<fastrand::Rng>,
    applied: Mutex<HashMap<String, u32>>,
}

impl Faults {
    /// From the configuration (seeded, so a run can be replayed).
    pub fn new(config: FaultConfig) -> Self {
        let rng = fastrand::Rng::with_seed(config.seed);
        Faults {
            config,
            rng: Mutex::new(rng),
            applied: Mutex::new(HashMap::new()),
        }
    }

    /// The faults of one request: the header's plan if it has one (and it is not used up),
    /// else random faults for API routes.
    pub fn decide(
        &self,
        header: Option<&str>,
        api_route: bool,
        download: bool,
    ) -> Result<FaultPlan, String> {
        if let Some(value) = header {
            let (plan, times) = parse_header(value)?;
            let mut applied = self.applied.lock().expect("fault counters");
            let count = applied.entry(value.to_owned()).or_insert(0);
            if times.is_none_or(|t| *count < t) {
                *count += 1;
                return Ok(plan);
            }
            return Ok(FaultPlan::default());
        }
        let config = &self.config;
        let mut plan = FaultPlan {
            latency: Duration::from_millis(config.latency_ms),
            ..FaultPlan::default()
        };
        let mut rng = self.rng.lock().expect("fault dice");
        let mut roll = |rate: f64| rate > 0.0 && rng.f64() < rate;
        if download {
            plan.truncate = roll(config.truncate_download_rate);
        }
        if api_route {
            if roll(config.error_rate) {
                plan.status = Some([500, 502, 503][rng.usize(..3)]);
            } else if roll(config.drop_before_rate) {
                plan.drop_before = true;
            } else if roll(config.drop_after_rate) {
                plan.drop_after = true;
            } else if roll(config.status_after_rate) {
                plan.status_after = Some([500, 502, 504][rng.usize(..3)]);
            } else if roll(config.malformed_rate) {
                plan.malformed = true;
            }
        }
        Ok(plan)
    }
}
