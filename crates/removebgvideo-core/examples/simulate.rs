//! A whole job in virtual time, driven only by the core's decisions: create (after a 503),
//! start (after a 429 with Retry-After), polls (one hitting a 503) until completion.
//!
//! Nothing sleeps: the clock is a number the loop advances. The transcript it prints is the
//! one `tests/transcript.rs` snapshots. Run it with `cargo run -p removebgvideo-core --example simulate`.

use std::collections::VecDeque;
use std::time::Duration;

use removebgvideo_core::http::{Headers, HttpRequest, ResponseBody, parse_response};
use removebgvideo_core::retry::{self, Outcome, Replay};
use removebgvideo_core::{
    ApiKey, Background, CreateJobRequest, Error, FixedDraws, Job, JobAccepted, Model, PollPolicy,
    PollStep, Poller, RequestBuilder, RetryBudget, RetryDecision, RetryPolicy, StartJobRequest,
    Timestamp,
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

/// The simulation's state: a virtual clock, the client-side decisions and the transcript.
struct Simulation {
    now: Timestamp,
    server: ScriptedServer,
    policy: RetryPolicy,
    budget: RetryBudget,
    random: FixedDraws,
    events: Vec<Value>,
}

impl Simulation {
    fn log(&mut self, mut event: Value) {
        event["at_ms"] = json!(self.now.unix_millis());
        self.events.push(event);
    }

    /// Sends a request, retrying as the core decides, as the real client does.
    fn send<T: ResponseBody>(&mut self, request: &HttpRequest) -> Result<T, Error> {
        let mut retries_done = 0;
        loop {
            self.log(json!({"event": "request", "operation": request.operation.name(),
                            "attempt": retries_done + 1, "idempotency_key": request.idempotency_key}));
            let (status, headers, body) = self.server.respond(request, self.now);
            self.log(json!({"event": "response", "status": status, "request_id": headers.get("X-Request-Id")}));
            let error = match parse_response::<T>(status, &headers, &body, self.now) {
                Ok(value) => {
                    self.budget.on_success();
                    return Ok(value);
                }
                Err(error) => error,
            };
            let outcome = Outcome::Status {
                status,
                code: &error.code,
                headers: &headers,
            };
            match retry::decide(
                &self.policy,
                &mut self.budget,
                retries_done,
                &outcome,
                Replay::Safe,
                self.now,
                &mut self.random,
            ) {
                RetryDecision::Retry { delay, reason } => {
                    self.log(json!({"event": "retry", "attempt": retries_done + 1, "delay_ms": delay.as_millis() as u64,
                                    "reason": reason.to_string(), "request_id": error.request_id}));
                    self.now = self.now.plus(delay);
                    retries_done += 1;
                }
                RetryDecision::GiveUp { .. } => return Err(error),
            }
        }
    }
}

/// Runs the whole flow and returns its transcript.
pub fn simulate() -> Vec<Value> {
    let server = ScriptedServer {
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
    let mut sim = Simulation {
        now: Timestamp::from_unix_secs(1_795_000_000),
        server,
        policy: RetryPolicy::default(),
        budget: RetryBudget::default(),
        random: FixedDraws::new(vec![0.5, 0.25, 0.75]),
        events: Vec::new(),
    };
    let builder = RequestBuilder::new(ApiKey::new("demo_key"), "removebgvideo-simulation");
    let mut create = CreateJobRequest::new("https://cdn.removebgvideo.com/uploads/your-video.mp4")
        .with_background(&Background::Transparent);
    create.model = Some(Model::Original);
    create.auto_start = Some(false);
    let request = builder
        .create_job(&create, "idem-create-1")
        .expect("a valid create");
    let accepted: JobAccepted = sim.send(&request).expect("create succeeds after a retry");
    sim.log(json!({"event": "created", "job_id": accepted.id, "status": accepted.status}));

    let start = StartJobRequest {
        model: Some(Model::Pro),
        text_prompt: Some("person, clothing accessories, glowing ring".into()),
        ..Default::default()
    }
    .with_background(&Background::Transparent);
    let request = builder
        .start_job(&accepted.id, &start, "idem-start-1")
        .expect("a valid start");
    let started: JobAccepted = sim
        .send(&request)
        .expect("start succeeds after the rate limit");
    sim.log(json!({"event": "started", "job_id": started.id, "status": started.status}));

    let deadline = sim.now.plus(Duration::from_secs(600));
    let mut poller = Poller::new(PollPolicy::default(), Some(deadline));
    let get = builder.get_job(&accepted.id).expect("a valid id");
    loop {
        let job: Job = match sim.send(&get) {
            Ok(job) => job,
            Err(error) => match poller.on_error(error, sim.now, &mut sim.random) {
                Ok(PollStep::PollAt(at)) => {
                    sim.now = at;
                    continue;
                }
                Ok(_) => unreachable!("an error never ends a wait with a job"),
                Err(error) => panic!("the wait failed: {error}"),
            },
        };
        let (status, progress) = (job.status.clone(), job.progress);
        let observed = poller.on_job(job, sim.now, None, &mut sim.random);
        sim.log(json!({"event": "observed", "status": status, "progress": progress, "verdict": observed.verdict}));
        match observed.step {
            PollStep::PollAt(at) => sim.now = at,
            PollStep::Completed(job) => {
                sim.log(json!({"event": "completed", "job_id": job.id, "output_url": job.output_url, "polls": poller.polls(),
                               "transitions": poller.tracker().log().len()}));
                break;
            }
            other => panic!("the simulated job should complete, got {other:?}"),
        }
    }
    sim.log(json!({"event": "budget", "tokens": sim.budget.tokens()}));
    sim.events
}

#[allow(dead_code)] // Also compiled into the transcript test, which has its own main.
fn main() {
    println!("A simulated job in virtual time (no network, no sleeping):\n");
    let events = simulate();
    let origin = events
        .first()
        .and_then(|e| e["at_ms"].as_u64())
        .unwrap_or(0);
    for event in &events {
        let at = event["at_ms"].as_u64().unwrap_or(origin) - origin;
        let kind = event["event"].as_str().unwrap_or("");
        let details: Vec<String> = event
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| !v.is_null() && *k != "event" && *k != "at_ms")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "t+{:>5.1}s  {kind:<9} {}",
            at as f64 / 1000.0,
            details.join(" ")
        );
    }
}
