//! The sandbox as a server facing hostile input: unusable configurations, slow clients,
//! redirecting webhook receivers, and secrets that must not reach its log.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Api, PLAYGROUND_VIDEO};
use removebgvideo_sandbox::{FaultConfig, KeyConfig, Sandbox, SandboxConfig};
use serde_json::json;

#[test]
fn unusable_numbers_in_the_configuration_are_refused_naming_the_field() {
    let base = SandboxConfig::default;
    let key = |credits: f64, rate_per_second: f64| KeyConfig {
        key: "rbv_test".into(),
        credits,
        rate_per_second,
        burst: 1,
    };
    let cases: Vec<(SandboxConfig, &str)> = vec![
        (
            SandboxConfig {
                speed: 1e20,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: 0.0,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: -2.0,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: f64::NAN,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: f64::INFINITY,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                default_duration_secs: -1.0,
                ..base()
            },
            "default_duration_secs",
        ),
        (
            SandboxConfig {
                default_duration_secs: f64::NAN,
                ..base()
            },
            "default_duration_secs",
        ),
        (
            SandboxConfig {
                default_duration_secs: f64::INFINITY,
                ..base()
            },
            "default_duration_secs",
        ),
        (
            SandboxConfig {
                output_url_ttl_ms: u64::MAX,
                ..base()
            },
            "output_url_ttl_ms",
        ),
        (
            SandboxConfig {
                webhook_retries: u32::MAX,
                ..base()
            },
            "webhook_retries",
        ),
        (
            SandboxConfig {
                keys: vec![key(f64::NAN, 1.0)],
                ..base()
            },
            "keys[0].credits",
        ),
        (
            SandboxConfig {
                keys: vec![key(-5.0, 1.0)],
                ..base()
            },
            "keys[0].credits",
        ),
        (
            SandboxConfig {
                keys: vec![key(5.0, f64::INFINITY)],
                ..base()
            },
            "keys[0].rate_per_second",
        ),
        (
            SandboxConfig {
                faults: FaultConfig {
                    error_rate: 2.0,
                    ..FaultConfig::default()
                },
                ..base()
            },
            "faults.error_rate",
        ),
        (
            SandboxConfig {
                header_read_timeout_ms: 0,
                ..base()
            },
            "header_read_timeout_ms",
        ),
        (
            SandboxConfig {
                max_connections: 0,
                ..base()
            },
            "max_connections",
        ),
        (
            SandboxConfig {
                webhook_secret: " ".into(),
                ..base()
            },
            "webhook_secret",
        ),
    ];
    for (config, field) in cases {
        let checked = config.check().expect_err(field);
        assert_eq!(checked.problems.len(), 1, "{field}: {:?}", checked.problems);
        assert!(
            checked.problems[0]
                .message
                .starts_with(&format!("{field} must be")),
            "{}",
            checked.message
        );
        let error = Sandbox::start(config).expect_err(field);
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{field}");
        let message = error.to_string();
        assert!(
            message.contains(field) && message.contains("must be"),
            "{field}: {message}"
        );
    }
    SandboxConfig::default()
        .check()
        .expect("the defaults are usable");
    let fastest = SandboxConfig {
        speed: 1e6,
        ..base()
    };
    Sandbox::start(fastest)
        .expect("the fastest clock accepted")
        .shutdown();
}

#[test]
fn an_absurd_duration_hint_neither_panics_nor_breaks_later_requests() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1e6,
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    for hint in ["1e300", "3e7&scenario=slow"] {
        let body =
            json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration={hint}"), "model": "pro"});
        let reply = api
            .send("POST", "/v1/jobs", &[], Some(&body))
            .expect("an answer, not a dropped connection");
        assert!(
            [200, 402].contains(&reply.status),
            "{hint}: {}",
            reply.status
        );
    }
    // The state lock is not poisoned: the clock reads and the lifecycle still work.
    for _ in 0..3 {
        assert_eq!(api.get("/v1/jobs").status, 200);
    }
}

/// Connects and sends part of a request's headers, never their end.
fn half_open(sandbox: &Sandbox) -> TcpStream {
    let address = sandbox.base_url().trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: sandbox\r\nX-Slow: ")
        .unwrap();
    stream
}

/// Reads until the server closes the connection; fails if it is still open after `bound`.
fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> (Vec<u8>, Duration) {
    stream.set_read_timeout(Some(bound)).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // Closed with our bytes unread: a reset, still the server's doing.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection within {bound:?}: {e}"),
    }
    (answer, started.elapsed())
}

#[test]
fn half_open_and_idle_connections_are_closed_after_the_header_timeout() {
    let sandbox = Sandbox::start(SandboxConfig {
        header_read_timeout_ms: 300,
        ..SandboxConfig::default()
    })
    .unwrap();
    let mut slow = half_open(&sandbox);
    let (answer, waited) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A kept-alive connection that sends nothing after its first request.
    let address = sandbox.base_url().trim_start_matches("http://");
    let mut idle = TcpStream::connect(address).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        .unwrap();
    let (answer, waited) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "answered first"
    );
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
}

/// `GET /health` on a connection of its own, closed after the answer; the whole answer.
fn health(sandbox: &Sandbox, bound: Duration) -> String {
    let address = sandbox.base_url().trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut stream, bound);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let sandbox = Sandbox::start(SandboxConfig {
        max_connections: 2,
        ..SandboxConfig::default()
    })
    .unwrap();
    let first = half_open(&sandbox);
    let _second = half_open(&sandbox);
    let address = sandbox.base_url().trim_start_matches("http://");
    let mut third = TcpStream::connect(address).unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Proving an absence takes a wait: a short one, as long as the answer would take many times.
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = third.read(&mut byte);
    assert!(
        early
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "served beyond the cap of 2: {early:?}"
    );
    drop(first);
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

/// Polls `done` every few milliseconds, failing after `bound`.
fn wait_for(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_thousand_half_open_connections_do_not_stop_health() {
    let sandbox = Sandbox::start(SandboxConfig {
        header_read_timeout_ms: 60_000,
        ..SandboxConfig::default()
    })
    .unwrap();
    let held: Vec<TcpStream> = (0..1000).map(|_| half_open(&sandbox)).collect();
    wait_for("all 1000 are being served", Duration::from_secs(10), || {
        sandbox.open_connections() >= 1000
    });
    let started = Instant::now();
    let answer = health(&sandbox, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = started.elapsed();
    eprintln!("/health answered in {waited:?} beside 1000 half-open connections");
    assert!(waited < Duration::from_secs(5));
    drop(held);
    wait_for(
        "the closed ones are released",
        Duration::from_secs(10),
        || sandbox.open_connections() == 0,
    );
}

/// A local HTTP server answering every request with `status` and `headers`; counts requests.
fn server(
    status: u16,
    headers: Vec<(&'static str, String)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        server.server_addr().to_ip().unwrap().port()
    );
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut response = tiny_http::Response::empty(status);
            for (name, value) in &headers {
                response.add_header(tiny_http::Header::from_bytes(*name, value.as_str()).unwrap());
            }
            let _ = request.respond(response);
        }
    });
    (url, count)
}

#[test]
fn webhook_deliveries_do_not_follow_redirects() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        webhook_retries: 0,
        ..SandboxConfig::default()
    })
    .unwrap();
    // The loopback rule checks the first URL only: a redirect could send it anywhere.
    let (elsewhere, reached) = server(200, vec![]);
    let (redirecting, asked) = server(302, vec![("Location", elsewhere)]);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let created = api.post(
        "/v1/jobs",
        &json!({"video_url": PLAYGROUND_VIDEO, "webhook_url": redirecting}),
    );
    assert_eq!(created.status, 200);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/jobs/{id}");
    wait_for(
        "the completion delivery ends",
        Duration::from_secs(10),
        || {
            let status = &api.get(&path).json()["webhook_events"]["job.completed"]["status"];
            status == "failed" || status == "sent"
        },
    );
    let state = api.get(&path).json()["webhook_events"]["job.completed"].clone();
    assert_eq!(state["status"], "failed", "{state}");
    assert_eq!(state["last_status"], 302, "{state}");
    assert_eq!(state["attempts"], 1, "{state}");
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect target got nothing"
    );
}

#[test]
fn output_tokens_query_strings_and_call_headers_stay_out_of_the_log() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    let id = api
        .post("/v1/jobs", &json!({"video_url": PLAYGROUND_VIDEO}))
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = api.wait_terminal(&id);
    let url = job["output_url"].as_str().unwrap().to_owned();
    let token = common::output_token(&url);
    assert!(token.len() >= 16, "{url}");
    let presigned = format!("{url}?X-Amz-Signature=s3cr3tsignature");
    let reply = common::agent()
        .get(&presigned)
        .header("Authorization", "Bearer s3cr3tbearer")
        .header("X-Custom", "s3cr3tcustom")
        .header("X-Sandbox-Fault", "latency-ms=1; id=s3cr3tid")
        .call()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let unknown = format!(
        "{}/sandbox/outputs/{id}/{}0.webm",
        sandbox.base_url(),
        &token[1..]
    );
    assert_eq!(
        common::agent()
            .get(&unknown)
            .call()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    // A short key is shown by half, never whole.
    let short = Api::new(&sandbox, "s3cr3t");
    assert_eq!(short.get("/v1/jobs").status, 401);

    let log = sandbox.request_log();
    let lines: Vec<String> = log
        .iter()
        .map(|record| serde_json::to_string(record).unwrap())
        .collect();
    let outputs: Vec<&str> = log
        .iter()
        .filter(|r| r.path.starts_with("/sandbox/outputs/"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        outputs,
        [
            format!("/sandbox/outputs/{id}/<redacted>.webm?<redacted>"),
            format!("/sandbox/outputs/{id}/<redacted>.webm"),
        ]
    );
    for line in &lines {
        for secret in [token.as_str(), &token[1..], "s3cr3t", sandbox.demo_key()] {
            assert!(!line.contains(secret), "{secret:?} in the log: {line}");
        }
    }
    assert!(
        log.iter().any(|r| r.key_prefix.as_deref() == Some("s3c…")),
        "{lines:#?}"
    );
}

#[test]
fn shutdown_removes_the_uploads_folder_at_once() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let uploads = sandbox.upload_dir().to_owned();
    std::fs::write(uploads.join("left-behind"), b"x").unwrap();
    sandbox.shutdown();
    assert!(!uploads.exists(), "{}", uploads.display());
}
