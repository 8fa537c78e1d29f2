//! The client against the sandbox over real loopback HTTP: every endpoint, failure branches,
//! retries, idempotency, waits, downloads and runs.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use removebgvideo::{
    CallOptions, CancelToken, Client, CreateJobRequest, DownloadOptions, ErrorCode, ErrorKind,
    Event, IdempotencySupport, JobStatus, ListJobsQuery, PollPolicy, RetryPolicy, RunOptions,
    RunRequest, StartJobRequest, UsageEventsQuery, UsageSummaryQuery, WaitLimit, WaitOptions,
};
use removebgvideo_sandbox::{FAULT_HEADER, Sandbox, SandboxConfig, output_bytes};

const VIDEO: &str = "https://cdn.removebgvideo.com/uploads/your-video.mp4";

fn fast_poll() -> PollPolicy {
    PollPolicy {
        initial_interval: Duration::from_millis(20),
        factor: 1.5,
        max_interval: Duration::from_millis(200),
        jitter: 0.2,
        min_interval: Duration::from_millis(10),
        max_hint: Duration::from_secs(2),
        max_eta_interval: Duration::from_millis(200),
        ..PollPolicy::default()
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        rate_limit_base_delay: Duration::from_millis(20),
        rate_limit_max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
    }
}

fn start(config: SandboxConfig) -> Sandbox {
    common::captured_logs();
    Sandbox::start(config).expect("the sandbox starts")
}

fn fast_sandbox() -> Sandbox {
    start(SandboxConfig {
        speed: 1000.0,
        ..SandboxConfig::default()
    })
}

fn client(sandbox: &Sandbox, key: &str) -> Client {
    Client::builder()
        .api_key(key)
        .base_url(sandbox.base_url())
        .poll_policy(fast_poll())
        .retry_policy(fast_retry())
        .build()
        .expect("a valid client")
}

fn with_fault(plan: &str) -> CallOptions {
    CallOptions {
        headers: vec![(FAULT_HEADER.into(), plan.into())],
        ..CallOptions::default()
    }
}

fn collect_events() -> (Arc<Mutex<Vec<Event>>>, CallOptions) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let options = CallOptions {
        on_event: Some(Arc::new(move |e: &Event| {
            sink.lock().unwrap().push(e.clone())
        })),
        ..CallOptions::default()
    };
    (events, options)
}

fn requests_to(sandbox: &Sandbox, path_prefix: &str) -> usize {
    sandbox
        .request_log()
        .iter()
        .filter(|r| r.path.starts_with(path_prefix))
        .count()
}

fn job_total(client: &Client) -> u64 {
    client
        .list_jobs(
            &ListJobsQuery {
                limit: Some(100),
                ..Default::default()
            },
            &CallOptions::default(),
        )
        .unwrap()
        .total
        .unwrap()
}

/// A fresh folder for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rbv-client-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_output(job_id: &str, path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    let mut expected = vec![0u8; bytes.len()];
    output_bytes(job_id, 0, &mut expected);
    assert!(
        !bytes.is_empty() && bytes == expected,
        "the output of {job_id} is intact"
    );
}

#[test]
fn every_endpoint_succeeds() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let none = CallOptions::default();
    assert_eq!(client.health(&none).unwrap().status.as_deref(), Some("ok"));

    let dir = temp_dir("endpoints");
    let file = dir.join("clip.mp4");
    std::fs::write(&file, vec![5u8; 300_000]).unwrap();
    let (events, with_events) = collect_events();
    let uploaded = client.upload(&file, &with_events).unwrap();
    assert_eq!(uploaded.size, 300_000);
    assert!(events.lock().unwrap().iter().any(
        |e| matches!(e, Event::Upload { bytes_done, bytes_total } if bytes_done == bytes_total)
    ));

    let draft = CreateJobRequest {
        auto_start: Some(false),
        ..CreateJobRequest::new(uploaded.video_url.clone())
    };
    let created = client.create_job(&draft, &none).unwrap();
    assert_eq!(created.status, JobStatus::Created);
    assert!(created.request_id.is_some());
    let start = StartJobRequest {
        model: Some("pro".into()),
        text_prompt: Some("the dancer".into()),
        ..Default::default()
    };
    client.start_job(&created.id, &start, &none).unwrap();
    let (events, call) = collect_events();
    let job = client
        .wait(
            &created.id,
            &WaitOptions {
                call,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    let statuses: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::StatusChanged { to, .. } => Some(to.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.last().map(String::as_str), Some("completed"));

    assert_eq!(client.get_job(&created.id, &none).unwrap().id, created.id);
    assert_eq!(
        client
            .list_jobs(&ListJobsQuery::default(), &none)
            .unwrap()
            .jobs
            .len(),
        1
    );
    assert_eq!(
        client
            .usage_summary(&UsageSummaryQuery { days: Some(7) }, &none)
            .unwrap()
            .completed_jobs,
        1
    );
    assert!(
        !client
            .usage_events(&UsageEventsQuery { limit: Some(5) }, &none)
            .unwrap()
            .events
            .is_empty()
    );
    assert!(
        client
            .legacy_download(&created.id, &none)
            .unwrap()
            .download_url
            .starts_with(sandbox.base_url())
    );

    let target = dir.join("out.webm");
    let download = client
        .download(&created.id, &target, &DownloadOptions::default())
        .unwrap();
    assert_output(&created.id, &target);
    assert_eq!(download.bytes, std::fs::metadata(&target).unwrap().len());
    let again = client
        .download(&created.id, &target, &DownloadOptions::default())
        .unwrap_err();
    assert_eq!(
        again.code,
        ErrorCode::DownloadFailed,
        "an existing file is not replaced silently"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn authentication_credit_and_not_found_errors_are_typed_and_not_retried() {
    let sandbox = fast_sandbox();
    let wrong = client(&sandbox, "rbv_wrong_key_123");
    let error = wrong.get_job("job_1", &CallOptions::default()).unwrap_err();
    assert_eq!(
        (error.code.clone(), error.kind(), error.status),
        (
            ErrorCode::InvalidApiKey,
            ErrorKind::Authentication,
            Some(401)
        )
    );
    assert!(error.request_id.is_some());
    assert_eq!(
        requests_to(&sandbox, "/v1/jobs/job_1"),
        1,
        "a 401 is not retried"
    );

    let broke = client(&sandbox, sandbox.no_credits_key());
    let error = broke
        .create_job(&CreateJobRequest::new(VIDEO), &CallOptions::default())
        .unwrap_err();
    assert_eq!(
        (error.code.clone(), error.status),
        (ErrorCode::InsufficientCredits, Some(402))
    );
    assert!(
        error.idempotency_key.is_some(),
        "a failed POST says which key it used"
    );

    let demo = client(&sandbox, sandbox.demo_key());
    let error = demo
        .get_job("job_missing", &CallOptions::default())
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.status),
        (ErrorKind::NotFound, Some(404))
    );

    let error = Client::builder()
        .base_url(sandbox.base_url())
        .api_key("")
        .build()
        .unwrap_err();
    assert_eq!(error.problems[0].path, "/api_key");
}

#[test]
fn rate_limits_and_server_errors_are_retried_then_succeed() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let (events, mut options) = collect_events();
    options.headers = vec![(FAULT_HEADER.into(), "status=429; times=1; id=rl".into())];
    let started = Instant::now();
    client
        .list_jobs(&ListJobsQuery::default(), &options)
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    options.headers = vec![(FAULT_HEADER.into(), "status=503; times=2; id=5xx".into())];
    client
        .list_jobs(&ListJobsQuery::default(), &options)
        .unwrap();
    let reasons: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retry { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["HTTP 429", "HTTP 503", "HTTP 503"]);

    let error = client
        .list_jobs(
            &ListJobsQuery::default(),
            &with_fault("status=502; times=9; id=always"),
        )
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.status),
        (ErrorKind::Server, Some(502)),
        "after 3 retries the last error comes back"
    );
    assert_eq!(
        sandbox
            .request_log()
            .iter()
            .filter(|r| r.fault.as_deref() == Some("status=502"))
            .count(),
        4
    );
}

#[test]
fn a_small_retry_budget_stops_a_retry_storm() {
    let sandbox = fast_sandbox();
    let client = Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .retry_policy(fast_retry())
        .retry_budget(removebgvideo::core::RetryBudget::new(10, 5, 10, 1))
        .build()
        .unwrap();
    let failing = with_fault("status=503; id=storm");
    for _ in 0..3 {
        assert!(
            client
                .list_jobs(&ListJobsQuery::default(), &failing)
                .is_err()
        );
    }
    assert_eq!(client.retry_budget_tokens(), 0);
    assert_eq!(
        requests_to(&sandbox, "/v1/jobs"),
        3 + 2,
        "two retries in all, then none"
    );
}

#[test]
fn validation_errors_are_raised_before_anything_is_sent() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let bad = CreateJobRequest {
        model: Some("ultra".into()),
        output_format: Some("mp4".into()),
        ..CreateJobRequest::new("ftp://example.com/a.mp4")
    };
    let error = client
        .create_job(&bad, &CallOptions::default())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Validation);
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/video_url", "/model", "/output_format"]);
    assert!(client.get_job("  ", &CallOptions::default()).is_err());
    assert!(
        client
            .usage_summary(
                &UsageSummaryQuery { days: Some(0) },
                &CallOptions::default()
            )
            .is_err()
    );
    let missing = client
        .upload(
            std::path::Path::new("/nonexistent/clip.mp4"),
            &CallOptions::default(),
        )
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::ValidationError);
    assert!(
        sandbox.request_log().is_empty(),
        "the sandbox saw no request at all"
    );
}

#[test]
fn idempotency_keys_are_reused_across_retries_and_sent_without_retries() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let mut options = with_fault("status=503; times=1; id=idem");
    options.idempotency_key = Some("my-own-key-1".into());
    client
        .create_job(&CreateJobRequest::new(VIDEO), &options)
        .unwrap();
    let keys: Vec<Option<String>> = sandbox
        .request_log()
        .iter()
        .filter(|r| r.path == "/v1/jobs")
        .map(|r| r.idempotency_key.clone())
        .collect();
    assert_eq!(
        keys,
        [
            Some("my-own-key-1".to_owned()),
            Some("my-own-key-1".to_owned())
        ]
    );

    let no_retries = CallOptions {
        max_retries: Some(0),
        ..CallOptions::default()
    };
    client
        .create_job(&CreateJobRequest::new(VIDEO), &no_retries)
        .unwrap();
    let last = sandbox.request_log().last().cloned().unwrap();
    assert!(
        last.idempotency_key.is_some_and(|k| k.len() == 36),
        "a UUID key even with retries off"
    );
    assert_eq!(job_total(&client), 2);
}

#[test]
fn a_post_without_an_answer_is_not_resent_to_a_server_not_known_to_honour_keys() {
    let sandbox = fast_sandbox();
    let fresh = client(&sandbox, sandbox.demo_key());
    let options = with_fault("drop-after; times=1; id=unknown");
    let error = fresh
        .create_job(&CreateJobRequest::new(VIDEO), &options)
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::OutcomeUnknown);
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    let key = error
        .idempotency_key
        .clone()
        .expect("the key to retry with");
    assert!(error.message.contains(&key));
    assert_eq!(job_total(&fresh), 1, "it did happen, once");
    // The documented recovery: repeat with the same key; the server answers the first result.
    let again = CallOptions {
        idempotency_key: Some(key),
        ..CallOptions::default()
    };
    fresh
        .create_job(&CreateJobRequest::new(VIDEO), &again)
        .unwrap();
    assert_eq!(job_total(&fresh), 1, "no duplicate");

    // Once a response has shown the server honours keys, a lost answer is simply retried.
    fresh
        .create_job(
            &CreateJobRequest::new(VIDEO),
            &with_fault("drop-after; times=1; id=learned"),
        )
        .unwrap();
    assert_eq!(job_total(&fresh), 2);
}

#[test]
fn a_post_answered_5xx_after_acting_is_not_resent_to_a_server_not_known_to_honour_keys() {
    let sandbox = fast_sandbox();
    for (n, status) in [500u16, 502, 504].into_iter().enumerate() {
        // A fresh client every time, as every CLI call, cold start and unpickled worker is.
        let fresh = client(&sandbox, sandbox.demo_key());
        let fault = format!("status-after={status}; times=1; id=gateway-{status}");
        let error = fresh
            .create_job(&CreateJobRequest::new(VIDEO), &with_fault(&fault))
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::OutcomeUnknown, "{status}: {error}");
        assert_eq!(error.status, Some(status));
        assert!(
            error.request_id.is_some(),
            "the gateway's request id is kept"
        );
        let key = error
            .idempotency_key
            .clone()
            .expect("the key to repeat with");
        assert!(error.message.contains(&key) && error.message.contains(&status.to_string()));
        assert_eq!(
            sandbox.created_jobs().len(),
            n + 1,
            "{status}: one job, not two"
        );
    }
    // 503 and 429 say nothing was done: retried, even by a fresh client.
    let fresh = client(&sandbox, sandbox.demo_key());
    fresh
        .create_job(
            &CreateJobRequest::new(VIDEO),
            &with_fault("status=503; times=1; id=not-acted"),
        )
        .unwrap();
    assert_eq!(sandbox.created_jobs().len(), 4);
}

#[test]
fn a_run_repeated_with_its_key_after_outcome_unknown_creates_no_second_job() {
    let sandbox = fast_sandbox();
    let fresh = client(&sandbox, sandbox.demo_key());
    let mut request = RunRequest::url(VIDEO);
    request.start = Some(StartJobRequest::default());
    let options = RunOptions {
        call: CallOptions {
            idempotency_key: Some("order-17".into()),
            ..with_fault("drop-after; times=1; id=run-key")
        },
        ..RunOptions::default()
    };
    let error = fresh.run(&request, &options).unwrap_err();
    assert_eq!(error.code, ErrorCode::OutcomeUnknown);
    assert_eq!(error.idempotency_key.as_deref(), Some("order-17"));
    assert!(error.message.contains("order-17"), "{error}");
    assert_eq!(job_total(&fresh), 1, "the create did happen");
    // The same run again, from another fresh client, under the same key.
    let again = client(&sandbox, sandbox.demo_key());
    let done = again.run(&request, &options).unwrap();
    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(job_total(&again), 1, "no second job");
    let keys: Vec<String> = sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .filter_map(|r| r.idempotency_key)
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("order-17:")), "{keys:?}");
    assert!(
        keys.contains(&"order-17:create".to_owned()) && keys.contains(&"order-17:start".to_owned())
    );
}

#[test]
fn a_cancelled_upload_stops_at_once_not_after_its_last_byte() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let dir = temp_dir("cancel-upload");
    let file = dir.join("big.mp4");
    // 400 MB, sparse: no disk is spent, every byte still travels.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(400_000_000)
        .unwrap();
    let cancel = CancelToken::new();
    let (events, mut options) = collect_events();
    let on_event = options.on_event.take().unwrap();
    let trigger = cancel.clone();
    options.on_event = Some(Arc::new(move |event: &Event| {
        on_event(event);
        trigger.cancel();
    }));
    options.cancel = Some(cancel);
    let error = client.upload(&file, &options).unwrap_err();
    assert_eq!(error.code, ErrorCode::Cancelled, "{error}");
    let sent = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Upload { bytes_done, .. } => Some(*bytes_done),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(sent < 8 << 20, "stopped after {sent} bytes of 400 MB");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_post_that_may_have_acted_is_outcome_unknown_however_it_ends() {
    let sandbox = fast_sandbox();
    // Keys known to be honoured, no retries: a 502 after acting would otherwise read as a
    // plain server error, and a caller would repeat it under a new key.
    let honoured = Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .idempotency_support(IdempotencySupport::Honoured)
        .max_retries(0)
        .build()
        .unwrap();
    let error = honoured
        .create_job(
            &CreateJobRequest::new(VIDEO),
            &with_fault("status-after=502; times=1; id=no-retries-left"),
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::OutcomeUnknown, "{error}");
    assert!(error.idempotency_key.is_some());
    assert_eq!(sandbox.created_jobs().len(), 1);

    // Cancelled while the request was out: it may have acted all the same.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancelToken::new();
    let server_cancel = cancel.clone();
    let server = std::thread::spawn(move || {
        use std::io::BufRead;
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        // The request arrived; the caller cancels; the connection closes unanswered.
        server_cancel.cancel();
    });
    let client = Client::builder()
        .api_key("rbv_test_key")
        .base_url(&base)
        .build()
        .unwrap();
    let options = CallOptions {
        cancel: Some(cancel),
        ..CallOptions::default()
    };
    let error = client
        .create_job(&CreateJobRequest::new(VIDEO), &options)
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(error.code, ErrorCode::OutcomeUnknown, "{error}");
    assert!(error.message.contains("cancelled"), "{error}");
}

#[test]
fn a_run_that_fails_after_its_job_exists_reports_its_run_key() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let options = RunOptions {
        limit: WaitLimit::After(Duration::from_millis(300)),
        call: CallOptions {
            idempotency_key: Some("order-18".into()),
            ..CallOptions::default()
        },
        ..RunOptions::default()
    };
    let error = client
        .run(
            &RunRequest::url(format!("{VIDEO}?scenario=stuck")),
            &options,
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WaitTimeout);
    assert_eq!(error.idempotency_key.as_deref(), Some("order-18"));
    let long = CallOptions {
        idempotency_key: Some("k".repeat(250)),
        ..CallOptions::default()
    };
    let error = client
        .run(
            &RunRequest::url(VIDEO),
            &RunOptions {
                call: long,
                ..RunOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ValidationError);
    assert_eq!(error.problems[0].path, "/idempotency_key");
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    for (url, ok) in [
        ("http://api.example.com", false),
        ("ftp://127.0.0.1", false),
        ("https://api.example.com", true),
        ("http://localhost:8080", true),
        ("http://127.0.0.1:9", true),
        ("http://[::1]:9", true),
    ] {
        let built = Client::builder().api_key("k").base_url(url).build();
        assert_eq!(built.is_ok(), ok, "{url}");
        if let Err(error) = built {
            assert_eq!(error.problems[0].path, "/base_url");
        }
    }
}

#[test]
fn failed_jobs_and_deadlines_are_typed_errors_carrying_the_job() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let failing = client
        .create_job(
            &CreateJobRequest::new(format!("{VIDEO}?scenario=fail&error=bad%20codec")),
            &CallOptions::default(),
        )
        .unwrap();
    let error = client
        .wait(&failing.id, &WaitOptions::default())
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::JobFailed);
    let job = error.job.expect("the failed job");
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Failed, Some("bad codec"))
    );

    let stuck = client
        .create_job(
            &CreateJobRequest::new(format!("{VIDEO}?scenario=stuck")),
            &CallOptions::default(),
        )
        .unwrap();
    let limit = Duration::from_millis(600);
    let started = Instant::now();
    let error = client
        .wait(
            &stuck.id,
            &WaitOptions {
                limit: WaitLimit::After(limit),
                ..Default::default()
            },
        )
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.code, ErrorCode::WaitTimeout);
    assert_eq!(
        error.job.as_ref().map(|j| j.status.clone()),
        Some(JobStatus::Processing)
    );
    let one_interval = fast_poll().max_interval.mul_f64(1.0 + fast_poll().jitter);
    assert!(elapsed >= limit, "not before the deadline: {elapsed:?}");
    assert!(
        elapsed <= limit + one_interval + Duration::from_millis(150),
        "within the deadline plus one poll interval: {elapsed:?}"
    );
}

#[test]
fn a_wait_can_be_cancelled_from_another_thread() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let stuck = client
        .create_job(
            &CreateJobRequest::new(format!("{VIDEO}?scenario=stuck")),
            &CallOptions::default(),
        )
        .unwrap();
    let cancel = CancelToken::new();
    let slow_poll = PollPolicy {
        initial_interval: Duration::from_secs(5),
        max_interval: Duration::from_secs(5),
        ..fast_poll()
    };
    let options = WaitOptions {
        poll: Some(slow_poll),
        call: CallOptions {
            cancel: Some(cancel.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let waiter = std::thread::spawn({
        let (client, id) = (client.clone(), stuck.id.clone());
        move || client.wait(&id, &options)
    });
    std::thread::sleep(Duration::from_millis(100));
    let cancelled_at = Instant::now();
    cancel.cancel();
    let error = waiter.join().unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_millis(200),
        "it stopped promptly, mid-pause"
    );
}

#[test]
fn transient_errors_while_polling_do_not_end_the_wait() {
    let sandbox = start(SandboxConfig {
        speed: 200.0,
        ..SandboxConfig::default()
    });
    let client = Client::builder()
        .api_key(sandbox.demo_key())
        .base_url(sandbox.base_url())
        .poll_policy(fast_poll())
        .max_retries(0)
        .build()
        .unwrap();
    let job = client
        .create_job(&CreateJobRequest::new(VIDEO), &CallOptions::default())
        .unwrap();
    let options = WaitOptions {
        call: with_fault("status=503; times=4; id=poll"),
        ..Default::default()
    };
    assert_eq!(
        client.wait(&job.id, &options).unwrap().status,
        JobStatus::Completed
    );
    assert_eq!(
        sandbox
            .request_log()
            .iter()
            .filter(|r| r.status == Some(503))
            .count(),
        4
    );
}

#[test]
fn a_broken_download_resumes_and_matches_byte_for_byte() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    // 40 MB: the third transfer passes 32 MiB, where the part file's early writeback starts
    // while the file has already been cut back and resumed.
    let created = client
        .create_job(
            &CreateJobRequest::new(format!("{VIDEO}?duration=200")),
            &CallOptions::default(),
        )
        .unwrap();
    let job = client.wait(&created.id, &WaitOptions::default()).unwrap();
    let dir = temp_dir("resume");
    let target = dir.join("out.webm");
    // download_job: the job is in hand, so only the output requests carry the fault header.
    let options = DownloadOptions {
        call: with_fault("truncate; times=2; id=cut"),
        ..Default::default()
    };
    let download = client.download_job(job, &target, &options).unwrap();
    assert_eq!(download.bytes, 200 * 200_000);
    assert_output(&created.id, &target);
    let ranges = sandbox
        .request_log()
        .iter()
        .filter(|r| r.path.starts_with("/sandbox/outputs/"))
        .count();
    assert_eq!(ranges, 3, "two broken transfers, then the rest with Range");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no part file left behind"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_expired_output_url_is_refreshed() {
    let sandbox = start(SandboxConfig {
        speed: 1000.0,
        output_url_ttl_ms: 300,
        ..SandboxConfig::default()
    });
    let client = client(&sandbox, sandbox.demo_key());
    let created = client
        .create_job(&CreateJobRequest::new(VIDEO), &CallOptions::default())
        .unwrap();
    let job = client.wait(&created.id, &WaitOptions::default()).unwrap();
    let stale = job.output_url.clone().unwrap();
    let started = Instant::now();
    let probe: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    while probe.get(&stale).call().unwrap().status().as_u16() != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the link expires"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = temp_dir("refresh");
    let target = dir.join("out.webm");
    let download = client
        .download_job(job, &target, &DownloadOptions::default())
        .unwrap();
    assert_ne!(download.job.output_url.as_deref(), Some(stale.as_str()));
    assert_output(&created.id, &target);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn run_covers_the_whole_flow_from_a_file_under_one_deadline() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let dir = temp_dir("run");
    let file = dir.join("clip.mov");
    std::fs::write(&file, vec![1u8; 10_000]).unwrap();
    let mut request = RunRequest::file(&file);
    request.start = Some(StartJobRequest {
        model: Some("light".into()),
        ..Default::default()
    });
    request.download_to = Some(dir.join("out.webm"));
    let result = client
        .run(
            &request,
            &RunOptions {
                limit: WaitLimit::After(Duration::from_secs(20)),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(result.upload.is_some());
    assert_eq!(result.job.model.as_ref().map(|m| m.as_str()), Some("light"));
    assert_output(&result.job.id, &dir.join("out.webm"));

    let slow = RunRequest::url(format!("{VIDEO}?scenario=stuck"));
    let error = client
        .run(
            &slow,
            &RunOptions {
                limit: WaitLimit::After(Duration::from_millis(300)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WaitTimeout);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_key_stays_out_of_debug_output_errors_and_logs() {
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let _ = client.list_jobs(
        &ListJobsQuery::default(),
        &with_fault("status=503; times=2; id=logs"),
    );
    let error = client
        .get_job("job_nope", &CallOptions::default())
        .unwrap_err();
    let texts = format!("{client:?} {:?} {error} {error:?}", client.settings());
    assert!(!texts.contains(sandbox.demo_key()), "{texts}");
    let logs = common::logs_text();
    assert!(
        logs.contains("retry 1/3 of list_jobs"),
        "retries are logged: {logs}"
    );
    assert!(!logs.contains(sandbox.demo_key()));
}

#[test]
fn declared_idempotency_support_overrides_detection() {
    let sandbox = fast_sandbox();
    let with_support = |support| {
        Client::builder()
            .api_key(sandbox.demo_key())
            .base_url(sandbox.base_url())
            .retry_policy(fast_retry())
            .idempotency_support(support)
            .build()
            .unwrap()
    };
    let trusting = with_support(IdempotencySupport::Honoured);
    trusting
        .create_job(
            &CreateJobRequest::new(VIDEO),
            &with_fault("drop-after; times=1; id=trust"),
        )
        .unwrap();
    assert_eq!(
        job_total(&trusting),
        1,
        "retried with the same key, replayed, one job"
    );

    let careful = with_support(IdempotencySupport::NotHonoured);
    careful
        .create_job(&CreateJobRequest::new(VIDEO), &CallOptions::default())
        .unwrap();
    let error = careful
        .create_job(
            &CreateJobRequest::new(VIDEO),
            &with_fault("drop-after; times=1; id=careful"),
        )
        .unwrap_err();
    assert_eq!(
        error.code,
        ErrorCode::OutcomeUnknown,
        "not re-sent, even though the server echoes keys"
    );
    assert_eq!(job_total(&careful), 3);
}

#[test]
fn api_calls_never_follow_a_redirect_so_the_key_stays_home() {
    // A second server that records whatever reaches it.
    let elsewhere = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let elsewhere_url = format!(
        "http://127.0.0.1:{}/steal",
        elsewhere.server_addr().to_ip().unwrap().port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for request in elsewhere.incoming_requests() {
            sink.lock().unwrap().push(
                request
                    .headers()
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>(),
            );
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });
    let redirecting = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!(
        "http://127.0.0.1:{}",
        redirecting.server_addr().to_ip().unwrap().port()
    );
    std::thread::spawn(move || {
        for request in redirecting.incoming_requests() {
            let location =
                tiny_http::Header::from_bytes("Location", elsewhere_url.as_bytes()).unwrap();
            let _ = request.respond(tiny_http::Response::empty(302).with_header(location));
        }
    });
    let client = Client::builder()
        .api_key("rbv_secret_key_123")
        .base_url(&base)
        .build()
        .unwrap();
    let error = client
        .get_job("job_1", &CallOptions::default())
        .unwrap_err();
    assert_eq!(error.status, Some(302));
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing, and so no key, reached the other host"
    );
}

#[test]
fn poll_policies_that_could_break_the_schedule_are_refused() {
    let bad = PollPolicy {
        factor: -1.0,
        jitter: f64::NAN,
        ..PollPolicy::default()
    };
    let error = Client::builder()
        .api_key("k")
        .poll_policy(bad.clone())
        .build()
        .unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/poll/factor", "/poll/jitter"]);
    let sandbox = fast_sandbox();
    let client = client(&sandbox, sandbox.demo_key());
    let options = WaitOptions {
        poll: Some(bad),
        ..Default::default()
    };
    assert_eq!(
        client.wait("job_1", &options).unwrap_err().code,
        ErrorCode::ValidationError
    );
    assert!(sandbox.request_log().is_empty());
}
