//! The client's own drivers in virtual time: a real loopback server whose job moves with the
//! test's [`VirtualClock`], so twenty minutes of polling and a 30 s Retry-After pass without a
//! real pause, and a deadline is reached exactly.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use removebgvideo::core::Timestamp;
use removebgvideo::{CallOptions, Client, ErrorCode, Time, VirtualClock, WaitLimit, WaitOptions};

/// How long the server's job runs, in virtual time.
const PROCESSING: Duration = Duration::from_secs(20 * 60);

/// A server with one job, `job_v`, started at `started`: its progress and status follow the
/// virtual clock. Its first answer is a 429 asking for 30 s. Returns the base URL and the
/// count of requests.
fn job_server(clock: VirtualClock, started: Timestamp, finishes: bool) -> (String, Arc<AtomicU32>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!(
        "http://127.0.0.1:{}",
        server.server_addr().to_ip().unwrap().port()
    );
    let requests = Arc::new(AtomicU32::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let json = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
            if n == 0 {
                let hint = tiny_http::Header::from_bytes("Retry-After", "30").unwrap();
                let body = r#"{"error":{"code":"rate_limited","message":"slow down"}}"#;
                let _ = request.respond(
                    tiny_http::Response::from_string(body)
                        .with_status_code(429)
                        .with_header(hint)
                        .with_header(json),
                );
                continue;
            }
            let elapsed = clock.now().since(started).as_secs_f64() / PROCESSING.as_secs_f64();
            let done = finishes && elapsed >= 1.0;
            let body = serde_json::json!({
                "id": "job_v",
                "status": if done { "completed" } else { "processing" },
                "progress": if finishes { (elapsed.min(1.0) * 100.0).floor() } else { 10.0 },
                "output_url": if done { Some("https://cdn.example.com/out/job_v.webm") } else { None },
            });
            let _ = request
                .respond(tiny_http::Response::from_string(body.to_string()).with_header(json));
        }
    });
    (base, requests)
}

fn client(base: &str, clock: &VirtualClock) -> Client {
    Client::builder()
        .api_key("rbv_test_key")
        .base_url(base)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

#[test]
fn twenty_minutes_of_polling_and_a_long_retry_after_pass_in_virtual_time() {
    let start = Timestamp::from_unix_secs(1_795_000_000);
    let clock = VirtualClock::new(start);
    let (base, requests) = job_server(clock.clone(), start, true);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let options = WaitOptions {
        call: CallOptions {
            on_event: Some(Arc::new(move |e| sink.lock().unwrap().push(e.clone()))),
            ..CallOptions::default()
        },
        ..WaitOptions::default()
    };
    let job = client(&base, &clock).wait("job_v", &options).unwrap();

    assert_eq!(job.status.to_string(), "completed");
    let waited = clock.now().since(start);
    assert!(
        waited >= PROCESSING,
        "the completion is seen after it happens ({waited:?})"
    );
    assert!(
        waited <= PROCESSING + Duration::from_secs(31),
        "and within one capped interval of it ({waited:?})"
    );
    assert_eq!(
        clock.pauses()[0],
        Duration::from_secs(30),
        "Retry-After: 30 is honoured"
    );
    let polls = requests.load(Ordering::SeqCst);
    assert!(
        (3..=60).contains(&polls),
        "progress-aimed polling over 20 minutes takes a few dozen polls at most ({polls})"
    );
    let retries = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, removebgvideo::Event::Retry { .. }))
        .count();
    assert_eq!(retries, 1);
}

#[test]
fn a_wait_ends_at_its_deadline_exactly_in_virtual_time() {
    let start = Timestamp::from_unix_secs(1_795_000_000);
    let clock = VirtualClock::new(start);
    let (base, _) = job_server(clock.clone(), start, false);
    let options = WaitOptions {
        limit: WaitLimit::After(Duration::from_secs(5 * 60)),
        ..WaitOptions::default()
    };
    let error = client(&base, &clock).wait("job_v", &options).unwrap_err();

    assert_eq!(error.code, ErrorCode::WaitTimeout, "{error}");
    assert_eq!(error.job.as_ref().unwrap().status.to_string(), "processing");
    assert_eq!(
        clock.now().since(start),
        Duration::from_secs(5 * 60),
        "the last poll happens at the deadline itself, not after it"
    );
}
