//! Fault injection: random faults from the configuration, and planned ones from a header.
//!
//! A test asks for a fault with `X-Sandbox-Fault`, for example `status=503; times=2`. The
//! API key sent (any, even a wrong one, or none) and the whole header value identify the plan:
//! the first `times` requests carrying that exact value with that key get the fault, later ones
//! (a client's retries) do not. Without `times` every request carrying it does. Add a unique
//! `id=...` to keep plans of different tests apart. Counters are kept for the `MAX_PLANS`
//! plans used most recently; one forgotten starts again from zero.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::FaultConfig;

/// The longest latency a fault header may ask for: a minute.
pub const MAX_HEADER_LATENCY_MS: u64 = 60_000;

/// The header that asks for a fault.
pub const FAULT_HEADER: &str = "X-Sandbox-Fault";

/// Planned faults whose use count is remembered; the least recently used are forgotten
/// beyond this, so a stream of distinct headers cannot grow the sandbox without bound.
pub const MAX_PLANS: usize = 10_000;

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

/// Parses an `X-Sandbox-Fault` value into a plan and its `times`; unknown items are errors so
/// a typo does not silently test nothing. Never panics, whatever the value (it is fuzzed).
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
            "latency-ms" => {
                // Bounded: a plan comes from any request's header, before authentication, and
                // an hour of latency would hold one of the server's connection slots for it.
                let millis = number("latency-ms")?;
                if millis > MAX_HEADER_LATENCY_MS {
                    return Err(format!(
                        "{FAULT_HEADER}: latency-ms must be at most {MAX_HEADER_LATENCY_MS}"
                    ));
                }
                plan.latency = Duration::from_millis(millis);
            }
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

/// How often a plan was applied, and when it was last used.
#[derive(Debug)]
struct Counter {
    count: u32,
    used: u64,
}

/// Use counters of planned faults, keyed by a digest of (API key, header value), so an entry
/// has a fixed size whatever the header's length.
#[derive(Debug, Default)]
struct Counters {
    plans: HashMap<[u8; 32], Counter>,
    clock: u64,
}

impl Counters {
    fn id(api_key: Option<&str>, header: &str) -> [u8; 32] {
        let mut digest = Sha256::new();
        // Length-prefixed, so no (key, header) pair can be confused with another.
        match api_key {
            Some(key) => {
                digest.update((key.len() as u64).to_le_bytes());
                digest.update(key.as_bytes());
            }
            None => digest.update(u64::MAX.to_le_bytes()),
        }
        digest.update(header.as_bytes());
        digest.finalize().into()
    }

    /// Counts one use of a plan allowed `times` uses; whether this use gets the fault.
    fn take(&mut self, id: [u8; 32], times: u32) -> bool {
        self.clock += 1;
        let counter = self
            .plans
            .entry(id)
            .or_insert(Counter { count: 0, used: 0 });
        counter.used = self.clock;
        let applies = counter.count < times;
        if applies {
            counter.count += 1;
        }
        if self.plans.len() > MAX_PLANS {
            self.forget_least_recent();
        }
        applies
    }

    /// Forgets the least recently used quarter: a sort every `MAX_PLANS / 4` new plans.
    fn forget_least_recent(&mut self) {
        let mut uses: Vec<u64> = self.plans.values().map(|c| c.used).collect();
        let cut = self.plans.len() - MAX_PLANS * 3 / 4;
        uses.select_nth_unstable(cut);
        let oldest_kept = uses[cut];
        self.plans.retain(|_, c| c.used >= oldest_kept);
    }
}

/// Decides the faults of each request.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: Mutex<fastrand::Rng>,
    applied: Mutex<Counters>,
}

impl Faults {
    /// From the configuration (seeded, so a run can be replayed).
    pub fn new(config: FaultConfig) -> Self {
        let rng = fastrand::Rng::with_seed(config.seed);
        Faults {
            config,
            rng: Mutex::new(rng),
            applied: Mutex::new(Counters::default()),
        }
    }

    /// The faults of one request: the header's plan if it has one (and it is not used up for
    /// this API key), else random faults for API routes.
    pub fn decide(
        &self,
        api_key: Option<&str>,
        header: Option<&str>,
        api_route: bool,
        download: bool,
    ) -> Result<FaultPlan, String> {
        if let Some(value) = header {
            let (plan, times) = parse_header(value)?;
            // A plan without `times` applies every time: nothing to count.
            let Some(times) = times else {
                return Ok(plan);
            };
            let id = Counters::id(api_key, value);
            let applies = self.applied.lock().expect("fault counters").take(id, times);
            return Ok(if applies { plan } else { FaultPlan::default() });
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

/// The faults of one webhook delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DeliveryPlan {
    /// Never sent.
    pub drop: bool,
    /// Held back this long first.
    pub delay: Duration,
    /// Sent again once delivered, with the same delivery id.
    pub redeliver: bool,
}

impl Faults {
    /// The faults of one webhook delivery (from the configured rates).
    pub fn decide_delivery(&self) -> DeliveryPlan {
        let config = &self.config;
        let mut rng = self.rng.lock().expect("fault dice");
        let mut roll = |rate: f64| rate > 0.0 && rng.f64() < rate;
        if roll(config.webhook_drop_rate) {
            return DeliveryPlan {
                drop: true,
                ..DeliveryPlan::default()
            };
        }
        DeliveryPlan {
            drop: false,
            delay: if roll(config.webhook_delay_rate) {
                Duration::from_millis(config.webhook_delay_ms)
            } else {
                Duration::ZERO
            },
            redeliver: roll(config.webhook_redeliver_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_cannot_hold_a_connection_for_longer_than_a_minute() {
        assert!(parse_header("latency-ms=60000").is_ok());
        let refused = parse_header("latency-ms=3600000").unwrap_err();
        assert!(refused.contains("at most 60000"), "{refused}");
    }

    #[test]
    fn planned_fault_counters_are_bounded() {
        let faults = Faults::new(FaultConfig::default());
        for i in 0..(2 * MAX_PLANS) {
            let header = format!("status=503; times=1; id={i}");
            let plan = faults.decide(None, Some(&header), true, false).unwrap();
            assert_eq!(plan.status, Some(503));
        }
        let kept = faults.applied.lock().unwrap().plans.len();
        assert!(kept <= MAX_PLANS, "{kept} plans kept");
    }

    #[test]
    fn a_plan_in_use_survives_a_flood_of_others() {
        let faults = Faults::new(FaultConfig::default());
        let mine = "status=503; times=2; id=mine";
        assert!(
            faults
                .decide(Some("k"), Some(mine), true, false)
                .unwrap()
                .status
                .is_some()
        );
        for i in 0..(2 * MAX_PLANS) {
            let header = format!("status=500; times=1; id={i}");
            faults.decide(None, Some(&header), true, false).unwrap();
            if i % 1000 == 0 {
                // Used now and then, so it is never the least recent.
                let _ = faults.decide(Some("k"), Some(mine), true, false).unwrap();
            }
        }
        assert!(
            faults
                .decide(Some("k"), Some(mine), true, false)
                .unwrap()
                .is_empty(),
            "used up, and remembered as used up"
        );
    }

    #[test]
    fn plans_are_counted_per_api_key() {
        let faults = Faults::new(FaultConfig::default());
        let plan = "status=503; times=1; id=shared";
        for key in [Some("a"), Some("b"), None] {
            let first = faults.decide(key, Some(plan), true, false).unwrap();
            assert_eq!(first.status, Some(503), "{key:?}");
            let second = faults.decide(key, Some(plan), true, false).unwrap();
            assert!(second.is_empty(), "{key:?}");
        }
        // Plans without `times` always apply and are not stored.
        for _ in 0..3 {
            let always = faults
                .decide(None, Some("status=502"), true, false)
                .unwrap();
            assert_eq!(always.status, Some(502));
        }
        assert_eq!(faults.applied.lock().unwrap().plans.len(), 3);
    }
}
