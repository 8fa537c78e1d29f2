//! The sandbox over real loopback HTTP: every behaviour of issue 3, with every JSON answer
//! checked against the committed schema (see `common`).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, PLAYGROUND_VIDEO, agent, assert_schema, sandbox};
use removebgvideo_core::http::Headers;
use removebgvideo_core::{Model, Timestamp, estimate_credits, webhook};
use removebgvideo_sandbox::{
    FAULT_HEADER, FaultConfig, Sandbox, SandboxConfig, api_routes, minimal_mp4, output_bytes,
};
use serde_json::{Value, json};

fn create(api: &Api, body: Value) -> Value {
    let reply = api.post("/v1/jobs", &body);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.bytes)
    );
    reply.json()
}

/// Creates a job and returns its id.
fn create_id(api: &Api, body: Value) -> String {
    create(api, body)["id"]
        .as_str()
        .expect("a job id")
        .to_owned()
}

fn job_count(api: &Api) -> u64 {
    api.get("/v1/jobs?limit=100").json()["total"]
        .as_u64()
        .unwrap()
}

/// Downloads a URL and checks it byte for byte against the deterministic output.
fn download_and_check(job: &Value) -> usize {
    let url = job["output_url"].as_str().expect("an output URL");
    let response = agent().get(url).call().expect("the output downloads");
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response
        .into_body()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    let mut expected = vec![0u8; bytes.len()];
    output_bytes(job["id"].as_str().unwrap(), 0, &mut expected);
    assert!(
        bytes == expected,
        "the output bytes are the deterministic ones"
    );
    bytes.len()
}

#[test]
fn playground_curl_sequence_works_unchanged() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    // 1) Create, exactly as in the API Playground page.
    let created = create(
        &api,
        json!({
            "video_url": PLAYGROUND_VIDEO, "model": "original", "output_format": "webm",
            "background": { "type": "transparent" }, "auto_start": false
        }),
    );
    assert_eq!(created["status"], "created");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/v1/jobs/{id}")).json()["status"],
        "created",
        "a draft waits for start"
    );
    // 2) Start with pro and a prompt.
    let started = api.post(&format!("/v1/jobs/{id}/start"), &json!({
        "model": "pro", "text_prompt": "person, clothing accessories, glowing ring", "background": { "type": "transparent" }
    }));
    assert_eq!(started.status, 200);
    assert_eq!(
        started.json(),
        json!({"success": true, "id": id, "status": "processing", "message": "Job started"})
    );
    // 3) Poll.
    let job = api.wait_terminal(id);
    assert_eq!(job["status"], "completed");
    assert_eq!(job["model"], "pro");
    assert_eq!(job["progress"], 100.0);
    assert!(download_and_check(&job) > 0);
}

#[test]
fn recommended_scenarios_complete() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let scenarios = [
        json!({"video_url": PLAYGROUND_VIDEO, "model": "original", "bg_type": "transparent"}),
        json!({"video_url": PLAYGROUND_VIDEO, "model": "light"}),
        json!({"video_url": PLAYGROUND_VIDEO, "model": "pro", "text_prompt": "the dancer"}),
        json!({"video_url": PLAYGROUND_VIDEO, "model": "human", "output_format": "mov"}),
    ];
    for body in scenarios {
        let id = create(&api, body.clone())["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let job = api.wait_terminal(&id);
        assert_eq!(job["status"], "completed", "{body}");
        assert_eq!(job["billing_status"], "charged");
        let model = Model::from(body["model"].as_str().unwrap());
        assert_eq!(
            job["credits_used"].as_f64().unwrap(),
            estimate_credits(&model, 10.0).unwrap() as f64
        );
    }
}

#[test]
fn authentication_and_request_ids() {
    let sandbox = sandbox(1.0);
    let valid = Api::new(&sandbox, sandbox.demo_key());
    let reply = valid.get("/v1/jobs");
    assert_eq!(reply.status, 200);

    let wrong = Api::new(&sandbox, "rbv_not_a_key");
    let reply = wrong.get("/v1/jobs");
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "invalid_api_key")
    );
    assert_eq!(
        reply.json()["error"]["request_id"].as_str(),
        reply.header("x-request-id"),
        "the body and the header agree"
    );

    let mut anonymous = Api::new(&sandbox, "");
    anonymous.key = None;
    let reply = anonymous.get("/v1/jobs");
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "missing_api_key")
    );
    assert_eq!(anonymous.get("/health").status, 200, "health needs no key");

    let ids: HashSet<String> = sandbox
        .request_log()
        .iter()
        .map(|r| r.request_id.clone())
        .collect();
    assert_eq!(
        ids.len(),
        sandbox.request_log().len(),
        "request ids are unique"
    );
    let log = serde_json::to_string(&sandbox.request_log()).unwrap();
    assert!(
        !log.contains(sandbox.demo_key()),
        "keys never reach the log"
    );

    let answered = sandbox.request_log().len() as u64;
    let stats = anonymous.get("/sandbox/stats");
    assert_eq!(stats.status, 200, "stats need no key");
    assert_eq!(
        stats.json()["requests"],
        answered,
        "every answered request is counted"
    );
}

#[test]
fn jobs_are_isolated_per_key() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        keys: vec![removebgvideo_sandbox::KeyConfig {
            key: "rbv_other".into(),
            credits: 100.0,
            rate_per_second: 100.0,
            burst: 100,
        }],
        ..SandboxConfig::default()
    })
    .unwrap();
    let mine = Api::new(&sandbox, sandbox.demo_key());
    let theirs = Api::new(&sandbox, "rbv_other");
    let id = create_id(&mine, json!({"video_url": PLAYGROUND_VIDEO}));
    for path in [format!("/v1/jobs/{id}"), format!("/api/download/{id}")] {
        let reply = theirs.get(&path);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (404, "not_found"),
            "{path}"
        );
    }
    assert_eq!(
        theirs
            .post(&format!("/v1/jobs/{id}/start"), &json!({}))
            .status,
        404
    );
    assert_eq!(job_count(&theirs), 0);
}

#[test]
fn burst_is_rate_limited_with_retry_after_then_recovers() {
    let sandbox = sandbox(1.0);
    let api = Api::new(&sandbox, sandbox.rate_limited_key());
    let replies: Vec<_> = (0..5).map(|_| api.get("/v1/usage/summary")).collect();
    let limited: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        !limited.is_empty(),
        "a burst of 5 over a bucket of 3 is limited"
    );
    let first = limited[0];
    assert_eq!(first.code(), "rate_limited");
    let retry_after: u64 = first.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after));
    assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("0"));
    // Benchmarks read the 429s a client met from the sandbox's counters.
    let stats = api.get("/sandbox/stats").json();
    assert_eq!(stats["requests"], 5);
    assert_eq!(stats["rate_limited"], limited.len() as u64);
    // Backing off as told gets through again (bounded: a few times the hint).
    let started = Instant::now();
    loop {
        if api.get("/v1/usage/summary").status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(retry_after * 4),
            "the limit lifts"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idempotency_key_replays_and_rejects_a_different_body() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let body = json!({"video_url": PLAYGROUND_VIDEO, "auto_start": false});
    let key = [("Idempotency-Key", "idem-abc-1")];
    let first = api.send("POST", "/v1/jobs", &key, Some(&body)).unwrap();
    let second = api.send("POST", "/v1/jobs", &key, Some(&body)).unwrap();
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(
        first.header("idempotency-key"),
        Some("idem-abc-1"),
        "the key is echoed: the server honours it"
    );
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(job_count(&api), 1, "no duplicate job");

    let other = api
        .send(
            "POST",
            "/v1/jobs",
            &key,
            Some(&json!({"video_url": PLAYGROUND_VIDEO})),
        )
        .unwrap();
    assert_eq!(
        (other.status, other.code().as_str()),
        (409, "idempotency_conflict")
    );
    assert_eq!(job_count(&api), 1);
}

#[test]
fn a_create_whose_connection_drops_after_processing_is_visible_exactly_once() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let body = json!({"video_url": PLAYGROUND_VIDEO});
    let headers = [
        ("Idempotency-Key", "idem-drop-1"),
        (FAULT_HEADER, "drop-after; times=1; id=drop-create"),
    ];
    let dropped = api.send("POST", "/v1/jobs", &headers, Some(&body));
    assert!(
        dropped.is_err(),
        "the connection closed without an answer: {dropped:?}"
    );
    assert_eq!(job_count(&api), 1, "yet the job was made");
    let retried = api.send("POST", "/v1/jobs", &headers, Some(&body)).unwrap();
    assert_eq!(retried.status, 200);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        job_count(&api),
        1,
        "the retry with the same key made nothing new"
    );

    let before = [
        ("Idempotency-Key", "idem-drop-2"),
        (FAULT_HEADER, "drop-before; times=1; id=drop-before"),
    ];
    assert!(api.send("POST", "/v1/jobs", &before, Some(&body)).is_err());
    assert_eq!(job_count(&api), 1, "a drop before processing makes nothing");
    assert_eq!(
        api.send("POST", "/v1/jobs", &before, Some(&body))
            .unwrap()
            .status,
        200
    );
    assert_eq!(job_count(&api), 2);
}

#[test]
fn invalid_requests_are_rejected_with_the_cores_problems() {
    let sandbox = sandbox(1.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let reply = api.post("/v1/jobs", &json!({
        "video_url": PLAYGROUND_VIDEO, "model": "ultra", "output_format": "avi", "bg_type": "custom", "bg_color": [2, 0, 0]
    }));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "invalid_request")
    );
    let paths: Vec<String> = reply.json()["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["/model", "/output_format", "/bg_color/0"]);
    let reply = api.post(
        "/v1/jobs",
        &json!({"video_url": PLAYGROUND_VIDEO, "output_format": "mp4"}),
    );
    assert_eq!(
        reply.json()["error"]["problems"][0]["code"],
        "alpha_unsupported"
    );
    let reply = api.get("/v1/usage/summary?days=91");
    assert_eq!(reply.json()["error"]["problems"][0]["path"], "/days");
    let reply = api.send("POST", "/v1/jobs", &[], None).unwrap();
    assert_eq!(reply.json()["error"]["problems"][0]["path"], "/video_url");
    let hook = api.post(
        "/v1/jobs",
        &json!({"video_url": PLAYGROUND_VIDEO, "webhook_url": "https://example.com/hook"}),
    );
    assert_eq!(
        hook.json()["error"]["problems"][0]["path"],
        "/webhook_url",
        "webhooks only go to loopback"
    );
    assert_eq!(job_count(&api), 0);
}

#[test]
fn no_credits_answers_402_and_creates_nothing() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.no_credits_key());
    let reply = api.post("/v1/jobs", &json!({"video_url": PLAYGROUND_VIDEO}));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (402, "insufficient_credits")
    );
    assert_eq!(
        job_count(&api),
        0,
        "an auto-start that cannot be paid creates no job"
    );
    let draft = create(
        &api,
        json!({"video_url": PLAYGROUND_VIDEO, "auto_start": false}),
    );
    let reply = api.post(
        &format!("/v1/jobs/{}/start", draft["id"].as_str().unwrap()),
        &json!({}),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (402, "insufficient_credits")
    );
}

#[test]
fn duration_comes_from_the_url_and_sets_the_credits() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let id = create_id(
        &api,
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration=8")}),
    );
    let job = api.wait_terminal(&id);
    assert_eq!(job["duration_seconds"], 8.0);
    assert_eq!(
        job["credits_used"].as_f64().unwrap(),
        8.0,
        "original: 60 per minute"
    );
    let default = create_id(&api, json!({"video_url": PLAYGROUND_VIDEO}));
    assert_eq!(
        api.wait_terminal(&default)["duration_seconds"],
        10.0,
        "10 s when nothing says"
    );
}

#[test]
fn progress_is_monotonic_while_processing() {
    let sandbox = sandbox(40.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let id = create_id(
        &api,
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration=8")}),
    );
    let seen = std::cell::RefCell::new(Vec::new());
    api.poll_until(&id, Duration::from_secs(10), |job| {
        if job["status"] == "processing" {
            seen.borrow_mut().push(job["progress"].as_f64().unwrap());
        }
        job["status"] == "completed"
    });
    let seen = seen.into_inner();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back: {seen:?}"
    );
    let distinct: HashSet<u64> = seen.iter().map(|p| *p as u64).collect();
    assert!(distinct.len() >= 3, "progress rises in steps: {seen:?}");
}

#[test]
fn failed_jobs_refund_and_restart() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let url = format!("{PLAYGROUND_VIDEO}?scenario=fail_once&error=decoder%20crashed");
    let id = create_id(&api, json!({"video_url": url}));
    let failed = api.wait_terminal(&id);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], "decoder crashed");
    assert_eq!(failed["billing_status"], "refunded");
    assert_eq!(failed["output_url"], Value::Null);

    let restarted = api.post(&format!("/v1/jobs/{id}/start"), &json!({}));
    assert_eq!(restarted.json()["status"], "processing");
    let done = api.wait_terminal(&id);
    assert_eq!(done["status"], "completed", "the restart completes");
    assert_eq!(done["error"], Value::Null);
    assert_eq!(done["billing_status"], "charged");
    let again = api.post(&format!("/v1/jobs/{id}/start"), &json!({}));
    assert_eq!(
        (again.status, again.code().as_str()),
        (400, "invalid_request"),
        "a completed job cannot start"
    );

    let usage = api.get("/v1/usage/summary?days=1").json();
    assert_eq!(
        (
            usage["total_jobs"].as_u64(),
            usage["completed_jobs"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(usage["credits_used"], 10.0);
    let events = api.get("/v1/usage/events?limit=10").json();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["job.charged", "job.refunded", "job.created"],
        "newest first"
    );
}

#[test]
fn stuck_and_slow_scenarios() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let stuck = create_id(
        &api,
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?scenario=stuck&duration=1")}),
    );
    let job = api.poll_until(&stuck, Duration::from_secs(5), |job| {
        job["progress"] == 50.0
    });
    assert_eq!(
        job["status"], "processing",
        "a stuck job stays processing at 50 %"
    );
    let normal = create_id(
        &api,
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration=5")}),
    );
    let slow = create_id(
        &api,
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration=5&scenario=slow")}),
    );
    api.wait_terminal(&normal);
    let slow_job = api.get(&format!("/v1/jobs/{slow}")).json();
    assert_ne!(
        slow_job["status"], "completed",
        "the slow job is still going when a normal one is done"
    );
    assert_eq!(api.wait_terminal(&slow)["status"], "completed");
}

/// An MP4 of `duration_ms`: the sandbox's minimal header and a little media data.
fn tiny_mp4(duration_ms: u32) -> Vec<u8> {
    let mut mdat = Vec::new();
    mdat.extend(1032u32.to_be_bytes());
    mdat.extend(b"mdat");
    mdat.extend((0..1024).map(|i| (i % 251) as u8));
    [minimal_mp4(1000, u64::from(duration_ms)), mdat].concat()
}

fn multipart(filename: &str, content_type: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sandboxtestboundary42";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend(data);
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(sandbox: &Sandbox, filename: &str, content_type: &str, data: &[u8]) -> (u16, Value) {
    let (header, body) = multipart(filename, content_type, data);
    let response = agent()
        .post(format!("{}/v1/uploads", sandbox.base_url()))
        .header("X-Api-Key", sandbox.demo_key())
        .header("Content-Type", header)
        .send(&body[..])
        .unwrap();
    let status = response.status().as_u16();
    let value: Value = response.into_body().read_json().unwrap();
    assert_schema(
        if status == 200 {
            "UploadResult"
        } else {
            "ErrorBody"
        },
        &value,
    );
    (status, value)
}

#[test]
fn uploads_are_stored_served_and_timed_from_the_mp4_header() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        max_upload_bytes: 4096,
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    let data = tiny_mp4(12_500);
    let (status, uploaded) = upload(&sandbox, "clip.mp4", "video/mp4", &data);
    assert_eq!(status, 200, "{uploaded}");
    assert_eq!(uploaded["size"], data.len() as u64);
    let served = agent()
        .get(uploaded["video_url"].as_str().unwrap())
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    assert_eq!(served, data, "the sandbox serves the stored file back");

    let id = create_id(&api, json!({"video_url": uploaded["video_url"]}));
    assert_eq!(
        api.wait_terminal(&id)["duration_seconds"],
        12.5,
        "duration from the mvhd box"
    );

    let (status, error) = upload(&sandbox, "notes.txt", "text/plain", b"hello");
    assert_eq!(
        (status, error["error"]["problems"][0]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, error) = upload(&sandbox, "big.mp4", "video/mp4", &vec![7u8; 5000]);
    assert_eq!(
        (status, error["error"]["problems"][0]["code"].as_str()),
        (413, Some("file_too_large"))
    );
    let stored: Vec<_> = std::fs::read_dir(sandbox.upload_dir()).unwrap().collect();
    assert_eq!(stored.len(), 1, "the refused uploads left nothing behind");
}

#[test]
fn outputs_support_ranges_expire_and_refresh() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        output_url_ttl_ms: 300,
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    let id = create_id(
        &api,
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration=2")}),
    );
    let job = api.wait_terminal(&id);
    let url = job["output_url"].as_str().unwrap().to_owned();
    let size = 2 * 200_000;

    let response = agent()
        .get(&url)
        .header("Range", "bytes=100-199")
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 206);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 100-199/{size}").as_str()
    );
    let part = response.into_body().read_to_vec().unwrap();
    let mut expected = vec![0u8; 100];
    output_bytes(&id, 100, &mut expected);
    assert_eq!(part, expected);
    let tail = agent()
        .get(&url)
        .header("Range", "bytes=-10")
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    assert_eq!(tail.len(), 10);
    assert_eq!(
        agent()
            .get(&url)
            .header("Range", format!("bytes={size}-"))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        416
    );

    let legacy = api.get(&format!("/api/download/{id}")).json();
    assert_eq!(
        legacy["download_url"], url,
        "the legacy route gives the current link"
    );

    // Bounded wait for the link to expire (its TTL is 300 ms of real time).
    let started = Instant::now();
    while agent().get(&url).call().unwrap().status().as_u16() != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the link expires"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fresh = api.get(&format!("/v1/jobs/{id}")).json();
    assert_ne!(
        fresh["output_url"],
        url.as_str(),
        "a new GET gives a new link"
    );
    assert_eq!(download_and_check(&fresh), size);
}

#[test]
fn legacy_download_before_completion_is_refused() {
    let sandbox = sandbox(1.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let id = create_id(
        &api,
        json!({"video_url": PLAYGROUND_VIDEO, "auto_start": false}),
    );
    let reply = api.get(&format!("/api/download/{id}"));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["message"], "Job not completed");
}

#[test]
fn truncated_download_breaks_the_connection() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let id = create_id(&api, json!({"video_url": PLAYGROUND_VIDEO}));
    let url = api.wait_terminal(&id)["output_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = agent()
        .get(&url)
        .header(FAULT_HEADER, "truncate")
        .call()
        .unwrap();
    let announced: u64 = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let read = response
        .into_body()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec();
    assert!(
        read.is_err(),
        "a body cut at half of {announced} bytes is an error for the reader"
    );
}

/// Webhook deliveries received: headers and raw body of each.
type Received = Arc<Mutex<Vec<(Headers, Vec<u8>)>>>;

/// Records webhook deliveries; answers `status` to each.
fn receiver(status: u16) -> (String, Received) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        server.server_addr().to_ip().unwrap().port()
    );
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let headers: Headers = request
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect();
            let mut body = Vec::new();
            std::io::Read::read_to_end(request.as_reader(), &mut body).unwrap();
            sink.lock().unwrap().push((headers, body));
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    (url, received)
}

fn wait_for(bound: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < bound,
            "condition not met within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn webhooks_are_signed_ordered_and_recorded() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let (url, received) = receiver(200);
    let id = create_id(
        &api,
        json!({"video_url": PLAYGROUND_VIDEO, "webhook_url": url}),
    );
    // Nobody polls: the sandbox's own timers fire the events.
    wait_for(Duration::from_secs(10), || {
        received.lock().unwrap().len() >= 2
    });
    let deliveries = received.lock().unwrap().clone();
    let now = Timestamp::from(std::time::SystemTime::now());
    let events: Vec<String> = deliveries
        .iter()
        .map(|(headers, body)| {
            let verified = webhook::verify(
                headers,
                body,
                sandbox.webhook_secret(),
                now,
                webhook::DEFAULT_TOLERANCE,
            )
            .expect("signed");
            assert_eq!(verified.data.id, id);
            assert_schema("WebhookPayload", &serde_json::from_slice(body).unwrap());
            verified.event.to_string()
        })
        .collect();
    assert_eq!(events, ["job.started", "job.completed"]);
    wait_for(Duration::from_secs(5), || {
        api.get(&format!("/v1/jobs/{id}")).json()["webhook_events"]["job.completed"]["status"]
            == "sent"
    });
}

#[test]
fn one_jobs_deliveries_keep_their_order_while_many_clients_poll() {
    // Every poll advances the state; polls from several threads at once advance it
    // concurrently, and a job's `job.completed` must still never overtake its `job.started`.
    let sandbox = sandbox(1000.0);
    let (url, received) = receiver(200);
    let ids: Vec<String> = (0..30)
        .map(|n| {
            let api = Api::new(&sandbox, sandbox.demo_key());
            let video = format!("{PLAYGROUND_VIDEO}?duration=1.{n:02}");
            create_id(&api, json!({"video_url": video, "webhook_url": url}))
        })
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let api = Api::new(&sandbox, sandbox.demo_key());
                let started = Instant::now();
                while received.lock().unwrap().len() < 2 * ids.len() {
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "deliveries missing"
                    );
                    for id in &ids {
                        api.get(&format!("/v1/jobs/{id}"));
                    }
                }
            });
        }
    });
    let order: Vec<(String, String)> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            let payload: Value = serde_json::from_slice(body).unwrap();
            (
                payload["data"]["id"].as_str().unwrap().to_owned(),
                payload["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for id in &ids {
        let events: Vec<&str> = order
            .iter()
            .filter(|(job, _)| job == id)
            .map(|(_, event)| event.as_str())
            .collect();
        assert_eq!(events, ["job.started", "job.completed"], "job {id}");
    }
}

#[test]
fn failing_webhook_receivers_are_retried_then_marked_failed() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        webhook_retries: 2,
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    let (url, received) = receiver(500);
    let body =
        json!({"video_url": format!("{PLAYGROUND_VIDEO}?scenario=fail"), "webhook_url": url});
    let id = create(&api, body)["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/jobs/{id}");
    wait_for(Duration::from_secs(10), || {
        api.get(&path).json()["webhook_events"]["job.failed"]["status"] == "failed"
    });
    let state = api.get(&path).json()["webhook_events"]["job.failed"].clone();
    assert_eq!(
        (state["attempts"].as_u64(), state["last_status"].as_u64()),
        (Some(3), Some(500)),
        "{state}"
    );
    let failed: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(headers, _)| headers.get(webhook::EVENT_HEADER) == Some("job.failed"))
        .map(|(headers, _)| headers.get(webhook::DELIVERY_ID_HEADER).unwrap().to_owned())
        .collect();
    assert_eq!(failed.len(), 3, "one attempt and two retries");
    assert!(
        failed.iter().all(|d| *d == failed[0]),
        "retries keep the delivery id, so receivers can drop duplicates"
    );
}

fn faulty_deliveries(faults: FaultConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed: 1000.0,
        faults,
        ..SandboxConfig::default()
    })
    .unwrap()
}

#[test]
fn delivery_faults_drop_delay_and_redeliver_as_configured() {
    // Dropped: nothing arrives, and the job says so.
    let sandbox = faulty_deliveries(FaultConfig {
        webhook_drop_rate: 1.0,
        ..FaultConfig::default()
    });
    let api = Api::new(&sandbox, sandbox.demo_key());
    let (url, received) = receiver(200);
    let id = create_id(
        &api,
        json!({"video_url": PLAYGROUND_VIDEO, "webhook_url": url}),
    );
    let path = format!("/v1/jobs/{id}");
    wait_for(Duration::from_secs(10), || {
        api.get(&path).json()["webhook_events"]["job.completed"]["status"] == "dropped"
    });
    assert_eq!(
        api.get(&path).json()["webhook_events"]["job.started"]["status"],
        "dropped"
    );
    assert!(received.lock().unwrap().is_empty(), "no delivery was sent");

    // Redelivered: each event twice, with one delivery id.
    let sandbox = faulty_deliveries(FaultConfig {
        webhook_redeliver_rate: 1.0,
        ..FaultConfig::default()
    });
    let api = Api::new(&sandbox, sandbox.demo_key());
    let (url, received) = receiver(200);
    let id = create_id(
        &api,
        json!({"video_url": PLAYGROUND_VIDEO, "webhook_url": url}),
    );
    wait_for(Duration::from_secs(10), || {
        received.lock().unwrap().len() >= 4
    });
    let ids: Vec<(String, String)> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, _)| {
            (
                headers.get(webhook::EVENT_HEADER).unwrap().to_owned(),
                headers.get(webhook::DELIVERY_ID_HEADER).unwrap().to_owned(),
            )
        })
        .collect();
    for event in ["job.started", "job.completed"] {
        let of_event: Vec<&String> = ids
            .iter()
            .filter(|(e, _)| e == event)
            .map(|(_, d)| d)
            .collect();
        assert_eq!(of_event.len(), 2, "{event} sent twice: {ids:?}");
        assert_eq!(of_event[0], of_event[1], "with one delivery id");
    }
    wait_for(Duration::from_secs(5), || {
        api.get(&format!("/v1/jobs/{id}")).json()["webhook_events"]["job.completed"]["redelivered"]
            == true
    });

    // Delayed: held back at least the configured time.
    let sandbox = faulty_deliveries(FaultConfig {
        webhook_delay_rate: 1.0,
        webhook_delay_ms: 300,
        ..FaultConfig::default()
    });
    let api = Api::new(&sandbox, sandbox.demo_key());
    let (url, received) = receiver(200);
    let created = Instant::now();
    create_id(
        &api,
        json!({"video_url": PLAYGROUND_VIDEO, "webhook_url": url}),
    );
    wait_for(Duration::from_secs(10), || {
        !received.lock().unwrap().is_empty()
    });
    assert!(created.elapsed() >= Duration::from_millis(300));
}

#[test]
fn planned_faults_apply_the_given_number_of_times() {
    let sandbox = sandbox(1.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let plan = [(FAULT_HEADER, "status=503; times=2; id=planned")];
    let statuses: Vec<u16> = (0..3)
        .map(|_| api.send("GET", "/v1/jobs", &plan, None).unwrap().status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    let reply = api
        .send(
            "GET",
            "/v1/jobs",
            &[(FAULT_HEADER, "malformed; id=m")],
            None,
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        serde_json::from_slice::<Value>(&reply.bytes).is_err(),
        "the body is not JSON"
    );
    let started = Instant::now();
    api.send(
        "GET",
        "/v1/jobs",
        &[(FAULT_HEADER, "latency-ms=150; id=l")],
        None,
    )
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    let typo = api
        .send("GET", "/v1/jobs", &[(FAULT_HEADER, "explode")], None)
        .unwrap();
    assert_eq!(typo.status, 400, "an unknown fault is refused, not ignored");
    let log = sandbox.request_log();
    assert!(log.iter().any(|r| r.fault.as_deref() == Some("status=503")));
}

#[test]
fn configured_faults_hit_api_routes_only() {
    let sandbox = Sandbox::start(SandboxConfig {
        faults: FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    for _ in 0..10 {
        let reply = api.get("/v1/jobs");
        assert!([500, 502, 503].contains(&reply.status), "{}", reply.status);
    }
    assert_eq!(api.get("/health").status, 200);
}

#[test]
fn openapi_describes_every_route_served() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let document = api.get("/openapi.json").json();
    let paths = document["paths"].as_object().unwrap();
    let served: HashSet<(String, String)> = api_routes()
        .into_iter()
        .map(|(m, p)| (m.to_ascii_lowercase(), p.to_owned()))
        .collect();
    let documented: HashSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    assert_eq!(
        served, documented,
        "the sandbox serves exactly the documented routes"
    );

    let id = create_id(&api, json!({"video_url": PLAYGROUND_VIDEO}));
    api.wait_terminal(&id);
    for (method, path) in &documented {
        let concrete = path.replace("{job_id}", &id);
        let body = (method == "post").then(|| json!({"video_url": PLAYGROUND_VIDEO}));
        let reply = api
            .send(&method.to_ascii_uppercase(), &concrete, &[], body.as_ref())
            .unwrap();
        let answer = String::from_utf8_lossy(&reply.bytes);
        assert!(
            !answer.contains("No such route") && reply.status != 405,
            "{method} {path} is served: {} {answer}",
            reply.status
        );
    }
    assert_eq!(api.get("/v1/nothing-here").status, 404);
}

#[test]
fn many_concurrent_pollers_are_served_without_errors() {
    let sandbox = sandbox(50.0);
    let api = Arc::new(Api::new(&sandbox, sandbox.demo_key()));
    let ids: Vec<String> = (0..16)
        .map(|i| {
            create_id(
                &api,
                json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration={}", 5 + i)}),
            )
        })
        .collect();
    let threads = 32;
    let polls_each = 150;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (api, ids) = (api.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                for n in 0..polls_each {
                    match api.send(
                        "GET",
                        &format!("/v1/jobs/{}", ids[(t + n) % ids.len()]),
                        &[],
                        None,
                    ) {
                        Ok(reply) if reply.status == 200 => {}
                        Ok(reply) => errors.push(format!("HTTP {}", reply.status)),
                        Err(error) => errors.push(error.to_string()),
                    }
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    let total = threads * polls_each;
    eprintln!(
        "load: {total} polls from {threads} threads in {:.2} s = {:.0} requests/s (debug build, schema-checked client)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "{} of {total} polls failed, first: {:?}",
        errors.len(),
        errors.first()
    );
}
