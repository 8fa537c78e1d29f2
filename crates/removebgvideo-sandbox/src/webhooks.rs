//! Webhook deliveries (signed, retried, recorded on the job) and the timers that advance
//! lifecycles so webhooks fire even when nobody polls.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use removebgvideo_core::{Timestamp, webhook};
use serde_json::json;

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

/// Sends deliveries in the background; those of one job go in order.
pub fn send(app: &Arc<Shared>, deliveries: Vec<Delivery>) {
    if deliveries.is_empty() {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        for delivery in deliveries {
            deliver(&app, delivery).await;
        }
    });
}

async fn deliver(app: &Arc<Shared>, delivery: Delivery) {
    let delivery_id = format!("dlv_{:016x}", fastrand::u64(..));
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
        let delivery_id = delivery_id.clone();
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
            return;
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
    }
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
