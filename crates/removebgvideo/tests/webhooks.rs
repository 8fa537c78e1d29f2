//! Webhooks end the wait: a client with a receiver runs jobs against the sandbox, whose signed
//! deliveries (dropped, delayed or redelivered by its faults) end the waits; forged and
//! replayed deliveries are refused; every wait ends in the job's true state, read from the
//! sandbox afterwards.

use std::time::{Duration, Instant};

use removebgvideo::core::http::Headers;
use removebgvideo::core::webhook;
use removebgvideo::{
    CallOptions, Client, CreateJobRequest, ErrorCode, JobStatus, PollPolicy, ReceiverOptions,
    RunOptions, RunRequest, WaitOptions, WebhookSettings,
};
use removebgvideo_sandbox::{FaultConfig, Sandbox, SandboxConfig};

fn sandbox(speed: f64, faults: FaultConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed,
        faults,
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn client_of(sandbox: &Sandbox, poll: PollPolicy) -> Client {
    Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .poll_policy(poll)
        .build()
        .unwrap()
}

/// Polls alone would take a read every 200 ms or so: a wait that sends none learned the end
/// from a delivery.
fn quick_polls() -> PollPolicy {
    PollPolicy {
        initial_interval: Duration::from_millis(200),
        factor: 1.0,
        max_interval: Duration::from_millis(200),
        jitter: 0.0,
        min_interval: Duration::from_millis(20),
        progress_eta: false,
        ..PollPolicy::default()
    }
}

/// The API requests a job cost, from the sandbox's own log.
fn requests_of(sandbox: &Sandbox, job_id: &str) -> Vec<String> {
    sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.path.contains(job_id) || (r.method == "POST" && r.path == "/v1/jobs"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn true_status(client: &Client, job_id: &str) -> JobStatus {
    client
        .get_job(job_id, &CallOptions::default())
        .unwrap()
        .status
}

fn within(bound: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < bound, "not within {bound:?}");
        std::thread::yield_now();
    }
}

#[test]
fn a_run_ends_on_its_delivery_with_one_confirming_read_on_success_and_on_failure() {
    let sandbox = sandbox(20.0, FaultConfig::default());
    let client = client_of(&sandbox, quick_polls());
    let receiver = client
        .listen_for_webhooks(&ReceiverOptions::default(), sandbox.webhook_secret())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut request = RunRequest::url("https://cdn.example.com/w.mp4?duration=20".to_owned());
    request.download_to = Some(dir.path().join("w.webm"));
    let result = client.run(&request, &RunOptions::default()).unwrap();
    assert_eq!(result.job.status, JobStatus::Completed);
    assert_eq!(
        result.job.webhook_url.as_deref(),
        Some(receiver.url()),
        "the job was created with the receiver's URL"
    );
    let job_id = result.job.id.clone();
    let sent = requests_of(&sandbox, &job_id);
    let reads = sent
        .iter()
        .filter(|r| r.starts_with("GET /v1/jobs/"))
        .count();
    assert_eq!(reads, 1, "one confirming read, no polls: {sent:?}");
    assert_eq!(
        sent.len(),
        3,
        "create, the confirming read, the download: {sent:?}"
    );
    // Counted once its answer is decided, a moment after it fed the wait.
    within(Duration::from_secs(5), || receiver.stats().accepted >= 1);

    // A failure ends the wait the same way: create and one read.
    let accepted = client
        .create_job(
            &CreateJobRequest::new("https://cdn.example.com/f.mp4?duration=20&scenario=fail"),
            &CallOptions::default(),
        )
        .unwrap();
    let error = client
        .wait(&accepted.id, &WaitOptions::default())
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::JobFailed);
    assert_eq!(true_status(&client, &accepted.id), JobStatus::Failed);
    let sent = requests_of(&sandbox, &accepted.id);
    assert_eq!(
        sent.iter()
            .filter(|r| r.starts_with("GET /v1/jobs/"))
            .count(),
        2,
        "the confirming read, and the test's own: {sent:?}"
    );
}

#[test]
fn with_every_delivery_lost_a_wait_polls_as_if_alone_and_ends_in_the_true_state() {
    let sandbox = sandbox(
        20.0,
        FaultConfig {
            webhook_drop_rate: 1.0,
            ..FaultConfig::default()
        },
    );
    let client = client_of(&sandbox, quick_polls());
    let receiver = client
        .listen_for_webhooks(&ReceiverOptions::default(), sandbox.webhook_secret())
        .unwrap();
    for scenario in ["", "&scenario=fail"] {
        let accepted = client
            .create_job(
                &CreateJobRequest::new(format!(
                    "https://cdn.example.com/lost.mp4?duration=60{scenario}"
                )),
                &CallOptions::default(),
            )
            .unwrap();
        let ended = client.wait(&accepted.id, &WaitOptions::default());
        let truth = true_status(&client, &accepted.id);
        match ended {
            Ok(job) => assert_eq!(
                (job.status, truth),
                (JobStatus::Completed, JobStatus::Completed)
            ),
            Err(error) => {
                assert_eq!(error.code, ErrorCode::JobFailed);
                assert_eq!(truth, JobStatus::Failed);
            }
        }
        let polls = requests_of(&sandbox, &accepted.id)
            .iter()
            .filter(|r| r.starts_with("GET"))
            .count();
        assert!(polls >= 3, "it polled as a wait alone does: {polls}");
    }
    assert_eq!(receiver.stats().accepted, 0, "nothing was delivered");
}

#[test]
fn redelivered_events_are_taken_once_and_late_ones_after_the_end_change_nothing() {
    let sandbox = sandbox(
        20.0,
        FaultConfig {
            webhook_redeliver_rate: 1.0,
            ..FaultConfig::default()
        },
    );
    let client = client_of(&sandbox, quick_polls());
    let receiver = client
        .listen_for_webhooks(&ReceiverOptions::default(), sandbox.webhook_secret())
        .unwrap();
    let accepted = client
        .create_job(
            &CreateJobRequest::new("https://cdn.example.com/twice.mp4?duration=10"),
            &CallOptions::default(),
        )
        .unwrap();
    let job = client.wait(&accepted.id, &WaitOptions::default()).unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    // job.started and job.completed, each sent twice with one delivery id.
    within(Duration::from_secs(10), || receiver.stats().duplicates >= 2);
    assert_eq!(receiver.stats().accepted, 2);

    // Late: deliveries held back past the end, which a quick poll sees first.
    let late = sandbox_late();
    let late_client = client_of(&late, quick_polls());
    let receiver = late_client
        .listen_for_webhooks(&ReceiverOptions::default(), late.webhook_secret())
        .unwrap();
    let accepted = late_client
        .create_job(
            &CreateJobRequest::new("https://cdn.example.com/late.mp4?duration=4"),
            &CallOptions::default(),
        )
        .unwrap();
    let job = late_client
        .wait(&accepted.id, &WaitOptions::default())
        .unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(
        receiver.stats().accepted,
        0,
        "the end was seen by a poll first"
    );
    within(Duration::from_secs(10), || receiver.stats().accepted >= 2);
    // Taken and answered, and nothing waits for them: a new wait still reads the truth.
    let again = late_client
        .wait(&accepted.id, &WaitOptions::default())
        .unwrap();
    assert_eq!(again.status, JobStatus::Completed);
}

fn sandbox_late() -> Sandbox {
    sandbox(
        20.0,
        FaultConfig {
            webhook_delay_rate: 1.0,
            webhook_delay_ms: 1500,
            ..FaultConfig::default()
        },
    )
}

/// Posts a delivery to the receiver as anyone who can reach its port could.
fn post(url: &str, headers: &Headers, body: &[u8]) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(url);
    for (name, value) in headers.iter() {
        request = request.header(name, value);
    }
    request.send(body).unwrap().status().as_u16()
}

fn signed(secret: &str, at: removebgvideo::core::Timestamp, body: &[u8], id: &str) -> Headers {
    let timestamp = webhook::format_timestamp(at);
    let mut headers = Headers::new();
    headers.push(webhook::EVENT_HEADER, "job.completed");
    headers.push(webhook::DELIVERY_ID_HEADER, id);
    headers.push(
        webhook::SIGNATURE_HEADER,
        webhook::sign(secret, &timestamp, body),
    );
    headers.push(webhook::TIMESTAMP_HEADER, timestamp);
    headers
}

#[test]
fn forged_and_replayed_deliveries_are_refused_and_never_end_a_wait() {
    // A slow job: it is still processing when the forgeries come.
    let sandbox = sandbox(2.0, FaultConfig::default());
    let client = client_of(&sandbox, quick_polls());
    let receiver = client
        .listen_for_webhooks(&ReceiverOptions::default(), sandbox.webhook_secret())
        .unwrap();
    let accepted = client
        .create_job(
            &CreateJobRequest::new("https://cdn.example.com/forged.mp4?duration=6"),
            &CallOptions::default(),
        )
        .unwrap();
    let body = serde_json::json!({
        "event": "job.completed",
        "data": { "id": accepted.id, "status": "completed", "output_url": "https://evil.example/o" },
    })
    .to_string();
    let now = removebgvideo::core::Timestamp::from(std::time::SystemTime::now());
    let forged = signed("not-the-secret", now, body.as_bytes(), "dlv_forged");
    assert_eq!(post(receiver.url(), &forged, body.as_bytes()), 400);
    let long_ago = removebgvideo::core::Timestamp::from_unix_secs(now.unix_millis() / 1000 - 600);
    let replayed = signed(
        sandbox.webhook_secret(),
        long_ago,
        body.as_bytes(),
        "dlv_old",
    );
    assert_eq!(post(receiver.url(), &replayed, body.as_bytes()), 400);
    let mut tampered = signed(sandbox.webhook_secret(), now, b"{}", "dlv_tampered");
    tampered.push("X-Extra", "1");
    assert_eq!(post(receiver.url(), &tampered, body.as_bytes()), 400);
    assert_eq!(receiver.stats().rejected, 3);
    let job = client.wait(&accepted.id, &WaitOptions::default()).unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_ne!(
        job.output_url.as_deref(),
        Some("https://evil.example/o"),
        "the forged job never reached the wait"
    );
}

#[test]
fn a_client_can_take_deliveries_from_a_route_of_its_own() {
    // The application's own server receives; the client only verifies and feeds its waits.
    let sandbox = sandbox(20.0, FaultConfig::default());
    let client = client_of(&sandbox, quick_polls());
    let forwarder = client.clone();
    let app_server = removebgvideo::WebhookReceiver::start(
        &ReceiverOptions::default(),
        std::sync::Arc::new(move |headers: &Headers, body: &[u8]| {
            forwarder.receive_webhook(headers, body)
        }),
    )
    .unwrap();
    client
        .use_webhooks(WebhookSettings::new(
            app_server.url(),
            sandbox.webhook_secret(),
        ))
        .unwrap();
    let accepted = client
        .create_job(
            &CreateJobRequest::new("https://cdn.example.com/route.mp4?duration=10"),
            &CallOptions::default(),
        )
        .unwrap();
    let job = client.wait(&accepted.id, &WaitOptions::default()).unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    let reads = requests_of(&sandbox, &accepted.id)
        .iter()
        .filter(|r| r.starts_with("GET"))
        .count();
    assert_eq!(reads, 1, "the confirming read only");
    let refused = client.handle_webhook(&Headers::new(), b"{}").unwrap_err();
    assert_eq!(refused.code, ErrorCode::WebhookMissingHeader);
}

#[test]
fn the_receiver_answers_every_delivery_of_a_thousand_jobs_at_once() {
    // A key without a practical rate limit, and a clock fast enough that every job starts and
    // ends within moments of its creation: the deliveries come as fast as the sandbox sends.
    const JOBS: usize = 1000;
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        keys: vec![removebgvideo_sandbox::KeyConfig {
            key: "rbv_webhook_flood".into(),
            credits: 1e9,
            rate_per_second: 1e6,
            burst: 1_000_000,
        }],
        ..SandboxConfig::default()
    })
    .unwrap();
    let client = Client::builder()
        .api_key("rbv_webhook_flood")
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    let receiver = client
        .listen_for_webhooks(&ReceiverOptions::default(), sandbox.webhook_secret())
        .unwrap();
    let started = Instant::now();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let client = &client;
                scope.spawn(move || {
                    (worker..JOBS)
                        .step_by(8)
                        .map(|n| {
                            let url = format!("https://cdn.example.com/flood-{n}.mp4?duration=2");
                            client
                                .create_job(&CreateJobRequest::new(url), &CallOptions::default())
                                .unwrap()
                                .id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    // job.started and job.completed for each.
    let expected = 2 * JOBS as u64;
    within(Duration::from_secs(120), || {
        receiver.stats().accepted >= expected
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = receiver.stats();
    println!(
        "{} deliveries of {JOBS} jobs taken in {elapsed:.2} s: {:.0} per second; {} duplicates, {} refused",
        stats.accepted,
        stats.accepted as f64 / elapsed,
        stats.duplicates,
        stats.rejected
    );
    assert_eq!(stats.accepted, expected);
    assert_eq!(stats.rejected, 0);
    // The sandbox's record: every delivery answered 2xx on its first attempt.
    for id in &ids {
        let job = client.get_job(id, &CallOptions::default()).unwrap();
        let events = job.webhook_events.expect("the job records its deliveries");
        let states: Vec<&serde_json::Value> = events.as_object().unwrap().values().collect();
        assert_eq!(states.len(), 2, "{id}: {events}");
        for state in states {
            assert_eq!(state["status"], "sent", "{id}: {events}");
            assert_eq!(state["attempts"], 1, "{id}: {events}");
        }
    }
}
