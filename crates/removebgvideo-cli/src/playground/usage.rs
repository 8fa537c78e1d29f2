//! "Confirm API key usage appears in API Management usage view": the usage summary read before
//! and after this run's jobs moves by exactly (on the embedded sandbox) or at least (on a shared
//! real key) their count and credits, and the usage events charge each completed job.

use std::collections::HashMap;
use std::time::Duration;

use removebgvideo::{UsageEventsQuery, UsageSummary, UsageSummaryQuery};
use serde_json::{Value, json};

use super::Target;
use super::checks::{Check, check, skipped};

const NAME: &str = "usage";
/// The summary's window: every job of this run was created within the last day.
const WINDOW_DAYS: u32 = 1;
/// The most events one read returns (the API's maximum).
const EVENTS_LIMIT: u32 = 100;
/// A real server's usage view may lag its jobs: read again this many times, a second apart.
const SERVER_READS: u32 = 5;
const SERVER_READ_PAUSE: Duration = Duration::from_secs(1);

/// The figures of one summary read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    total_jobs: i64,
    completed_jobs: i64,
    credits_used: f64,
}

impl From<&UsageSummary> for Figures {
    fn from(summary: &UsageSummary) -> Self {
        Figures {
            total_jobs: summary.total_jobs as i64,
            completed_jobs: summary.completed_jobs as i64,
            credits_used: summary.credits_used,
        }
    }
}

impl Figures {
    fn minus(self, other: Figures) -> Figures {
        Figures {
            total_jobs: self.total_jobs - other.total_jobs,
            completed_jobs: self.completed_jobs - other.completed_jobs,
            credits_used: self.credits_used - other.credits_used,
        }
    }

    fn json(self) -> Value {
        json!({
            "total_jobs": self.total_jobs,
            "completed_jobs": self.completed_jobs,
            "credits_used": self.credits_used,
        })
    }
}

/// One job this run created while the usage was being watched.
#[derive(Clone, Debug)]
pub struct OwnJob {
    pub id: String,
    pub completed: bool,
    /// Credits the server said it charged (`credits_used`), for a completed job.
    pub credits: f64,
}

/// The summary before the watched jobs, or the error that prevented reading it.
pub fn before(target: &Target) -> Result<Figures, String> {
    read(target)
}

fn read(target: &Target) -> Result<Figures, String> {
    target
        .client
        .usage_summary(
            &UsageSummaryQuery {
                days: Some(WINDOW_DAYS),
            },
            &target.call(),
        )
        .map(|s| Figures::from(&s))
        .map_err(|e| e.to_string())
}

/// Whether the delta shows the jobs: exactly on the embedded sandbox (nobody else uses it),
/// at least on a real server (other clients of the key add their own).
fn shows(delta: Figures, expected: Figures, exact: bool) -> bool {
    const EPSILON: f64 = 1e-6;
    if exact {
        delta.total_jobs == expected.total_jobs
            && delta.completed_jobs == expected.completed_jobs
            && (delta.credits_used - expected.credits_used).abs() < EPSILON
    } else {
        delta.total_jobs >= expected.total_jobs
            && delta.completed_jobs >= expected.completed_jobs
            && delta.credits_used + EPSILON >= expected.credits_used
    }
}

fn number(value: f64) -> String {
    // Credits are whole numbers in practice; print them so, and fractions when there are any.
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// The check: `before` was read before `jobs` were created; the summary is read again now.
pub fn check_usage(target: &Target, before: Result<Figures, String>, jobs: &[OwnJob]) -> Check {
    let before = match before {
        Ok(before) => before,
        Err(e) => {
            return check(
                NAME,
                false,
                format!("reading the usage summary failed: {e}"),
            );
        }
    };
    if jobs.is_empty() {
        return skipped(
            NAME,
            "no job of this run was created, so there is nothing to find in the usage view",
        );
    }
    let exact = target.sandbox.is_some();
    let expected = Figures {
        total_jobs: jobs.len() as i64,
        completed_jobs: jobs.iter().filter(|j| j.completed).count() as i64,
        credits_used: jobs.iter().filter(|j| j.completed).map(|j| j.credits).sum(),
    };
    let reads = if exact { 1 } else { SERVER_READS };
    let mut after = Figures::default();
    let mut read_count = 0;
    for attempt in 0..reads {
        if attempt > 0 && target.cancel.sleep(SERVER_READ_PAUSE) {
            break;
        }
        read_count += 1;
        after = match read(target) {
            Ok(after) => after,
            Err(e) => {
                return check(
                    NAME,
                    false,
                    format!("reading the usage summary failed: {e}"),
                );
            }
        };
        if shows(after.minus(before), expected, exact) {
            break;
        }
    }
    let delta = after.minus(before);
    let summary_ok = shows(delta, expected, exact);

    let events = match target.client.usage_events(
        &UsageEventsQuery {
            limit: Some(EVENTS_LIMIT),
        },
        &target.call(),
    ) {
        Ok(events) => events.events,
        Err(e) => return check(NAME, false, format!("reading the usage events failed: {e}")),
    };
    // Credits charged per job, from the events (refunds are negative and cancel a charge).
    let mut charged: HashMap<&str, f64> = HashMap::new();
    let mut own_events = 0;
    for event in &events {
        if let Some(job) = event
            .job_id
            .as_deref()
            .filter(|id| jobs.iter().any(|j| j.id == *id))
        {
            own_events += 1;
            *charged.entry(job).or_default() += event.credits.unwrap_or(0.0);
        }
    }
    let completed: Vec<&OwnJob> = jobs.iter().filter(|j| j.completed).collect();
    let charged_jobs = completed
        .iter()
        .filter(|j| {
            charged
                .get(j.id.as_str())
                .is_some_and(|c| (c - j.credits).abs() < 1e-6)
        })
        .count();
    let charged_credits: f64 = completed
        .iter()
        .filter_map(|j| charged.get(j.id.as_str()))
        .sum();
    // One read shows only the newest events: with more than that, older jobs may be out of it.
    let full_page = events.len() as u32 >= EVENTS_LIMIT;
    let events_ok = charged_jobs == completed.len() || (full_page && charged_jobs > 0);
    let sign = |v: i64| {
        if v >= 0 {
            format!("+{v}")
        } else {
            v.to_string()
        }
    };
    let signf = |v: f64| {
        if v >= 0.0 {
            format!("+{}", number(v))
        } else {
            number(v)
        }
    };
    let rule = if exact {
        "exactly this run's, the sandbox being ours alone"
    } else {
        "at least this run's, as other clients of the key may add theirs"
    };
    let evidence = format!(
        "usage summary ({WINDOW_DAYS} day) before -> after: jobs {} -> {} ({}; this run created {}), completed {} -> {} ({}; {} of this run's completed), credits used {} -> {} ({}; this run's jobs used {}): {rule}{}; usage events: {charged_jobs} of {} completed jobs charged, {} credits, in {own_events} events of this run's jobs{}",
        before.total_jobs,
        after.total_jobs,
        sign(delta.total_jobs),
        expected.total_jobs,
        before.completed_jobs,
        after.completed_jobs,
        sign(delta.completed_jobs),
        expected.completed_jobs,
        number(before.credits_used),
        number(after.credits_used),
        signf(delta.credits_used),
        number(expected.credits_used),
        if read_count > 1 {
            format!(" ({read_count} reads)")
        } else {
            String::new()
        },
        completed.len(),
        number(charged_credits),
        if full_page && charged_jobs < completed.len() {
            format!(" (only the newest {EVENTS_LIMIT} events can be read)")
        } else {
            String::new()
        },
    );
    check(NAME, summary_ok && events_ok, evidence).with_data(json!({
        "window_days": WINDOW_DAYS,
        "exact": exact,
        "before": before.json(),
        "after": after.json(),
        "delta": delta.json(),
        "expected": expected.json(),
        "events": {
            "read": events.len(),
            "of_this_run": own_events,
            "jobs_completed": completed.len(),
            "jobs_charged": charged_jobs,
            "credits": charged_credits,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::{Figures, shows};

    fn figures(total_jobs: i64, completed_jobs: i64, credits_used: f64) -> Figures {
        Figures {
            total_jobs,
            completed_jobs,
            credits_used,
        }
    }

    #[test]
    fn the_sandbox_must_show_exactly_this_runs_usage_a_shared_key_at_least() {
        let expected = figures(13, 12, 168.0);
        assert!(shows(figures(13, 12, 168.0), expected, true));
        assert!(
            !shows(figures(14, 12, 168.0), expected, true),
            "a job too many"
        );
        assert!(
            !shows(figures(13, 12, 160.0), expected, true),
            "credits missing"
        );
        assert!(
            shows(figures(20, 15, 200.0), expected, false),
            "others' jobs too"
        );
        assert!(
            !shows(figures(13, 11, 168.0), expected, false),
            "one not completed"
        );
        assert!(
            !shows(figures(13, 12, 167.0), expected, false),
            "credits missing"
        );
    }
}
