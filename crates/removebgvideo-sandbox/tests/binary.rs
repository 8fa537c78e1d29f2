//! The `removebgvideo-sandbox` binary: prints where it listens and the demo key, serves, and
//! logs one JSON line per request.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_prints_its_address_and_logs_requests_as_json_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_removebgvideo-sandbox"))
        .args(["--port", "0", "--speed", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base_url = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{first}");
    let mut second = String::new();
    stdout.read_line(&mut second).unwrap();
    assert!(second.contains(removebgvideo_sandbox::DEMO_KEY), "{second}");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let reply = agent
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
fn quiet_binary_logs_nothing() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_removebgvideo-sandbox"))
        .args(["--port", "0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let base_url = first.trim().rsplit(' ').next().unwrap().to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let stats = agent
        .get(format!("{base_url}/sandbox/stats"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(stats, r#"{"requests":0}"#);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logged = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logged).unwrap();
    assert_eq!(logged, "", "--quiet prints no request log");
}
