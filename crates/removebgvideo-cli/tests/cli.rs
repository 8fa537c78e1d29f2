//! The `removebgvideo` binary run as a user runs it, against a sandbox: every command, its
//! `--json` output, its exit status, interruption, the sandbox command and the playground.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use removebgvideo_sandbox::{Sandbox, SandboxConfig, output_bytes};
use serde_json::Value;

const VIDEO: &str = "https://cdn.removebgvideo.com/uploads/your-video.mp4";

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_removebgvideo"));
    command.env_remove("REMOVEBGVIDEO_API_KEY");
    command
}

/// Runs the binary against a sandbox with the demo key.
fn cli(sandbox: &Sandbox, args: &[&str]) -> Output {
    binary()
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            sandbox.demo_key(),
        ])
        .args(args)
        .output()
        .expect("the binary runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit status")
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rbv-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fast_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed: 1000.0,
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn assert_output_file(job_id: &str, path: &Path) {
    let bytes = std::fs::read(path).expect("the output file");
    let mut expected = vec![0u8; bytes.len()];
    output_bytes(job_id, 0, &mut expected);
    assert!(
        !bytes.is_empty() && bytes == expected,
        "{} is complete and intact",
        path.display()
    );
}

#[test]
fn every_endpoint_command_with_json_output() {
    let sandbox = fast_sandbox();
    let dir = fresh_dir("endpoints");
    let file = dir.join("clip.mp4");
    std::fs::write(&file, vec![3u8; 50_000]).unwrap();

    let uploaded = json(&cli(
        &sandbox,
        &["--json", "upload", file.to_str().unwrap()],
    ));
    assert_eq!(uploaded["size"], 50_000);
    let video_url = uploaded["video_url"].as_str().unwrap();

    // Sent twice with one idempotency key: the second must answer the same job.
    let create_args = [
        "--json",
        "jobs",
        "create",
        "--video-url",
        video_url,
        "--no-start",
        "--model",
        "original",
        "--background",
        "#00ff00",
        "--output-format",
        "mp4",
        "--metadata",
        r#"{"order":"A-1"}"#,
        "--idempotency-key",
        "cli-key-1",
    ];
    let created = cli(&sandbox, &create_args);
    assert_eq!(
        code(&created),
        0,
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created = json(&created);
    assert_eq!(created["status"], "created");
    let id = created["id"].as_str().unwrap();
    let again = json(&cli(&sandbox, &create_args));
    assert_eq!(
        again["id"], id,
        "the same idempotency key gives the same job"
    );

    let started = json(&cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "start",
            id,
            "--model",
            "pro",
            "--text-prompt",
            "the person",
        ],
    ));
    assert_eq!(started["status"], "processing");
    let waited = json(&cli(&sandbox, &["--json", "jobs", "wait", id]));
    assert_eq!(waited["status"], "completed");
    assert_eq!(
        json(&cli(&sandbox, &["--json", "jobs", "get", id]))["model"],
        "pro"
    );
    let listed = json(&cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "list",
            "--limit",
            "5",
            "--status",
            "completed",
        ],
    ));
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);

    let out = dir.join("out.mp4");
    let downloaded = json(&cli(
        &sandbox,
        &["--json", "jobs", "download", id, out.to_str().unwrap()],
    ));
    assert_eq!(
        downloaded["bytes"].as_u64().unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
    assert_output_file(id, &out);

    let summary = json(&cli(
        &sandbox,
        &["--json", "usage", "summary", "--days", "7"],
    ));
    assert_eq!(summary["completed_jobs"], 1);
    let events = json(&cli(
        &sandbox,
        &["--json", "usage", "events", "--limit", "10"],
    ));
    assert!(!events["events"].as_array().unwrap().is_empty());

    let human = cli(&sandbox, &["jobs", "get", id]);
    assert!(String::from_utf8_lossy(&human.stdout).starts_with(&format!("{id}  completed")));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn exit_statuses_tell_usage_api_job_and_timeout_errors_apart() {
    let sandbox = fast_sandbox();
    let bad_key = binary()
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            "rbv_wrong",
            "--json",
            "jobs",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&bad_key), 3);
    let error = json(&bad_key);
    assert_eq!(error["error"]["code"], "invalid_api_key");
    assert!(
        error["error"]["request_id"].is_string(),
        "errors carry the request id"
    );

    let human = binary()
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            "rbv_wrong",
            "jobs",
            "list",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stderr);
    assert!(
        text.contains("invalid_api_key") && text.contains("request id:"),
        "{text}"
    );

    let invalid = cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "create",
            "--video-url",
            VIDEO,
            "--model",
            "ultra",
            "--output-format",
            "avi",
        ],
    );
    assert_eq!(code(&invalid), 2);
    let problems = json(&invalid)["error"]["problems"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(problems, 2, "one problem per field");
    assert_eq!(
        code(&cli(
            &sandbox,
            &[
                "jobs",
                "create",
                "--video-url",
                VIDEO,
                "--background",
                "plaid"
            ]
        )),
        2
    );
    assert_eq!(
        code(&binary().args(["jobs", "get"]).output().unwrap()),
        2,
        "a missing argument is a usage error"
    );
    assert_eq!(
        code(
            &binary()
                .args(["--base-url", sandbox.base_url(), "jobs", "get", "x"])
                .output()
                .unwrap()
        ),
        2,
        "no key"
    );

    let failing = json(&cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "create",
            "--video-url",
            &format!("{VIDEO}?scenario=fail"),
        ],
    ));
    let failed = cli(
        &sandbox,
        &["--json", "jobs", "wait", failing["id"].as_str().unwrap()],
    );
    assert_eq!(code(&failed), 4);
    assert_eq!(json(&failed)["error"]["job"]["status"], "failed");

    let stuck = json(&cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "create",
            "--video-url",
            &format!("{VIDEO}?scenario=stuck"),
        ],
    ));
    let timed_out = cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "wait",
            stuck["id"].as_str().unwrap(),
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code(&timed_out), 5);
    assert_eq!(json(&timed_out)["error"]["code"], "wait_timeout");
}

/// Waits at most `limit` for `child`; kills it and fails if it is still running (a command
/// that should have refused its arguments at once must not hang the suite instead).
fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn numbers_that_cannot_be_durations_are_usage_errors_naming_the_flag() {
    let sandbox = fast_sandbox();
    let base = [
        "--base-url",
        sandbox.base_url(),
        "--api-key",
        sandbox.demo_key(),
    ];
    let video = format!("--video-url={VIDEO}");
    let mut cases: Vec<(Vec<String>, &str, &str)> = Vec::new();
    for value in ["1e20", "inf", "-inf", "NaN", "-1", "0", "31536001"] {
        cases.push((
            vec![
                "jobs".into(),
                "wait".into(),
                "job_x".into(),
                format!("--timeout={value}"),
            ],
            "/timeout",
            "--timeout must be a number of seconds above 0",
        ));
    }
    cases.push((
        vec!["run".into(), video.clone(), "--timeout=1e20".into()],
        "/timeout",
        "--timeout must be a number of seconds above 0",
    ));
    for value in ["0", "-1", "1e20", "inf", "NaN"] {
        // The embedded sandbox: the speed also sets its polling intervals.
        cases.push((
            vec!["playground".into(), format!("--speed={value}")],
            "/speed",
            "--speed must be a number above 0",
        ));
        cases.push((
            vec![
                "sandbox".into(),
                "--port=0".into(),
                format!("--speed={value}"),
            ],
            "/speed",
            "--speed must be a number above 0",
        ));
    }
    for (args, path, rule) in cases {
        let child = binary()
            .args(base)
            .arg("--json")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = finish_within(child, Duration::from_secs(20), &args.join(" "));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert_eq!(code(&output), 2, "{args:?}: {stderr}");
        let error = &json(&output)["error"];
        assert_eq!(error["code"], "validation_error", "{args:?}");
        let problem = &error["problems"][0];
        assert_eq!(problem["path"], path, "{args:?}");
        let message = problem["message"].as_str().unwrap();
        assert!(message.starts_with(rule), "{args:?}: {message}");
    }
    // Without --json the same rule is on stderr.
    let human = cli(&sandbox, &["jobs", "wait", "job_x", "--timeout=1e20"]);
    assert_eq!(code(&human), 2);
    assert!(
        String::from_utf8_lossy(&human.stderr).contains("--timeout must be"),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
}

#[test]
fn run_leaves_a_complete_file_and_prints_one_line_off_a_terminal() {
    let sandbox = fast_sandbox();
    let dir = fresh_dir("run");
    let out = dir.join("out.webm");
    let output = cli(
        &sandbox,
        &[
            "run",
            "--video-url",
            &format!("{VIDEO}?duration=5"),
            "--output",
            out.to_str().unwrap(),
            "--model",
            "light",
        ],
    );
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "one clean line: {stdout}");
    assert!(
        stdout.starts_with("completed job_") && stdout.contains("out.webm (1000000 bytes)"),
        "{stdout}"
    );
    let job_id = stdout.split_whitespace().nth(1).unwrap();
    assert_output_file(job_id, &out);
    let again = cli(
        &sandbox,
        &[
            "run",
            "--video-url",
            VIDEO,
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        code(&again),
        1,
        "an existing output is not replaced without --overwrite"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `removebgvideo run`, writing to `out`.
fn run_command(sandbox: &Sandbox, video_url: &str, out: &Path) -> Command {
    let mut command = binary();
    command
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            sandbox.demo_key(),
            "run",
            "--video-url",
            video_url,
            "--output",
        ])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// `removebgvideo run` in the background, writing to `out`.
fn spawn_run(sandbox: &Sandbox, video_url: &str, out: &Path) -> Child {
    run_command(sandbox, video_url, out).spawn().unwrap()
}

/// The lines a child writes on stderr, as they come (read on a thread, so a test can wait for
/// one with a bound).
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the notice the CLI prints once the main thread has handled a first signal:
/// signals sent closer together than that can merge into one (a pending signal is a flag).
fn wait_for_stop_notice(lines: &std::sync::mpsc::Receiver<String>) {
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        let left = limit.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("stopping") => return,
            Ok(_) => {}
            Err(e) => panic!("no stop notice on stderr within 10 s ({e})"),
        }
    }
}

fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn part_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

/// Polls `done` every 5 ms until it holds; fails naming `what` after `limit`.
fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_interrupted_run_leaves_no_partial_file() {
    let sandbox = fast_sandbox();
    let dir = fresh_dir("interrupt");
    // While processing.
    let out = dir.join("stuck.webm");
    let child = spawn_run(&sandbox, &format!("{VIDEO}?scenario=stuck"), &out);
    wait_for("the run got going", Duration::from_secs(10), || {
        sandbox
            .request_log()
            .iter()
            .filter(|r| r.path.starts_with("/v1/jobs/"))
            .count()
            >= 2
    });
    interrupt(&child);
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130));
    assert!(!out.exists());

    // In the middle of a large download.
    let out = dir.join("big.webm");
    let child = spawn_run(&sandbox, &format!("{VIDEO}?duration=3000"), &out);
    wait_for("the download began", Duration::from_secs(20), || {
        !part_files(&dir).is_empty()
    });
    interrupt(&child);
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130));
    assert!(!out.exists(), "nothing at the target path");
    assert!(
        part_files(&dir).is_empty(),
        "and no part file left beside it"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A sandbox that answers every request (API and output alike) `latency_ms` late, so a
/// command is surely blocked inside a request, its part file already on disk, when a signal
/// arrives.
fn slow_sandbox(latency_ms: u64) -> Sandbox {
    Sandbox::start(SandboxConfig {
        speed: 1000.0,
        faults: removebgvideo_sandbox::FaultConfig {
            latency_ms,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .unwrap()
}

/// Starts a run into `dir` against a slow sandbox, waits for its part file, sends `signals`
/// and returns the exit status and how long the process took to end after the last one.
fn signalled_download(name: &str, signals: &[&str]) -> (Option<i32>, Duration, PathBuf) {
    let sandbox = slow_sandbox(700);
    let dir = fresh_dir(name);
    let out = dir.join("out.webm");
    let mut child = run_command(&sandbox, &format!("{VIDEO}?duration=5"), &out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    wait_for("the download began", Duration::from_secs(30), || {
        !part_files(&dir).is_empty()
    });
    for (i, signal) in signals.iter().enumerate() {
        if i > 0 {
            wait_for_stop_notice(&lines);
        }
        send_signal(&child, signal);
    }
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{signals:?}: the run did not end within 20 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(!out.exists(), "{signals:?}: nothing at the target path");
    (status.code(), sent.elapsed(), dir)
}

#[test]
fn a_second_ctrl_c_ends_promptly_through_the_normal_path() {
    let (code, took, dir) = signalled_download("interrupt-twice", &["INT", "INT"]);
    assert_eq!(code, Some(130), "exit status of an interrupt");
    assert!(took < Duration::from_secs(5), "promptly: {took:?}");
    assert!(
        part_files(&dir).is_empty(),
        "the download's guard removed its part file: {:?}",
        part_files(&dir)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_cancels_like_ctrl_c_and_exits_143() {
    let (code, took, dir) = signalled_download("terminate", &["TERM"]);
    assert_eq!(code, Some(143), "128 + SIGTERM");
    assert!(took < Duration::from_secs(5), "promptly: {took:?}");
    assert!(
        part_files(&dir).is_empty(),
        "the download's guard removed its part file: {:?}",
        part_files(&dir)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `jobs get` against a server that accepts and never answers, once the request is out (the
/// command is inside it, its signal handling long installed); the connection is kept open.
fn blocked_jobs_get() -> (std::process::Child, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let child = binary()
        .args([
            "--base-url",
            &base_url,
            "--api-key",
            "rbv_x",
            "--json",
            "jobs",
            "get",
            "job_x",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (connection, _) = listener.accept().unwrap();
    (child, connection)
}

#[test]
fn a_second_ctrl_c_stops_waiting_for_a_request_that_never_answers() {
    // A server that accepts and never answers: the request stays blocked (up to the client's
    // 60 s request timeout) whatever the first Ctrl-C cancels; the second closes the
    // connection, and the call ends cancelled before the grace runs out.
    let (mut child, _connection) = blocked_jobs_get();
    let lines = stderr_lines(&mut child);
    send_signal(&child, "INT");
    wait_for_stop_notice(&lines);
    send_signal(&child, "INT");
    let sent = Instant::now();
    let output = finish_within(child, Duration::from_secs(15), "a blocked jobs get");
    assert_eq!(code(&output), 130);
    assert!(
        sent.elapsed() < Duration::from_secs(6),
        "{:?}",
        sent.elapsed()
    );
    let error = &json(&output)["error"];
    assert_eq!(error["code"], "cancelled");
    // Through the normal path: the second signal closed the blocked connection, so the call
    // itself ended cancelled, without the grace running out.
    assert!(
        !error["message"]
            .as_str()
            .unwrap()
            .contains("without waiting"),
        "{error}"
    );
}

#[test]
fn webhooks_verify_accepts_a_signed_delivery_and_rejects_a_tampered_one() {
    use removebgvideo_core::{Timestamp, webhook};
    let dir = fresh_dir("webhooks");
    let body = br#"{"event":"job.completed","data":{"id":"job_9","status":"completed","output_url":"https://x/y.webm"}}"#;
    let timestamp = webhook::format_timestamp(Timestamp::from(std::time::SystemTime::now()));
    let headers = serde_json::json!({
        "X-Webhook-Event": "job.completed",
        "X-Webhook-Delivery-Id": "dlv_1",
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": webhook::sign("whsec_cli", &timestamp, body),
    });
    std::fs::write(dir.join("headers.json"), headers.to_string()).unwrap();
    std::fs::write(dir.join("body.json"), body).unwrap();
    let verify = |secret: &str| {
        binary()
            .args([
                "--json",
                "webhooks",
                "verify",
                "--secret",
                secret,
                "--headers",
            ])
            .arg(dir.join("headers.json"))
            .arg("--body")
            .arg(dir.join("body.json"))
            .output()
            .unwrap()
    };
    let ok = verify("whsec_cli");
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stdout));
    assert_eq!(json(&ok)["data"]["id"], "job_9");
    let bad = verify("whsec_other");
    assert_eq!(code(&bad), 1);
    assert_eq!(json(&bad)["error"]["code"], "webhook_invalid_signature");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_sandbox_command_serves_until_interrupted() {
    let mut server = binary()
        .args(["sandbox", "--port", "0", "--speed", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    banner.read_line(&mut line).unwrap();
    let base_url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let dir = fresh_dir("sandbox-cmd");
    let out = dir.join("out.webm");
    let run = binary()
        .args([
            "--base-url",
            &base_url,
            "--api-key",
            removebgvideo_sandbox::DEMO_KEY,
            "--json",
            "run",
            "--video-url",
            &format!("{VIDEO}?duration=3"),
            "--output",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(code(&run), 0, "{}", String::from_utf8_lossy(&run.stderr));
    let result = json(&run);
    assert_output_file(result["job"]["id"].as_str().unwrap(), &out);
    interrupt(&server);
    assert_eq!(
        server.wait().unwrap().code(),
        Some(0),
        "a clean stop on Ctrl-C"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn playground_on_the_embedded_sandbox_passes_every_check() {
    let dir = fresh_dir("playground");
    let (report_json, report_md) = (dir.join("report.json"), dir.join("report.md"));
    let started = Instant::now();
    let output = binary()
        .args(["playground", "--report-json"])
        .arg(&report_json)
        .arg("--report-md")
        .arg(&report_md)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        code(&output),
        0,
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "under a minute"
    );
    assert!(
        printed.contains("SLA baseline")
            && printed.contains("original")
            && printed.contains("human"),
        "{printed}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_json).unwrap()).unwrap();
    let checks: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("authentication", "pass"),
            ("rate_limits", "pass"),
            ("idempotency", "pass"),
            ("observability", "pass"),
            ("failure_branch", "pass"),
            ("timeout", "pass"),
            ("retry", "pass"),
            ("insufficient_credits", "pass"),
            ("usage", "pass"),
        ],
        "{printed}"
    );
    assert_eq!(report["skipped_checks"], serde_json::json!([]));
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 12, "four models x 3 runs");
    for job in jobs {
        assert_eq!(job["final_status"], "completed");
        assert!(job["job_id"].is_string() && !job["request_ids"].as_array().unwrap().is_empty());
        assert!(
            job["credits"].as_f64().unwrap() > 0.0 && job["output_bytes"].as_u64().unwrap() > 0
        );
        assert_eq!(job["output_format"], "webm");
    }
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };

    // Usage: the summary moved by exactly this run's jobs and credits (the 12 runs and the
    // stuck job of the timeout check), and the events charge each completed job.
    let credits: f64 = jobs.iter().map(|j| j["credits"].as_f64().unwrap()).sum();
    let usage = check("usage");
    let delta = &usage["data"]["delta"];
    assert_eq!(delta["total_jobs"], 13, "{usage}");
    assert_eq!(delta["completed_jobs"], 12, "{usage}");
    assert!(
        (delta["credits_used"].as_f64().unwrap() - credits).abs() < 1e-6,
        "{usage}"
    );
    assert_eq!(usage["data"]["events"]["jobs_charged"], 12, "{usage}");
    let evidence = usage["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("+13") && evidence.contains(&format!("+{credits}")),
        "the numbers are in the evidence: {evidence}"
    );

    // Timeout: the stuck job's wait ended with wait_timeout at its deadline, not before.
    let timeout = check("timeout");
    let (deadline, elapsed) = (
        timeout["data"]["deadline_seconds"].as_f64().unwrap(),
        timeout["data"]["elapsed_seconds"].as_f64().unwrap(),
    );
    assert!(elapsed >= deadline, "{timeout}");
    assert_eq!(timeout["data"]["error_code"], "wait_timeout");
    assert_eq!(timeout["data"]["last_status"], "processing");

    // Retry: a 503 and a dropped answer, each recovered by one retry, with request ids.
    let retry = check("retry");
    let probes = retry["data"]["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2, "{retry}");
    for probe in probes {
        assert_eq!(probe["retries"], 1, "{probe}");
        assert!(
            probe["recovered_request_id"]
                .as_str()
                .unwrap()
                .starts_with("req_")
        );
        assert!(
            probe["failed_request_id"]
                .as_str()
                .unwrap()
                .starts_with("req_")
        );
    }
    assert_eq!(probes[0]["failed_status"], 503);

    // Insufficient credits: 402 on the start, one request, no retry.
    let credits_check = check("insufficient_credits");
    let data = &credits_check["data"];
    assert_eq!(data["status"], 402, "{credits_check}");
    assert_eq!(data["code"], "insufficient_credits");
    assert_eq!(data["retries"], 0);
    assert_eq!(data["requests"], 1, "counted in the sandbox's request log");
    assert_eq!(
        data["job_status_after"], "created",
        "the refused start changed nothing"
    );
    let baseline = report["sla_baseline"].as_array().unwrap();
    assert_eq!(baseline.len(), 4);
    assert_eq!(
        baseline.iter().find(|b| b["model"] == "pro").unwrap()["credits_per_run"],
        30.0,
        "pro: 180 per minute x 10 s"
    );
    let md = std::fs::read_to_string(&report_md).unwrap();
    assert!(md.contains("## SLA baseline") && md.contains("| pro |"));
    assert!(md.contains("| usage | pass |") && md.contains("| retry | pass |"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The playground against a server it did not start (here a sandbox it does not know is one).
fn playground_against(sandbox: &Sandbox, extra: &[&str], dir: &Path) -> (Output, Value) {
    let report_md = dir.join("report.md");
    let output = binary()
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            sandbox.demo_key(),
            "--json",
            "playground",
            "--runs",
            "1",
            "--models",
            "light",
            "--skip-rate-limit",
            "--video-url",
            &format!("{VIDEO}?duration=5"),
            "--report-md",
        ])
        .arg(&report_md)
        .args(extra)
        .output()
        .unwrap();
    let report = json(&output);
    (output, report)
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn playground_against_a_real_server_runs_only_what_is_safe_and_says_what_it_skipped() {
    let sandbox = fast_sandbox();
    let dir = fresh_dir("playground-real");
    let (output, report) = playground_against(&sandbox, &[], &dir);
    assert_eq!(code(&output), 0, "{report}");
    let skipped: Vec<(String, String)> = statuses(&report)
        .into_iter()
        .filter(|(_, status)| status != "pass")
        .collect();
    let skip = |name: &str| (name.to_owned(), "skipped".to_owned());
    assert_eq!(
        skipped,
        [
            skip("rate_limits"),
            skip("retry"),
            skip("insufficient_credits")
        ],
        "usage and timeout run (read-only; a wait on the idempotency check's draft): {report}"
    );
    let reasons = &report["skipped_checks"];
    assert_eq!(reasons.as_array().unwrap().len(), 3, "{reasons}");
    let reason = |name: &str| {
        reasons
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(reason("retry").contains("sandbox"), "{reasons}");
    assert!(
        reason("insufficient_credits").contains("--no-credits-key"),
        "{reasons}"
    );
    assert!(
        !sandbox
            .request_log()
            .iter()
            .any(|r| r.fault.is_some() || r.path.ends_with("/start")),
        "no fault header was sent to the real server, and no job was started to provoke a 402"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| retry | skipped |") && md.contains("Skipped:"),
        "{md}"
    );

    // Given a key without credits, the insufficient-credits path runs too: one start request.
    let (output, report) = playground_against(
        &sandbox,
        &["--no-credits-key", removebgvideo_sandbox::NO_CREDITS_KEY],
        &dir,
    );
    assert_eq!(code(&output), 0, "{report}");
    let credits = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "insufficient_credits")
        .unwrap()
        .clone();
    assert_eq!(credits["status"], "pass", "{credits}");
    let job_id = credits["data"]["job_id"].as_str().unwrap();
    let starts = sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == format!("/v1/jobs/{job_id}/start"))
        .count();
    assert_eq!(starts, 1, "the 402 was not retried");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn playground_without_credits_reports_the_failure_instead_of_crashing() {
    // A sandbox whose demo key has no credits at all.
    let poor_demo = removebgvideo_sandbox::KeyConfig {
        key: removebgvideo_sandbox::DEMO_KEY.into(),
        credits: 0.0,
        rate_per_second: 1000.0,
        burst: 1000,
    };
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1000.0,
        keys: vec![poor_demo],
        ..SandboxConfig::default()
    })
    .unwrap();
    let output = binary()
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            sandbox.demo_key(),
            "--json",
            "playground",
            "--runs",
            "1",
            "--models",
            "original,light",
            "--video-url",
            VIDEO,
        ])
        .output()
        .unwrap();
    assert_eq!(
        code(&output),
        6,
        "checks failed, reported: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    for job in report["jobs"].as_array().unwrap() {
        assert_eq!(job["error_code"], "insufficient_credits");
        assert!(
            job["request_ids"].as_array().unwrap().len() == 1,
            "the failed create's request id is recorded"
        );
    }
    let scenarios = report["scenarios"].as_array().unwrap();
    assert!(
        scenarios
            .iter()
            .all(|s| s["succeeded"] == 0 && s["runs"] == 1)
    );
    let auth = &report["checks"][0];
    assert_eq!(auth["status"], "pass", "the key is valid, only poor");
}

#[test]
fn a_proxy_from_the_environment_never_carries_the_key_of_a_loopback_base_url() {
    // A "proxy" that records whatever reaches it and never answers.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    proxy.set_nonblocking(true).unwrap();
    let sandbox = fast_sandbox();
    let output = binary()
        .args([
            "--base-url",
            sandbox.base_url(),
            "--api-key",
            sandbox.demo_key(),
            "--json",
            "usage",
            "summary",
        ])
        .env("ALL_PROXY", &proxy_url)
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .output()
        .unwrap();
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        proxy.accept().is_err(),
        "nothing reached the proxy: the key stayed on this machine"
    );
}

#[test]
fn one_sigterm_ends_a_request_blocked_in_the_network_at_once() {
    // A server that accepts and never answers: only closing the connection ends the request
    // before the client's 60 s timeout, and a process manager's SIGKILL comes long before.
    let (child, _connection) = blocked_jobs_get();
    send_signal(&child, "TERM");
    let sent = Instant::now();
    let output = finish_within(child, Duration::from_secs(15), "a blocked jobs get");
    assert_eq!(code(&output), 143);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(json(&output)["error"]["code"], "cancelled");
}

#[test]
fn a_bad_manifest_is_refused_whole_with_every_row_named_and_nothing_sent() {
    let sandbox = fast_sandbox();
    let dir = fresh_dir("bad-manifest");
    let manifest = dir.join("videos.csv");
    std::fs::write(
        &manifest,
        "key,video_url,model,background\n\
         a,https://example.com/a.mp4,original,green\n\
         b,ftp://example.com/b.mp4,bogus,\n\
         a,https://example.com/c.mp4,light,#12345\n",
    )
    .unwrap();
    let out = dir.join("out");
    let before = sandbox.request_counts().0;
    let output = cli(
        &sandbox,
        &[
            "--json",
            "batch",
            "run",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&output), 2);
    // The same error as Python's and Node's: a validation_error whose problems are
    // `/<line>/<column>` with the core's codes.
    let error = &json(&output)["error"];
    assert_eq!(error["code"], "validation_error");
    let named: Vec<String> = error["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["path"].as_str().unwrap(),
                p["code"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "/3/video_url invalid_url",
        "/3/model unknown_value",
        "/4/key duplicate_key",
    ] {
        assert!(
            named.iter().any(|n| n == expected),
            "{expected:?} not in {named:?}"
        );
    }
    assert!(
        named.iter().any(|n| n.starts_with("/4/background ")),
        "{named:?}"
    );
    assert_eq!(sandbox.request_counts().0, before, "nothing was sent");
}

#[test]
fn batch_run_status_export_and_report_read_one_ledger() {
    let sandbox = fast_sandbox();
    let dir = fresh_dir("batch-commands");
    let manifest = dir.join("videos.jsonl");
    let rows: Vec<String> = (0..6)
        .map(|i| {
            let fail = if i == 5 { "&scenario=fail" } else { "" };
            format!(r#"{{"key":"v{i}","video_url":"https://example.com/{i}.mp4?duration=2{fail}","model":"light"}}"#)
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let out = dir.join("out");
    let out_arg = out.to_str().unwrap();
    let run = cli(
        &sandbox,
        &[
            "--json",
            "batch",
            "run",
            manifest.to_str().unwrap(),
            "--out",
            out_arg,
        ],
    );
    assert_eq!(code(&run), 4, "one row fails by design");
    let summary = json(&run);
    assert_eq!(summary["summary"]["progress"]["done"], 5);
    assert_eq!(summary["summary"]["progress"]["failed"], 1);

    let status = json(&cli(
        &sandbox,
        &["--json", "batch", "status", "--out", out_arg],
    ));
    assert_eq!(status["total"], 6);
    assert_eq!(status["phases"]["done"], 5);
    assert_eq!(status["phases"]["failed"], 1);

    let export = cli(
        &sandbox,
        &["batch", "export", "--out", out_arg, "--format", "csv"],
    );
    assert_eq!(code(&export), 0);
    let text = String::from_utf8(export.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("seq,at,key,kind"));
    let created = lines
        .filter(|l| l.split(',').nth(3) == Some("created"))
        .count();
    assert_eq!(created, 6, "one created event per item");

    let report = json(&cli(
        &sandbox,
        &["--json", "batch", "report", "--out", out_arg],
    ));
    let light = &report["report"]["models"][0];
    assert_eq!(light["model"], "light");
    assert_eq!(
        (light["jobs"].as_u64(), light["failed"].as_u64()),
        (Some(6), Some(1))
    );
    assert!(light["p95_seconds"].as_f64().unwrap() >= light["p50_seconds"].as_f64().unwrap());
    assert_eq!(
        report["report"]["usage"]["differences"],
        serde_json::json!([])
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("light"));

    let resumed = cli(
        &sandbox,
        &[
            "--json",
            "batch",
            "run",
            manifest.to_str().unwrap(),
            "--out",
            out_arg,
        ],
    );
    assert_eq!(code(&resumed), 4);
    assert_eq!(sandbox.created_jobs().len(), 6, "a re-run makes no job");
}

#[test]
fn ctrl_c_stops_a_batch_with_exit_130_and_the_same_command_resumes_it() {
    // Jobs of a second or two: the interrupt lands while the first ones run.
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 20.0,
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = fresh_dir("batch-interrupt");
    let manifest = dir.join("videos.jsonl");
    let rows: Vec<String> = (0..8)
        .map(|i| {
            format!(r#"{{"key":"i{i}","video_url":"https://example.com/{i}.mp4?duration=30"}}"#)
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let out = dir.join("out");
    let args = |binary: &mut Command| {
        binary
            .args([
                "--base-url",
                sandbox.base_url(),
                "--api-key",
                sandbox.demo_key(),
            ])
            .args(["--json", "batch", "run"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .args(["--max-in-flight", "4"]);
    };
    let mut command = binary();
    args(&mut command);
    let child = command.stdout(Stdio::piped()).spawn().unwrap();
    // Once the first jobs exist, as a user would press Ctrl-C.
    wait_for("the first creates", Duration::from_secs(20), || {
        sandbox.created_jobs().len() >= 2
    });
    interrupt(&child);
    let output = finish_within(child, Duration::from_secs(15), "an interrupted batch");
    assert_eq!(
        code(&output),
        130,
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(json(&output)["error"]["code"], "cancelled");
    let made = sandbox.created_jobs().len();
    assert!(made <= 4, "no new work after Ctrl-C: {made} jobs");

    let mut again = binary();
    args(&mut again);
    let resumed = again.output().unwrap();
    assert_eq!(
        code(&resumed),
        0,
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert_eq!(json(&resumed)["summary"]["progress"]["done"], 8);
    assert_eq!(sandbox.created_jobs().len(), 8, "no job made twice");
}

/// Requests received: headers and raw body of each.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(removebgvideo::core::Headers, Vec<u8>)>>>;

/// Records what reaches it: headers and raw body of each request; answers 200.
fn forward_target() -> (String, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/forwarded", listener.local_addr().unwrap());
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = removebgvideo::core::Headers::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    headers.push(name.trim(), value.trim());
                }
            }
            let mut body = vec![0; length];
            std::io::Read::read_exact(&mut reader, &mut body).unwrap();
            sink.lock().unwrap().push((headers, body));
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (url, received)
}

#[test]
fn webhooks_listen_prints_each_verified_delivery_refuses_forged_ones_and_forwards_re_signed() {
    let sandbox = fast_sandbox();
    let secret = sandbox.webhook_secret().to_owned();
    let (target, forwarded) = forward_target();
    let mut listen = binary()
        .args([
            "--json", "webhooks", "listen", "--port", "0", "--secret", &secret,
        ])
        .args(["--forward-to", &target])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let banner: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = banner["listening"].as_str().unwrap().to_owned();
    // A forged delivery: 400, and no line.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let forged = agent
        .post(&url)
        .header(removebgvideo::core::webhook::EVENT_HEADER, "job.completed")
        .header(
            removebgvideo::core::webhook::TIMESTAMP_HEADER,
            "2026-12-01T00:00:00Z",
        )
        .header(removebgvideo::core::webhook::SIGNATURE_HEADER, "sha256=00")
        .send(&br#"{"event":"job.completed","data":{"id":"job_x","status":"completed"}}"#[..])
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    let run = cli(
        &sandbox,
        &[
            "--json",
            "jobs",
            "create",
            "--video-url",
            &format!("{VIDEO}?duration=3"),
            "--webhook-url",
            &url,
        ],
    );
    assert_eq!(code(&run), 0, "{}", String::from_utf8_lossy(&run.stderr));
    let job_id = json(&run)["id"].as_str().unwrap().to_owned();
    let events: Vec<Value> = (0..2)
        .map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["job.started", "job.completed"]);
    assert!(events.iter().all(|e| e["job"]["id"] == job_id.as_str()));
    assert!(events.iter().all(|e| e["delivery_id"].is_string()));
    wait_for("both forwarded", Duration::from_secs(10), || {
        forwarded.lock().unwrap().len() == 2
    });
    let now = removebgvideo::core::Timestamp::from(std::time::SystemTime::now());
    for (headers, body) in forwarded.lock().unwrap().iter() {
        let verified = removebgvideo::core::webhook::verify(
            headers,
            body,
            &secret,
            now,
            Duration::from_secs(300),
        )
        .expect("re-signed with the secret");
        assert_eq!(verified.data.id, job_id);
    }
    interrupt(&listen);
    assert_eq!(
        listen.wait().unwrap().code(),
        Some(0),
        "a clean stop on Ctrl-C"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut listen.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("refused a delivery (webhook_"), "{stderr}");
    assert!(
        !stderr.contains("job_x"),
        "a refused body is never logged: {stderr}"
    );
}

#[test]
fn run_with_webhooks_ends_on_the_delivery_with_one_read_of_the_job() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 20.0,
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.webm");
    let run = cli(
        &sandbox,
        &[
            "--json",
            "run",
            "--video-url",
            &format!("{VIDEO}?duration=10"),
            "--webhooks",
            "--webhook-secret",
            sandbox.webhook_secret(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&run), 0, "{}", String::from_utf8_lossy(&run.stderr));
    let job_id = json(&run)["job"]["id"].as_str().unwrap().to_owned();
    assert_output_file(&job_id, &out);
    let reads = sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(&format!("/v1/jobs/{job_id}")))
        .count();
    assert_eq!(reads, 1, "the confirming read only");
    let refused = cli(
        &sandbox,
        &["--json", "run", "--video-url", VIDEO, "--webhooks"],
    );
    assert_eq!(code(&refused), 2, "--webhooks needs a secret");
    assert!(String::from_utf8_lossy(&refused.stdout).contains("webhook_secret"));
}

#[test]
fn batch_run_with_webhooks_ends_its_waits_on_deliveries() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 20.0,
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("videos.jsonl");
    let rows: Vec<String> = (0..8)
        .map(|i| {
            let fail = if i == 7 { "&scenario=fail" } else { "" };
            format!(
                r#"{{"key":"w{i}","video_url":"https://example.com/{i}.mp4?duration=6{fail}"}}"#
            )
        })
        .collect();
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let out = dir.path().join("out");
    let run = cli(
        &sandbox,
        &[
            "--json",
            "batch",
            "run",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--webhooks",
            "--webhook-secret",
            sandbox.webhook_secret(),
        ],
    );
    assert_eq!(
        code(&run),
        4,
        "one row fails by design: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = json(&run);
    assert_eq!(summary["summary"]["progress"]["done"], 7);
    assert_eq!(summary["summary"]["progress"]["failed"], 1);
    let log = sandbox.request_log();
    let reads = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/jobs/"))
        .count();
    assert_eq!(reads, 8, "one confirming read per job: {reads}");
    // Every job's status in the ledger is the sandbox's.
    let status = json(&cli(
        &sandbox,
        &["--json", "batch", "status", "--out", out.to_str().unwrap()],
    ));
    assert_eq!(status["phases"]["done"], 7);
}
