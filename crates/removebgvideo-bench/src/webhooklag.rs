//! `webhook-lag`: how late a wait learns a job's end, and what it costs in requests, with
//! webhooks (a receiver feeding hybrid waits) next to polling alone, for jobs that complete
//! and jobs that fail, on a sandbox at real speed; and with every delivery dropped, where a
//! hybrid wait must do no worse than polling alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use removebgvideo::core::Timestamp;
use removebgvideo::{
    CallOptions, Client, Event, ReceiverOptions, RunOptions, RunRequest, WaitLimit,
};
use removebgvideo_sandbox::{FaultConfig, KeyConfig, Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::stats::{mean, percentile, round};

const KEY: &str = "rbv_webhook_bench";

/// The ways a flow learns of the end.
#[derive(Clone, Copy)]
enum Mode {
    PollingAlone,
    Webhooks,
    WebhooksDropped,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::PollingAlone => "polling alone",
            Mode::Webhooks => "webhooks",
            Mode::WebhooksDropped => "webhooks, every delivery dropped",
        }
    }
}

pub fn run(jobs: usize, seed: u64) -> Result<Value, String> {
    let mut flows = Vec::new();
    for outcome in ["completed", "failed"] {
        for mode in [Mode::PollingAlone, Mode::Webhooks, Mode::WebhooksDropped] {
            flows.push(flow(mode, outcome, jobs, seed)?);
        }
    }
    Ok(json!({ "jobs": jobs, "speed": 1.0, "seed": seed, "flows": flows }))
}

fn flow(mode: Mode, outcome: &str, jobs: usize, seed: u64) -> Result<Value, String> {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1.0,
        keys: vec![KeyConfig {
            key: KEY.into(),
            credits: 1e9,
            rate_per_second: 1000.0,
            burst: 1000,
        }],
        faults: FaultConfig {
            webhook_drop_rate: if matches!(mode, Mode::WebhooksDropped) {
                1.0
            } else {
                0.0
            },
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .map_err(|e| format!("sandbox: {e}"))?;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(sandbox.base_url())
        .build()
        .map_err(|e| e.to_string())?;
    let _receiver = match mode {
        Mode::PollingAlone => None,
        Mode::Webhooks | Mode::WebhooksDropped => Some(
            client
                .listen_for_webhooks(&ReceiverOptions::default(), sandbox.webhook_secret())
                .map_err(|e| e.to_string())?,
        ),
    };
    let dir = std::env::temp_dir().join(format!("rbv-webhook-lag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut random = fastrand::Rng::with_seed(seed);
    // Clips of 3 to 9 s, spread to the hundredth of a second (whole seconds would put every
    // job on one of seven schedules): at real speed each takes about that long to process.
    let durations: Vec<f64> = (0..jobs)
        .map(|_| f64::from(random.u32(300..=900)) / 100.0)
        .collect();
    // When each wait saw the end, by job.
    let seen: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let ended: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = durations
            .iter()
            .enumerate()
            .map(|(n, duration)| {
                let (client, seen, dir) = (&client, seen.clone(), &dir);
                scope.spawn(move || {
                    let scenario = if outcome == "failed" {
                        "&scenario=fail"
                    } else {
                        ""
                    };
                    let mut request = RunRequest::url(format!(
                        "https://example.com/lag-{n}.mp4?duration={duration}{scenario}"
                    ));
                    if outcome == "completed" {
                        request.download_to = Some(dir.join(format!("{n}.webm")));
                        request.overwrite = true;
                    }
                    let call = CallOptions {
                        on_event: Some(Arc::new(move |event: &Event| {
                            if let Event::StatusChanged { job_id, to, .. } = event
                                && to.is_terminal()
                            {
                                seen.lock()
                                    .unwrap()
                                    .entry(job_id.clone())
                                    .or_insert_with(SystemTime::now);
                            }
                        })),
                        ..CallOptions::default()
                    };
                    let options = RunOptions {
                        limit: WaitLimit::After(Duration::from_secs(300)),
                        poll: None,
                        call,
                    };
                    match client.run(&request, &options) {
                        Ok(result) => Ok(result.job.id),
                        Err(error) => error
                            .job
                            .as_ref()
                            .map(|job| job.id.clone())
                            .ok_or_else(|| error.to_string()),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a job thread panicked".into()))
            })
            .collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let ids: Vec<String> = ended.into_iter().collect::<Result<_, _>>()?;
    let truth: HashMap<String, _> = sandbox
        .created_jobs()
        .into_iter()
        .map(|job| (job.id.clone(), job))
        .collect();
    let seen = seen.lock().unwrap();
    let mut lags_ms = Vec::new();
    let mut true_state = 0;
    for id in &ids {
        let job = truth
            .get(id)
            .ok_or_else(|| format!("{id} unknown to the sandbox"))?;
        true_state += usize::from(job.status.as_str() == outcome);
        let ends_at = job.ends_at.ok_or_else(|| format!("{id} never ends"))?;
        let at = seen
            .get(id)
            .ok_or_else(|| format!("{id}: the end was never seen"))?;
        let lag = Timestamp::from(*at).unix_millis() as f64 - ends_at.unix_millis() as f64;
        lags_ms.push(lag.max(0.0));
    }
    let log = sandbox.request_log();
    let requests = log
        .iter()
        .filter(|r| r.path.starts_with("/v1/") || r.path.starts_with("/sandbox/outputs/"))
        .count();
    Ok(json!({
        "mode": mode.name(),
        "outcome": outcome,
        "jobs": ids.len(),
        "true_state": true_state,
        "lag_mean_ms": round(mean(&lags_ms), 1),
        "lag_p50_ms": round(percentile(&lags_ms, 0.5), 1),
        "lag_p95_ms": round(percentile(&lags_ms, 0.95), 1),
        "lag_max_ms": round(percentile(&lags_ms, 1.0), 1),
        "requests_per_job": round(requests as f64 / ids.len() as f64, 2),
    }))
}
