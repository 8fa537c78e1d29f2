//! The `removebgvideo-sandbox` binary: prints where it listens and the demo key, serves, and
//! logs one JSON line per request (none with `--quiet`).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The binary started with `args`, its stdout (kept open) and the address it printed first.
fn start(args: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_removebgvideo-sandbox"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base_url = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{first}");
    (child, stdout, base_url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn binary_prints_its_address_and_logs_requests_as_json_lines() {
    let (mut child, mut stdout, base_url) = start(&["--port", "0", "--speed", "100"]);
    let mut second = String::new();
    stdout.read_line(&mut second).unwrap();
    assert!(second.contains(removebgvideo_sandbox::DEMO_KEY), "{second}");

    let reply = agent()
        .get(format!("{base_url}/v1/jobs"))
        .header("X-Api-Key", removebgvideo_sandbox::DEMO_KEY)
        .call()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let request_id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();

    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let record: serde_json::Value = serde_json::from_str(&line).expect("one JSON line per request");
    assert_eq!(record["request_id"], request_id.as_str());
    assert_eq!(record["status"], 200);
    assert_eq!(record["path"], "/v1/jobs");
}

#[test]
fn quiet_binary_logs_nothing_and_serves_with_its_stdout_closed() {
    let (mut child, stdout, base_url) = start(&["--port", "0", "--quiet"]);
    // Whoever started it may stop reading: the server must keep serving.
    drop(stdout);
    let stats = agent()
        .get(format!("{base_url}/sandbox/stats"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(stats, r#"{"rate_limited":0,"requests":0}"#);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logged = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logged)
        .unwrap();
    assert_eq!(logged, "", "--quiet prints no request log");
}

#[test]
fn unusable_flags_and_config_numbers_are_usage_errors_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.json");
    std::fs::write(&config, r#"{"default_duration_secs": -1}"#).unwrap();
    let config = config.to_str().unwrap();
    for (args, field) in [
        (vec!["--speed", "1e20"], "speed must be"),
        (vec!["--speed", "0"], "speed must be"),
        (vec!["--speed", "NaN"], "speed must be"),
        (vec!["--config", config], "default_duration_secs must be"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_removebgvideo-sandbox"))
            .args(&args)
            .arg("--quiet")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(field), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn the_stderr_log_never_shows_an_output_token() {
    let (mut child, _stdout, base_url) = start(&["--port", "0", "--speed", "1000"]);
    let key = removebgvideo_sandbox::DEMO_KEY;
    let created: serde_json::Value = agent()
        .post(format!("{base_url}/v1/jobs"))
        .header("X-Api-Key", key)
        .send_json(serde_json::json!({"video_url": "https://cdn.example.com/v.mp4"}))
        .unwrap()
        .into_body()
        .read_json()
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let url = loop {
        let job: serde_json::Value = agent()
            .get(format!("{base_url}/v1/jobs/{id}"))
            .header("X-Api-Key", key)
            .call()
            .unwrap()
            .into_body()
            .read_json()
            .unwrap();
        if let Some(url) = job["output_url"].as_str() {
            break url.to_owned();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{job}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let token = common::output_token(&url);
    let status = agent()
        .get(format!("{url}?signature=s3cr3t"))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{lines:#?}");
        let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        let done = record["path"]
            .as_str()
            .unwrap()
            .starts_with("/sandbox/outputs/");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for line in &lines {
        assert!(!line.contains(&token) && !line.contains("s3cr3t"), "{line}");
    }
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(
        last["path"],
        format!("/sandbox/outputs/{id}/<redacted>.webm?<redacted>")
    );
}

/// Reads stdout lines until the one starting with `prefix`; the rest of that line.
fn line_after(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no {prefix:?} line"
        );
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

/// Waits for the child to exit, at most `bound`.
fn exit_status(child: &mut Child, bound: std::time::Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            panic!("still running {bound:?} after the signal");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_stop_cleanly_and_remove_the_uploads_folder() {
    for signal in ["TERM", "INT"] {
        let (mut child, mut stdout, base_url) = start(&["--port", "0", "--quiet"]);
        let uploads = std::path::PathBuf::from(line_after(&mut stdout, "uploads folder: "));
        assert!(uploads.is_dir(), "{}", uploads.display());
        // Something stored, so the folder is not empty.
        let boundary = "b0undary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4\r\n\r\nnot really a video\r\n--{boundary}--\r\n"
        );
        let status = agent()
            .post(format!("{base_url}/v1/uploads"))
            .header("X-Api-Key", removebgvideo_sandbox::DEMO_KEY)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(body.as_bytes())
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200);
        assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 1);

        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let status = exit_status(&mut child, std::time::Duration::from_secs(10));
        assert!(status.success(), "SIG{signal}: {status:?}");
        assert!(!uploads.exists(), "SIG{signal} left {}", uploads.display());
    }
}
