//! Downloads from an output server that misbehaves on purpose: partial answers that do not fit,
//! objects that change between two requests, bodies that end early with nothing to say so,
//! and redirects to other hosts. A raw loopback TCP server plays a script, one answer per
//! connection, so every byte of every answer is the test's choice.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use removebgvideo::{CallOptions, Client, DownloadOptions, ErrorCode, Job, JobStatus, RetryPolicy};

/// A client whose API is never asked (the job is in hand), retrying fast.
fn client(max_retries: u32) -> Client {
    Client::builder()
        .api_key("rbv_test_key")
        .base_url("http://127.0.0.1:9")
        .retry_policy(RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
}

/// The object the server holds (100 bytes), in two versions.
fn object(version: u8) -> Vec<u8> {
    (0..100u8).map(|i| i.wrapping_mul(7) ^ version).collect()
}

/// One scripted answer: the head (status line and headers) and the body bytes sent before
/// the connection is closed.
struct Reply {
    head: String,
    body: Vec<u8>,
}

fn reply(status: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    Reply {
        head: head + "\r\n",
        body: body.to_vec(),
    }
}

/// A server that answers connection n with `script[n]`, then closes it; records every
/// request head it got.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn start(script: Vec<Reply>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/out/job_1.webm?token=secret",
            listener.local_addr().unwrap().port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for reply in script {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head += &line;
                }
                seen.lock().unwrap().push(head);
                let mut stream = reader.into_inner();
                let _ = stream.write_all(reply.head.as_bytes());
                let _ = stream.write_all(&reply.body);
                let _ = stream.flush();
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Scripted { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn header_of(request: &str, name: &str) -> Option<String> {
    request.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn download(server: &Scripted, dir: &Path) -> Result<Vec<u8>, removebgvideo::Error> {
    let client = client(3);
    let mut job = Job::new("job_1", JobStatus::Completed);
    job.output_url = Some(server.url.clone());
    let target = dir.join("out.webm");
    let options = DownloadOptions {
        call: CallOptions {
            headers: vec![("X-Call-Secret".into(), "for the API only".into())],
            ..CallOptions::default()
        },
        ..DownloadOptions::default()
    };
    let result = client.download_job(job, &target, &options);
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "no part file left: {left:?}");
    result.map(|_| std::fs::read(&target).unwrap())
}

fn length(n: usize) -> (&'static str, String) {
    ("Content-Length", n.to_string())
}

#[test]
fn a_partial_answer_without_content_range_is_never_spliced_in_as_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let full = object(1);
    let etag = ("ETag", "\"v1\"".to_owned());
    let server = Scripted::start(vec![
        // The first answer breaks after 40 bytes.
        reply("200 OK", &[length(100), etag.clone()], &full[..40]),
        // The resume is answered with the tail and no Content-Range: where does it go?
        reply(
            "206 Partial Content",
            &[length(60), etag.clone()],
            &full[40..],
        ),
        // Starting over gets the whole object.
        reply("200 OK", &[length(100), etag], &full),
    ]);
    assert_eq!(download(&server, dir.path()).unwrap(), full);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        header_of(&requests[1], "range").as_deref(),
        Some("bytes=40-")
    );
    assert_eq!(header_of(&requests[2], "range"), None, "from byte 0");
}

#[test]
fn a_partial_answer_that_starts_elsewhere_or_has_another_total_starts_over() {
    for range in ["bytes 0-59/100", "bytes 50-99/100", "bytes 40-159/160"] {
        let dir = tempfile::tempdir().unwrap();
        let full = object(1);
        let server = Scripted::start(vec![
            reply("200 OK", &[length(100)], &full[..40]),
            reply(
                "206 Partial Content",
                &[("Content-Range", range.into()), length(60)],
                &full[40..],
            ),
            reply("200 OK", &[length(100)], &full),
        ]);
        assert_eq!(download(&server, dir.path()).unwrap(), full, "{range}");
        assert_eq!(server.requests().len(), 3, "{range}");
    }
}

#[test]
fn a_resume_sends_if_range_and_a_changed_object_comes_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (object(1), object(2));
    let server = Scripted::start(vec![
        reply(
            "200 OK",
            &[length(100), ("ETag", "\"v1\"".into())],
            &old[..40],
        ),
        // A server honouring If-Range: the object changed, so the whole new one.
        reply("200 OK", &[length(100), ("ETag", "\"v2\"".into())], &new),
    ]);
    assert_eq!(download(&server, dir.path()).unwrap(), new);
    let requests = server.requests();
    assert_eq!(
        header_of(&requests[1], "if-range").as_deref(),
        Some("\"v1\"")
    );
}

#[test]
fn a_server_that_ignores_if_range_cannot_splice_two_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (object(1), object(2));
    let server = Scripted::start(vec![
        reply(
            "200 OK",
            &[length(100), ("ETag", "\"v1\"".into())],
            &old[..40],
        ),
        // The tail of the new version, as if nothing had changed.
        reply(
            "206 Partial Content",
            &[
                ("Content-Range", "bytes 40-99/100".into()),
                length(60),
                ("ETag", "\"v2\"".into()),
            ],
            &new[40..],
        ),
        reply("200 OK", &[length(100), ("ETag", "\"v2\"".into())], &new),
    ]);
    assert_eq!(download(&server, dir.path()).unwrap(), new);

    // Without an ETag, Last-Modified guards the same way.
    let dir = tempfile::tempdir().unwrap();
    let (monday, tuesday) = (
        ("Last-Modified", "Mon, 30 Nov 2026 10:00:00 GMT".to_owned()),
        ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT".to_owned()),
    );
    let server = Scripted::start(vec![
        reply("200 OK", &[length(100), monday.clone()], &old[..40]),
        reply(
            "206 Partial Content",
            &[("Content-Range", "bytes 40-99/100".into()), tuesday.clone()],
            &new[40..],
        ),
        reply("200 OK", &[length(100), tuesday], &new),
    ]);
    assert_eq!(download(&server, dir.path()).unwrap(), new);
    assert_eq!(
        header_of(&server.requests()[1], "if-range").as_deref(),
        Some(monday.1.as_str())
    );
}

#[test]
fn a_body_without_a_length_that_ends_early_is_not_a_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = object(1);
    let server = Scripted::start(vec![
        // No length, no chunks: only the close marks the end, and it came early.
        reply("200 OK", &[], &full[..40]),
        // Asked for the rest, the server has 60 more bytes.
        reply(
            "206 Partial Content",
            &[("Content-Range", "bytes 40-99/100".into()), length(60)],
            &full[40..],
        ),
    ]);
    assert_eq!(download(&server, dir.path()).unwrap(), full);
    assert_eq!(
        header_of(&server.requests()[1], "range").as_deref(),
        Some("bytes=40-")
    );

    // A body that was complete is confirmed by a 416 naming its length.
    let dir = tempfile::tempdir().unwrap();
    let server = Scripted::start(vec![
        reply("200 OK", &[], &full),
        reply(
            "416 Range Not Satisfiable",
            &[("Content-Range", "bytes */100".into()), length(0)],
            b"",
        ),
    ]);
    assert_eq!(download(&server, dir.path()).unwrap(), full);

    // A server that ignores Range and never gives a length cannot be verified: an error, and
    // nothing at the target.
    let dir = tempfile::tempdir().unwrap();
    let server = Scripted::start(vec![
        reply("200 OK", &[], &full[..40]),
        reply("200 OK", &[], &full[..40]),
    ]);
    let error = download(&server, dir.path()).unwrap_err();
    assert_eq!(error.code, ErrorCode::DownloadFailed);
    assert!(error.message.contains("no length"), "{error}");
    assert!(!dir.path().join("out.webm").exists());
}

#[test]
fn per_call_headers_never_reach_another_host_and_errors_never_show_the_signed_url() {
    let dir = tempfile::tempdir().unwrap();
    let full = object(1);
    let cdn = Scripted::start(vec![reply("200 OK", &[length(100)], &full)]);
    let redirecting = Scripted::start(vec![reply(
        "302 Found",
        &[("Location", cdn.url.clone()), length(0)],
        b"",
    )]);
    assert_eq!(download(&redirecting, dir.path()).unwrap(), full);
    for request in redirecting.requests().iter().chain(&cdn.requests()) {
        assert_eq!(header_of(request, "x-call-secret"), None, "{request}");
        assert_eq!(header_of(request, "x-api-key"), None, "{request}");
    }

    let dir = tempfile::tempdir().unwrap();
    let refusing = Scripted::start(vec![reply("500 Internal Server Error", &[length(0)], b"")]);
    let client = client(0);
    let mut job = Job::new("job_1", JobStatus::Completed);
    job.output_url = Some(refusing.url.clone());
    let error = client
        .download_job(
            job,
            &dir.path().join("out.webm"),
            &DownloadOptions::default(),
        )
        .unwrap_err();
    assert!(!error.to_string().contains("token=secret"), "{error}");
}
