//! Per-call cost of reading one job: the Rust client next to a bare ureq loop (the floor:
//! the same HTTP stack with no retries, validation or typed parsing).

use std::time::Instant;

use removebgvideo::{CallOptions, Client, bridge};
use serde_json::{Value, json};

use crate::stats::{median, round};

type Contender<'a> = (&'static str, Box<dyn FnMut() -> Result<(), String> + 'a>);

pub fn run(
    base_url: &str,
    key: &str,
    job_id: &str,
    calls: usize,
    rounds: usize,
) -> Result<Value, String> {
    let client = Client::builder()
        .api_key(key)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let url = format!("{}/v1/jobs/{job_id}", base_url.trim_end_matches('/'));
    let options = CallOptions::default();
    let check = |got: &str| {
        if got == job_id {
            Ok(())
        } else {
            Err(format!("expected job {job_id}, got {got}"))
        }
    };
    let operation =
        json!({ "operation": "get_job", "arguments": { "job_id": job_id } }).to_string();
    let mut contenders: Vec<Contender> = vec![
        (
            "removebgvideo",
            Box::new(|| {
                let job = client
                    .get_job(job_id, &options)
                    .map_err(|e| e.to_string())?;
                check(&job.id)
            }),
        ),
        // The JSON bridge Python and Node call: the bindings' cost beyond it is theirs.
        (
            "removebgvideo (JSON bridge)",
            Box::new(|| {
                let call = bridge::Options::from_json("{}").map_err(|e| e.to_string())?;
                let text = bridge::call(&client, &operation, call).map_err(|e| e.to_string())?;
                let job: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                check(job["id"].as_str().unwrap_or_default())
            }),
        ),
        // The engine's path (every Node call, and Python's AsyncClient): the same request handed
        // to the scheduler and a worker, its answer delivered from there.
        (
            "removebgvideo (JSON bridge, engine)",
            Box::new(|| {
                let call = bridge::Options::from_json("{}").map_err(|e| e.to_string())?;
                let operation =
                    bridge::Operation::from_json(&operation).map_err(|e| e.to_string())?;
                let (deliver, answer) = std::sync::mpsc::sync_channel(1);
                bridge::submit(
                    &client,
                    operation,
                    call,
                    Box::new(move |outcome| {
                        let _ = deliver.send(outcome);
                    }),
                );
                let text = answer
                    .recv()
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let job: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                check(job["id"].as_str().unwrap_or_default())
            }),
        ),
        (
            "ureq (bare loop)",
            Box::new(|| {
                let text = agent
                    .get(&url)
                    .header("X-Api-Key", key)
                    .call()
                    .map_err(|e| e.to_string())?
                    .body_mut()
                    .read_to_string()
                    .map_err(|e| e.to_string())?;
                let job: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                check(job["id"].as_str().unwrap_or_default())
            }),
        ),
    ];
    for (_, call) in contenders.iter_mut() {
        for _ in 0..calls.min(50) {
            call()?;
        }
    }
    // Rounds interleave the contenders, so noise on the machine hits both alike.
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (i, (_, call)) in contenders.iter_mut().enumerate() {
            let started = Instant::now();
            for _ in 0..calls {
                call()?;
            }
            per_round[i].push(started.elapsed().as_secs_f64() * 1e6 / calls as f64);
        }
    }
    let results: Vec<Value> = contenders
        .iter()
        .zip(&per_round)
        .map(|((name, _), rounds_us)| {
            json!({
                "name": name,
                "median_us": round(median(rounds_us), 1),
                "rounds_us": rounds_us.iter().map(|v| round(*v, 1)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "language": "rust",
        "calls": calls,
        "rounds": rounds,
        "contenders": results,
    }))
}
