//! Webhook deliveries (signed, retried, recorded on the job) and the timers that advance
//! lifecycles so webhooks fire even when nobody polls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use removebgvideo_core::{Timestamp, webhook};
use serde_json::json;
use tokio::sync::watch;

use crate::app::Shared;
use crate::lifecycle::Run;
use crate::store::Delivery;

/// Timeout of one delivery attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause between attempts; doubles each time.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The HTTP client deliveries use (plain HTTP: the sandbox only delivers to loopback). It
/// follows no redirect: the loopback rule is checked on the URL the job was given, and a
/// redirect could send the signed event anywhere. A 3xx is a failed delivery. No proxy from the
/// environment (`ALL_PROXY`, `HTTP_PROXY`) either: it would carry loopback deliveries off the
/// machine.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(ATTEMPT_TIMEOUT))
        .max_redirects(0)
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into()
}

/// The delivery task each job last queued, so a job's next deliveries wait for it: two timers
/// firing at once must not let `job.completed` overtake `job.started`.
#[derive(Debug, Default)]
pub struct DeliveryOrder {
    /// Job id -> a handle that closes when that job's last queued task ends.
    last: std::sync::Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// How many jobs' handles are kept before the finished ones are dropped.
const KEPT_HANDLES: usize = 4096;

impl DeliveryOrder {
    /// Queues a task for `jobs`: returns what it must wait for first and the sender it holds
    /// (dropped when it ends).
    fn queue(&self, jobs: &[&str]) -> (Vec<watch::Receiver<()>>, watch::Sender<()>) {
        let (done, handle) = watch::channel(());
        let mut last = self
            .last
            .lock()
            .expect("never poisoned: no panics while held");
        if last.len() > KEPT_HANDLES {
            // A closed handle's task has ended; waiting for it is instant, so it can go.
            last.retain(|_, earlier| earlier.has_changed().is_ok());
        }
        let earlier = jobs
            .iter()
            .filter_map(|job| last.insert((*job).to_owned(), handle.clone()))
            .collect();
        (earlier, done)
    }
}

/// Sends deliveries in the background; those of one job go in order, behind any that job
/// queued before. Called with the state locked, so queueing follows the events' order.
pub fn send(app: &Arc<Shared>, deliveries: Vec<Delivery>) {
    if deliveries.is_empty() {
        return;
    }
    let mut jobs: Vec<&str> = deliveries.iter().map(|d| d.job_id.as_str()).collect();
    jobs.sort_unstable();
    jobs.dedup();
    let (earlier, done) = app.delivery_order.queue(&jobs);
    let app = app.clone();
    tokio::spawn(async move {
        for mut handle in earlier {
            // Returns an error once the earlier task has ended (its sender dropped).
            while handle.changed().await.is_ok() {}
        }
        for delivery in deliveries {
            deliver(&app, delivery).await;
        }
        drop(done);
    });
}

async fn deliver(app: &Arc<Shared>, delivery: Delivery) {
    let delivery_id = format!("dlv_{:016x}", fastrand::u64(..));
    let plan = app.faults.decide_delivery();
    if plan.drop {
        app.store().record_delivery(
            &delivery.job_id,
            &delivery.event,
            json!({ "status": "dropped", "attempts": 0, "fault": "webhook-drop" }),
        );
        return;
    }
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let delivered = attempt_all(app, &delivery, &delivery_id).await;
    if delivered && plan.redeliver {
        let again = attempt_all(app, &delivery, &delivery_id).await;
        let status = if again { "sent" } else { "failed" };
        app.store().record_delivery(
            &delivery.job_id,
            &delivery.event,
            json!({ "status": status, "redelivered": true, "fault": "webhook-redeliver" }),
        );
    }
}

/// Sends one delivery, retried on failure; whether it was answered 2xx.
async fn attempt_all(app: &Arc<Shared>, delivery: &Delivery, delivery_id: &str) -> bool {
    let attempts = app.config.webhook_retries.saturating_add(1);
    let mut pause = FIRST_RETRY_PAUSE;
    for attempt in 1..=attempts {
        let timestamp = webhook::format_timestamp(Timestamp::from(SystemTime::now()));
        let signature = webhook::sign(&app.config.webhook_secret, &timestamp, &delivery.body);
        let (agent, url, body, event) = (
            app.webhook_agent.clone(),
            delivery.url.clone(),
            delivery.body.clone(),
            delivery.event.to_string(),
        );
        let delivery_id = delivery_id.to_owned();
        let outcome = tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .header("Content-Type", "application/json")
                .header(webhook::EVENT_HEADER, &event)
                .header(webhook::DELIVERY_ID_HEADER, &delivery_id)
                .header(webhook::TIMESTAMP_HEADER, &timestamp)
                .header(webhook::SIGNATURE_HEADER, &signature)
                .send(&body[..])
                .map(|response| response.status().as_u16())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let delivered = matches!(outcome, Ok(status) if (200..300).contains(&status));
        let last_status = outcome.as_ref().ok().copied();
        let state = if delivered {
            json!({ "status": "sent", "attempts": attempt, "last_status": last_status })
        } else if attempt == attempts {
            json!({ "status": "failed", "attempts": attempt, "last_status": last_status, "last_error": outcome.err() })
        } else {
            json!({ "status": "retrying", "attempts": attempt, "last_status": last_status })
        };
        app.store()
            .record_delivery(&delivery.job_id, &delivery.event, state);
        if delivered {
            return true;
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
    }
    false
}

/// Wakes up when the run starts processing and when it ends, to advance the state (and fire
/// webhooks) even if no client polls.
pub fn schedule_run(app: &Arc<Shared>, run: &Run) {
    let moments = [Some(run.processing_from()), run.ends_at()];
    for at in moments.into_iter().flatten() {
        let app = app.clone();
        let wait = app.clock.real_until(at);
        tokio::spawn(async move {
            // A hair past the moment, so the virtual clock has surely reached it.
            tokio::time::sleep(wait.saturating_add(Duration::from_millis(1))).await;
            app.advance();
        });
    }
}
