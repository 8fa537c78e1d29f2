//! The rules the machines hold, each driven by hand in virtual time: what a garbled success
//! means for a POST, that no retry pause passes a deadline, that a cancel after a POST may have
//! acted says so, that an update from elsewhere ends a wait, and that an expired output URL is
//! refreshed from the job.

use std::time::Duration;

use removebgvideo_core::machine::{
    BodyPlan, CallMachine, DownloadMachine, IdempotencySupport, Shared, Transmit, TransmitBody,
    WaitMachine,
};
use removebgvideo_core::rate::RESUME_SPREAD;
use removebgvideo_core::{
    ApiKey, CreateJobRequest, ErrorCode, FixedDraws, Headers, Job, JobAccepted, PollPolicy,
    RequestBuilder, RetryBudget, RetryPolicy, Timestamp,
};

const T0: Timestamp = Timestamp::from_unix_secs(1_795_000_000);

fn shared(idempotency: IdempotencySupport) -> Shared {
    Shared::new(
        RetryPolicy::default(),
        RetryBudget::default(),
        Duration::from_secs(60),
        Duration::from_secs(60),
        idempotency,
        Box::new(FixedDraws::new(vec![0.5])),
    )
}

fn builder() -> RequestBuilder {
    RequestBuilder::new(ApiKey::new("rbv_test"), "machines-test")
}

fn create(shared: &Shared, deadline: Option<Timestamp>) -> CallMachine<JobAccepted> {
    let request = builder()
        .create_job(&CreateJobRequest::new("https://example.com/a.mp4"), "key-1")
        .unwrap();
    CallMachine::new(request, TransmitBody::Json, shared, None, None, deadline)
}

fn job_json(status: &str, output_url: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"id": "job_1", "status": status, "output_url": output_url}),
    )
    .unwrap()
}

#[test]
fn a_garbled_success_to_a_post_is_outcome_unknown_without_a_second_send() {
    let mut call = create(&shared(IdempotencySupport::NotHonoured), None);
    assert!(call.poll_transmit(T0).is_some());
    call.handle_response(200, Headers::new(), b"{\"id\": tru", T0);
    let error = call.poll_outcome().unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::OutcomeUnknown, "{error}");
    assert_eq!(error.idempotency_key.as_deref(), Some("key-1"));
    assert!(call.poll_transmit(T0).is_none(), "never sent again");
}

#[test]
fn no_retry_pause_passes_the_deadline_and_each_attempt_fits_what_is_left() {
    let deadline = T0.plus(Duration::from_secs(10));
    let mut call = create(&shared(IdempotencySupport::Honoured), Some(deadline));
    let Some(Transmit::Api { timeout, .. }) = call.poll_transmit(T0) else {
        panic!("an API transmit")
    };
    assert_eq!(
        timeout,
        Duration::from_secs(10),
        "cut to what is left of the deadline"
    );
    let mut headers = Headers::new();
    headers.push("Retry-After", "30");
    call.handle_response(
        429,
        headers,
        br#"{"error":{"code":"rate_limited","message":"x"}}"#,
        T0,
    );
    let error = call.poll_outcome().unwrap().unwrap_err();
    assert_eq!(
        error.code,
        ErrorCode::RateLimited,
        "a 30 s pause would pass the deadline"
    );
}

#[test]
fn a_cancel_after_a_post_may_have_acted_is_outcome_unknown_and_says_cancelled() {
    let mut call = create(&shared(IdempotencySupport::Honoured), None);
    call.poll_transmit(T0).unwrap();
    call.handle_response(502, Headers::new(), b"bad gateway", T0);
    assert!(call.poll_outcome().is_none(), "a retry is paused for");
    assert!(call.poll_timeout().is_some());
    call.cancel();
    let error = call.poll_outcome().unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::OutcomeUnknown, "{error}");
    assert!(error.message.contains("cancelled"), "{error}");
}

#[test]
fn a_terminal_update_from_elsewhere_ends_a_wait_and_the_poll_in_flight_is_ignored() {
    let shared = shared(IdempotencySupport::Detect);
    let request = builder().get_job("job_1").unwrap();
    let mut wait = WaitMachine::new(
        "job_1",
        request,
        PollPolicy::default(),
        &shared,
        None,
        None,
        Some(T0.plus(Duration::from_secs(600))),
    )
    .unwrap();
    wait.poll_transmit(T0).unwrap();
    wait.handle_response(200, Headers::new(), &job_json("processing", None), T0);
    let next = wait.poll_timeout().expect("the next poll is scheduled");
    assert!(next > T0);
    wait.poll_transmit(next).unwrap();
    let update: Job =
        serde_json::from_slice(&job_json("completed", Some("https://cdn.example.com/o"))).unwrap();
    wait.handle_job_update(update, next);
    let job = wait.poll_outcome().unwrap().unwrap();
    assert_eq!(job.status.to_string(), "completed");
    wait.handle_response(200, Headers::new(), &job_json("processing", None), next);
    assert!(
        wait.poll_outcome().is_none(),
        "the late answer changes nothing"
    );
}

fn hybrid_wait(shared: &Shared, fallback: Duration) -> WaitMachine {
    WaitMachine::new(
        "job_1",
        builder().get_job("job_1").unwrap(),
        PollPolicy::default(),
        shared,
        None,
        None,
        Some(T0.plus(Duration::from_secs(600))),
    )
    .unwrap()
    .with_deliveries(fallback)
    .unwrap()
}

fn update(status: &str) -> Job {
    serde_json::from_slice(&job_json(status, Some("https://cdn.example.com/o"))).unwrap()
}

#[test]
fn a_hybrid_wait_polls_only_as_a_fallback_once_a_delivery_came_and_confirms_the_end_with_one_read()
{
    let shared = shared(IdempotencySupport::Detect);
    let fallback = Duration::from_secs(30);
    let mut wait = hybrid_wait(&shared, fallback);
    // The first read skips the two a wait alone makes while the job is queued (at once, and
    // one interval on: the first event is likely on its way), then reads go as a wait
    // alone's would. The draws are 0.5: no jitter.
    assert!(wait.poll_transmit(T0).is_none());
    let policy = PollPolicy::default();
    let first = T0.plus(policy.initial_interval + policy.initial_interval.mul_f64(policy.factor));
    assert_eq!(wait.poll_timeout(), Some(first));
    wait.poll_transmit(first).unwrap();
    wait.handle_response(200, Headers::new(), &job_json("pending", None), first);
    let alone = wait.poll_timeout().unwrap();
    assert!(
        alone < first.plus(fallback),
        "no delivery yet: the schedule of polls alone"
    );
    // job.started arrives: the next poll moves out to the fallback.
    let t1 = first.plus(Duration::from_millis(300));
    wait.handle_job_update(update("processing"), t1);
    assert_eq!(wait.poll_timeout(), Some(t1.plus(fallback)));
    assert!(
        wait.poll_transmit(alone).is_none(),
        "nothing due at the old time"
    );
    // job.completed: one confirming read at once, and the wait ends on its answer.
    let t2 = first.plus(Duration::from_secs(5));
    wait.handle_job_update(update("completed"), t2);
    assert!(
        wait.poll_outcome().is_none(),
        "a delivery alone does not end it"
    );
    assert_eq!(wait.poll_timeout(), Some(t2));
    let confirm = wait.poll_transmit(t2).expect("the confirming read");
    assert!(
        matches!(&confirm, Transmit::Api { request, .. } if request.path.ends_with("/v1/jobs/job_1"))
    );
    // A redelivery while the read is out changes nothing.
    wait.handle_job_update(update("completed"), t2);
    assert!(wait.poll_transmit(t2).is_none(), "one read only");
    wait.handle_response(
        200,
        Headers::new(),
        &job_json("completed", Some("https://cdn.example.com/authoritative")),
        t2,
    );
    let job = wait.poll_outcome().unwrap().unwrap();
    assert_eq!(
        job.output_url.as_deref(),
        Some("https://cdn.example.com/authoritative"),
        "the wait returns the job as the API reads it"
    );
    assert_eq!(wait.polls(), 3, "two reads and one delivery observed");
}

#[test]
fn a_hybrid_wait_whose_confirming_read_lags_polls_on_until_a_read_sees_the_end() {
    let shared = shared(IdempotencySupport::Detect);
    let mut wait = hybrid_wait(&shared, Duration::from_secs(30));
    wait.handle_job_update(update("processing"), T0);
    // A failure delivered while a fallback poll is out.
    let t1 = T0.plus(Duration::from_secs(30));
    wait.poll_transmit(t1).expect("the fallback poll");
    wait.handle_job_update(update("failed"), t1);
    // The poll was sent before the event: its answer still says processing.
    wait.handle_response(200, Headers::new(), &job_json("processing", None), t1);
    assert!(wait.poll_outcome().is_none());
    assert_eq!(
        wait.poll_timeout(),
        Some(t1),
        "the confirming read goes at once"
    );
    wait.poll_transmit(t1).unwrap();
    // That read lags too: the next follows the schedule of polls alone, not the fallback.
    wait.handle_response(200, Headers::new(), &job_json("processing", None), t1);
    let next = wait.poll_timeout().unwrap();
    assert!(next > t1 && next < t1.plus(Duration::from_secs(30)));
    wait.poll_transmit(next).unwrap();
    wait.handle_response(200, Headers::new(), &job_json("failed", None), next);
    let error = wait.poll_outcome().unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::JobFailed);
}

#[test]
fn a_hybrid_wait_whose_deliveries_never_come_polls_as_if_alone_and_its_fallback_keeps_the_deadline()
{
    let shared = shared(IdempotencySupport::Detect);
    let mut lonely = hybrid_wait(&shared, Duration::from_secs(30));
    let mut alone = WaitMachine::new(
        "job_1",
        builder().get_job("job_1").unwrap(),
        PollPolicy::default(),
        &shared,
        None,
        None,
        Some(T0.plus(Duration::from_secs(600))),
    )
    .unwrap();
    assert!(lonely.poll_transmit(T0).is_none(), "the first read waits");
    // A wait alone reads at once and one interval on while the job is queued; the hybrid
    // one's first read comes when the alone one's third does.
    let mut at = T0;
    for _ in 0..2 {
        alone.poll_transmit(at).unwrap();
        alone.handle_response(200, Headers::new(), &job_json("pending", None), at);
        at = alone.poll_timeout().unwrap();
    }
    assert_eq!(lonely.poll_timeout(), Some(at));
    let mut now = at;
    for _ in 0..5 {
        lonely.poll_transmit(now).unwrap();
        alone.poll_transmit(now).unwrap();
        lonely.handle_response(200, Headers::new(), &job_json("processing", None), now);
        alone.handle_response(200, Headers::new(), &job_json("processing", None), now);
        assert_eq!(lonely.poll_timeout(), alone.poll_timeout());
        now = lonely.poll_timeout().unwrap();
    }
    // Near the deadline, the fallback poll comes at the deadline, not after it.
    let late = T0.plus(Duration::from_secs(590));
    lonely.handle_job_update(update("processing"), late);
    assert_eq!(
        lonely.poll_timeout(),
        Some(T0.plus(Duration::from_secs(600)))
    );
    assert!(
        hybrid_wait(&shared, Duration::from_secs(1))
            .with_deliveries(Duration::ZERO)
            .is_err()
    );
}

#[test]
fn an_expired_output_url_is_refreshed_from_the_job_and_fetched_again() {
    let shared = shared(IdempotencySupport::Detect);
    let job: Job = serde_json::from_slice(&job_json(
        "completed",
        Some("https://cdn.example.com/old?sig=1"),
    ))
    .unwrap();
    let refresh = builder().get_job("job_1").unwrap();
    let mut download = DownloadMachine::new(
        job,
        refresh,
        "https://api.removebgvideo.com",
        vec![("X-Trace".into(), "t".into())],
        &shared,
        None,
        None,
    )
    .unwrap();
    let Some(Transmit::Fetch { url, headers, .. }) = download.poll_transmit(T0) else {
        panic!("a fetch of the output")
    };
    assert_eq!(url, "https://cdn.example.com/old?sig=1");
    assert!(
        headers.iter().all(|(n, _)| n != "X-Trace"),
        "no call header goes to a CDN"
    );
    assert_eq!(
        download.handle_head(410, Headers::new(), T0),
        BodyPlan::Discard
    );
    let Some(Transmit::Api { request, .. }) = download.poll_transmit(T0) else {
        panic!("the job is read again")
    };
    assert_eq!(request.operation.name(), "get_job");
    download.handle_response(
        200,
        Headers::new(),
        &job_json("completed", Some("https://cdn.example.com/new?sig=2")),
        T0,
    );
    let Some(Transmit::Fetch { url, .. }) = download.poll_transmit(T0) else {
        panic!("the fresh URL is fetched")
    };
    assert_eq!(url, "https://cdn.example.com/new?sig=2");
    let mut headers = Headers::new();
    headers.push("Content-Length", "4");
    assert_eq!(
        download.handle_head(200, headers, T0),
        BodyPlan::Stream { offset: 0 }
    );
    download.handle_body_bytes(4, T0);
    download.handle_body_end(Ok(()), T0);
    let fetched = download.poll_outcome().unwrap().unwrap();
    assert_eq!(fetched.bytes, 4);
    assert_eq!(
        fetched.job.output_url.as_deref(),
        Some("https://cdn.example.com/new?sig=2")
    );
}

#[test]
fn a_429_pauses_every_call_of_the_client_not_only_the_one_that_got_it() {
    let shared = shared(IdempotencySupport::Honoured);
    let mut first = create(&shared, None);
    let get = builder().get_job("job_1").unwrap();
    let mut other: CallMachine<Job> =
        CallMachine::new(get, TransmitBody::Json, &shared, None, None, None);
    first.poll_transmit(T0).unwrap();
    let mut headers = Headers::new();
    headers.push("Retry-After", "5");
    first.handle_response(
        429,
        headers,
        br#"{"error":{"code":"rate_limited","message":"x"}}"#,
        T0,
    );
    assert!(
        other.poll_transmit(T0).is_none(),
        "the other call does not go out into the same limit"
    );
    // It asks again at the pause's end or a little after (each client resumes at its own
    // phase, so the clients of a key do not all go at once).
    let later = other.poll_timeout().expect("a time to ask again");
    let pause_end = T0.plus(Duration::from_secs(5));
    assert!(
        later >= pause_end && later <= pause_end.plus(RESUME_SPREAD),
        "{later:?}"
    );
    other.handle_timeout(later);
    assert!(
        other.poll_transmit(later).is_some(),
        "it goes once the pause is over"
    );
}

#[test]
fn a_request_whose_slot_was_reserved_before_a_429_waits_out_that_429s_pause_too() {
    let shared = shared(IdempotencySupport::Honoured);
    let limited = br#"{"error":{"code":"rate_limited","message":"x"}}"#;
    let retry_after = |seconds: &str| {
        let mut headers = Headers::new();
        headers.push("Retry-After", seconds);
        headers
    };
    // A first 429 makes the gate pace: the calls after it get slots one after the other.
    let mut first = create(&shared, None);
    first.poll_transmit(T0).unwrap();
    first.handle_response(429, retry_after("1"), limited, T0);
    let get = || -> CallMachine<Job> {
        CallMachine::new(
            builder().get_job("job_1").unwrap(),
            TransmitBody::Json,
            &shared,
            None,
            None,
            None,
        )
    };
    let (mut early, mut late) = (get(), get());
    assert!(early.poll_transmit(T0).is_none(), "paused");
    let resumed = early.poll_timeout().expect("a time to ask again");
    assert!(resumed >= T0.plus(Duration::from_secs(1)));
    early.handle_timeout(resumed);
    assert!(
        early.poll_transmit(resumed).is_some(),
        "the first slot after the pause is at once"
    );
    assert!(
        late.poll_transmit(resumed).is_none(),
        "the next one is later"
    );
    let slot = late.poll_timeout().expect("a reserved slot");
    assert!(slot > resumed);
    // Before that slot comes, the request sent in the first one meets a 429 of its own.
    early.handle_response(429, retry_after("30"), limited, resumed);
    late.handle_timeout(slot);
    assert!(
        late.poll_transmit(slot).is_none(),
        "a slot reserved before the 429 does not send into its pause"
    );
    let pause_end = resumed.plus(Duration::from_secs(30));
    let again = late.poll_timeout().expect("a new slot");
    assert!(
        again >= pause_end,
        "it asks again after the pause: {again:?}"
    );
    late.handle_timeout(again);
    assert!(late.poll_transmit(again).is_some(), "and goes then");
}

#[test]
fn a_cancel_while_a_poll_is_out_ends_the_wait_even_if_the_poll_succeeds() {
    let shared = shared(IdempotencySupport::Detect);
    let request = builder().get_job("job_1").unwrap();
    let mut wait = WaitMachine::new(
        "job_1",
        request,
        PollPolicy::default(),
        &shared,
        None,
        None,
        None,
    )
    .unwrap();
    wait.poll_transmit(T0).unwrap();
    wait.cancel();
    assert!(wait.poll_outcome().is_none(), "the poll out ends first");
    wait.handle_response(200, Headers::new(), &job_json("processing", None), T0);
    let error = wait.poll_outcome().unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::Cancelled);
    assert!(
        wait.poll_transmit(T0.plus(Duration::from_secs(60)))
            .is_none(),
        "no poll after it"
    );
}

#[test]
fn a_run_cancelled_while_its_create_is_out_starts_no_next_step_and_names_its_job() {
    use removebgvideo_core::machine::{RunMachine, RunSource, RunSpec};
    let shared = shared(IdempotencySupport::Honoured);
    let spec = RunSpec {
        source: RunSource::Url("https://example.com/a.mp4".into()),
        job: CreateJobRequest::default(),
        start: None,
        download: false,
        run_key: "run-7".into(),
        poll: PollPolicy::default(),
        max_retries: None,
        timeout: None,
        headers: Vec::new(),
        webhook_fallback: None,
    };
    let mut run = RunMachine::new(
        spec,
        builder(),
        "https://api.removebgvideo.com",
        &shared,
        None,
    )
    .unwrap();
    run.poll_transmit(T0).unwrap();
    run.cancel();
    let accepted = br#"{"success": true, "id": "job_77", "status": "processing"}"#;
    run.handle_response(200, Headers::new(), accepted, T0);
    let error = run.poll_outcome().unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::Cancelled);
    assert!(error.message.contains("job_77"), "{error}");
    assert_eq!(error.idempotency_key.as_deref(), Some("run-7"));
    assert!(run.poll_transmit(T0).is_none(), "no wait starts");
}
