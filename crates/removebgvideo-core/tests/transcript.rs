//! A whole run recorded from the machines the client runs (`RunMachine` and the call and wait
//! machines inside it), against a scripted server in virtual time, and snapshotted: any change
//! to a retry, backoff, polling or sequencing decision shows up as a reviewed diff of this
//! transcript. The loop below is the whole of a driver: it moves requests and time, nothing else.

use std::collections::VecDeque;
use std::time::Duration;

use removebgvideo_core::http::{Headers, HttpRequest};
use removebgvideo_core::machine::{
    IdempotencySupport, Machine, RunMachine, RunSource, RunSpec, Shared, Transmit,
};
use removebgvideo_core::{
    ApiKey, Background, CreateJobRequest, Error, FixedDraws, Job, Model, PollPolicy,
    RequestBuilder, RetryBudget, RetryPolicy, StartJobRequest, Timestamp,
};
use serde_json::{Value, json};

/// A fault the scripted server answers with instead of serving a request.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Unavailable,
    RateLimited { retry_after_secs: u64 },
}

/// A tiny scripted stand-in for the API: one job, processing for a fixed time.
#[derive(Debug)]
struct ScriptedServer {
    faults: VecDeque<(&'static str, Fault)>,
    job: Option<Job>,
    started_at: Option<Timestamp>,
    processing_time: Duration,
    requests: u32,
}

impl ScriptedServer {
    fn respond(&mut self, request: &HttpRequest, now: Timestamp) -> (u16, Headers, Vec<u8>) {
        self.requests += 1;
        let mut headers: Headers = [("X-Request-Id", format!("req_{:03}", self.requests))]
            .into_iter()
            .collect();
        let operation = request.operation.name();
        if self.faults.front().is_some_and(|(op, _)| *op == operation) {
            let (_, fault) = self.faults.pop_front().unwrap();
            return match fault {
                Fault::Unavailable => (
                    503,
                    headers,
                    br#"{"error":{"code":"internal_error","message":"try again"}}"#.to_vec(),
                ),
                Fault::RateLimited { retry_after_secs } => {
                    headers.push("Retry-After", retry_after_secs.to_string());
                    (
                        429,
                        headers,
                        br#"{"error":{"code":"rate_limited","message":"slow down"}}"#.to_vec(),
                    )
                }
            };
        }
        let body = match operation {
            "create_job" => {
                self.job = Some(Job::new("job_sim_1", "created".into()));
                json!({"success": true, "id": "job_sim_1", "status": "created", "message": "Job created"})
            }
            "start_job" => {
                self.started_at = Some(now);
                json!({"success": true, "id": "job_sim_1", "status": "processing", "message": "Job started"})
            }
            _ => {
                let job = self.job.as_mut().expect("the job was created");
                if let Some(started) = self.started_at {
                    let elapsed =
                        now.since(started).as_secs_f64() / self.processing_time.as_secs_f64();
                    job.progress = Some((elapsed.min(1.0) * 100.0).floor());
                    job.status = if elapsed >= 1.0 {
                        "completed".into()
                    } else {
                        "processing".into()
                    };
                    if elapsed >= 1.0 {
                        job.output_url = Some("https://cdn.example.com/out/job_sim_1.webm".into());
                    }
                }
                serde_json::to_value(&*job).unwrap()
            }
        };
        (200, headers, serde_json::to_vec(&body).unwrap())
    }
}

/// Drives `machine` against `server` in virtual time, recording every request, answer, event
/// and the outcome.
fn drive<M: Machine>(
    machine: &mut M,
    server: &mut ScriptedServer,
    mut now: Timestamp,
    log: &mut Vec<Value>,
) -> Result<M::Output, Error> {
    let mut record = |at: Timestamp, mut entry: Value| {
        entry["at_ms"] = json!(at.unix_millis());
        log.push(entry);
    };
    loop {
        while let Some(event) = machine.poll_event() {
            record(now, json!({"event": "machine", "emitted": event}));
        }
        if let Some(outcome) = machine.poll_outcome() {
            return outcome;
        }
        if let Some(transmit) = machine.poll_transmit(now) {
            let Transmit::Api {
                request, timeout, ..
            } = transmit
            else {
                panic!("this run downloads nothing");
            };
            record(
                now,
                json!({"event": "request", "operation": request.operation.name(),
                       "idempotency_key": request.idempotency_key, "timeout_ms": timeout.as_millis() as u64}),
            );
            let (status, headers, body) = server.respond(&request, now);
            record(
                now,
                json!({"event": "response", "status": status, "request_id": headers.get("X-Request-Id")}),
            );
            machine.handle_response(status, headers, &body, now);
            continue;
        }
        let at = machine
            .poll_timeout()
            .expect("a machine without an outcome has something to send or to wait for");
        now = now.max(at);
        machine.handle_timeout(now);
    }
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn emitted<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "machine" && e["emitted"]["type"] == kind)
        .map(|e| &e["emitted"])
        .collect()
}

/// Runs create (after a 503), start (after a 429 with Retry-After) and a wait (one poll hitting
/// a 503) to completion; returns the transcript.
fn transcript() -> Vec<Value> {
    let mut server = ScriptedServer {
        faults: VecDeque::from([
            ("create_job", Fault::Unavailable),
            (
                "start_job",
                Fault::RateLimited {
                    retry_after_secs: 2,
                },
            ),
            ("get_job", Fault::Unavailable),
        ]),
        job: None,
        started_at: None,
        processing_time: Duration::from_secs(20),
        requests: 0,
    };
    let shared = Shared::new(
        RetryPolicy::default(),
        RetryBudget::default(),
        Duration::from_secs(60),
        Duration::from_secs(60),
        IdempotencySupport::Honoured,
        Box::new(FixedDraws::new(vec![0.5, 0.25, 0.75])),
    );
    let mut job = CreateJobRequest::new("https://cdn.removebgvideo.com/uploads/your-video.mp4")
        .with_background(&Background::Transparent);
    job.model = Some(Model::Original);
    let start = StartJobRequest {
        model: Some(Model::Pro),
        text_prompt: Some("person, clothing accessories, glowing ring".into()),
        ..Default::default()
    }
    .with_background(&Background::Transparent);
    let spec = RunSpec {
        source: RunSource::Url(job.video_url.clone()),
        job,
        start: Some(start),
        download: false,
        run_key: "run-1".into(),
        poll: PollPolicy::default(),
        max_retries: None,
        timeout: None,
        headers: Vec::new(),
        webhook_fallback: None,
    };
    let now = Timestamp::from_unix_secs(1_795_000_000);
    let deadline = now.plus(Duration::from_secs(600));
    let builder = RequestBuilder::new(ApiKey::new("demo_key"), "removebgvideo-transcript");
    let mut run = RunMachine::new(
        spec,
        builder,
        "https://api.removebgvideo.com",
        &shared,
        Some(deadline),
    )
    .expect("a valid run");
    let mut log = Vec::new();
    let output = drive(&mut run, &mut server, now, &mut log).expect("the run completes");
    log.push(
        json!({"event": "outcome", "job_id": output.job.id, "status": output.job.status,
                    "output_url": output.job.output_url, "budget_tokens": shared.budget_tokens(),
                    "at_ms": log.last().map(|e| e["at_ms"].clone())}),
    );
    log
}

#[test]
fn a_run_transcript_from_the_machines_the_client_runs() {
    let events = transcript();

    let reasons: Vec<&str> = emitted(&events, "retry")
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["HTTP 503", "HTTP 429", "HTTP 503"]);
    assert_eq!(
        emitted(&events, "retry")[1]["delay_ms"],
        2000,
        "Retry-After: 2 is honoured exactly"
    );

    let keys: Vec<&Value> = events_of(&events, "request")
        .into_iter()
        .filter(|r| r["operation"] != "get_job")
        .map(|r| &r["idempotency_key"])
        .collect();
    assert_eq!(
        keys,
        [
            &json!("run-1:create"),
            &json!("run-1:create"),
            &json!("run-1:start"),
            &json!("run-1:start")
        ],
        "each step's key derives from the run key, and a retry reuses it"
    );

    let times: Vec<u64> = events.iter().filter_map(|e| e["at_ms"].as_u64()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "virtual time never runs backwards"
    );
    let started = events_of(&events, "request")
        .iter()
        .rfind(|r| r["operation"] == "start_job")
        .unwrap()["at_ms"]
        .as_u64()
        .unwrap();
    let completed = emitted(&events, "status_changed")
        .into_iter()
        .zip(
            events
                .iter()
                .filter(|e| e["emitted"]["type"] == "status_changed"),
        )
        .find(|(change, _)| change["to"] == "completed")
        .map(|(_, entry)| entry["at_ms"].as_u64().unwrap())
        .expect("the completion is seen");
    assert!(
        completed - started >= 20_000,
        "completion is seen no earlier than the 20 s of processing"
    );
    assert!(
        completed - started <= 30_000,
        "and within one capped interval of it"
    );
    assert_eq!(events.last().unwrap()["status"], "completed");

    insta::assert_json_snapshot!("run_transcript", events);
}
