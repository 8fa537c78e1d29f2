//! The sandbox against its published contract: the document it serves at `/openapi.json` is
//! the committed one (its own address, its one extra rule), and a request that document
//! accepts is one the sandbox accepts. schemathesis checks the same thing with generated
//! requests in `cargo xtask contract`; these are the cases it found, kept as fast tests.

mod common;

use common::{Api, PLAYGROUND_VIDEO, sandbox};
use removebgvideo_core::http::IDEMPOTENCY_KEY_MAX_BYTES;
use serde_json::{Value, json};

fn committed_openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the committed OpenAPI"))
        .expect("JSON")
}

/// A validator of one component schema of an OpenAPI document.
fn component_validator(document: &Value, name: &str) -> jsonschema::Validator {
    let mut root = json!({ "components": document["components"].clone() });
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    jsonschema::validator_for(&root).expect("the component compiles")
}

#[test]
fn the_served_document_is_the_committed_one_with_this_sandboxs_address_and_webhook_rule() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let served = api.get("/openapi.json").json();
    assert_eq!(served["servers"][0]["url"], sandbox.base_url());
    assert_eq!(served["servers"].as_array().map(Vec::len), Some(1));

    let mut expected = committed_openapi();
    expected["servers"] = served["servers"].clone();
    for request in ["CreateJobRequest", "StartJobRequest"] {
        let webhook = &served["components"]["schemas"][request]["properties"]["webhook_url"];
        assert!(
            webhook["description"]
                .as_str()
                .is_some_and(|d| d.contains("loopback")),
            "{request}.webhook_url states the sandbox's loopback rule: {webhook}"
        );
        expected["components"]["schemas"][request]["properties"]["webhook_url"] = webhook.clone();
    }
    assert!(
        served == expected,
        "nothing else differs from schema/openapi.json"
    );
    // A second fetch is the same document.
    assert_eq!(api.get("/openapi.json").json(), served);
}

#[test]
fn a_webhook_url_the_served_document_accepts_is_one_the_sandbox_accepts() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let served = api.get("/openapi.json").json();
    let create = component_validator(&served, "CreateJobRequest");
    let published = component_validator(&committed_openapi(), "CreateJobRequest");
    let cases = [
        ("http://127.0.0.1:9/hook", true),
        ("http://127.255.0.1/", true),
        ("HTTP://LocalHost:65535/a?b#c", true),
        ("http://[::1]:8080/hook", true),
        ("https://hooks.example.com/in", false),
        ("http://128.0.0.1/", false),
        ("http://localhost.example.com/", false),
    ];
    for (url, loopback) in cases {
        let body = json!({ "video_url": PLAYGROUND_VIDEO, "webhook_url": url });
        assert_eq!(create.is_valid(&body), loopback, "{url}");
        let status = api.post("/v1/jobs", &body).status;
        assert_eq!(status == 200, loopback, "{url}: {status}");
        if !loopback && !url.contains("localhost") {
            // The published document (the real API) takes any host.
            assert!(published.is_valid(&body), "{url}");
        }
    }
}

#[test]
fn an_idempotency_key_beyond_the_published_length_is_refused_naming_the_header() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let body = json!({ "video_url": PLAYGROUND_VIDEO });
    let longest = "k".repeat(IDEMPOTENCY_KEY_MAX_BYTES);
    let reply = api
        .send(
            "POST",
            "/v1/jobs",
            &[("Idempotency-Key", &longest)],
            Some(&body),
        )
        .unwrap();
    assert_eq!(reply.status, 200);

    let too_long = "k".repeat(IDEMPOTENCY_KEY_MAX_BYTES + 1);
    let reply = api
        .send(
            "POST",
            "/v1/jobs",
            &[("Idempotency-Key", &too_long)],
            Some(&body),
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "invalid_request");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("Idempotency-Key") && message.contains("255"),
        "{message}"
    );
    assert_eq!(
        reply.json()["error"]["problems"][0]["code"],
        "invalid_idempotency_key",
        "{message}"
    );
    // Nothing was created by the refused call.
    assert_eq!(api.get("/v1/jobs").json()["total"], 1);
}

#[test]
fn whole_numbers_written_as_floats_are_integers() {
    let sandbox = sandbox(1000.0);
    let api = Api::new(&sandbox, sandbox.demo_key());
    let created = api.post(
        "/v1/jobs",
        &json!({ "video_url": PLAYGROUND_VIDEO, "auto_start": false }),
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let started = api.post(
        &format!("/v1/jobs/{id}/start"),
        &json!({ "composition": { "canvas": { "width": 710.0, "height": 480.0 } } }),
    );
    assert_eq!(
        started.status,
        200,
        "{}",
        String::from_utf8_lossy(&started.bytes)
    );
    assert_eq!(api.get("/v1/jobs?offset=4294967296").status, 400);
    assert_eq!(api.get("/v1/jobs?offset=4294967295").status, 200);
}

/// Posts a multipart form whose parts are given raw (headers and content), in this order.
fn upload_raw(sandbox: &removebgvideo_sandbox::Sandbox, parts: &[(&str, &[u8])]) -> (u16, Value) {
    let boundary = "contract-test-boundary";
    let mut body = Vec::new();
    for (headers, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let request = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}/v1/uploads", sandbox.base_url()))
        .header("X-Api-Key", sandbox.demo_key())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .unwrap();
    let response = common::agent().run(request).unwrap();
    let status = response.status().as_u16();
    let json = response.into_body().read_json().unwrap_or(Value::Null);
    (status, json)
}

#[test]
fn a_malformed_part_is_refused_wherever_it_is_in_the_form() {
    let sandbox = sandbox(1000.0);
    let file = (
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4",
        &b"not really a video"[..],
    );
    let other = ("Content-Disposition: form-data; name=\"note\"", &b"x"[..]);
    // A control character cannot be in a part's header: the schema's propertyNames says so.
    let malformed = ("Content-Disposition: form-data; name=\"a\x0fb\"", &b"x"[..]);

    let (status, _ok) = upload_raw(&sandbox, &[file, other]);
    assert_eq!(status, 200, "other well-formed fields are ignored: {_ok}");
    let (status, before) = upload_raw(&sandbox, &[malformed, file]);
    assert_eq!(status, 400, "{before}");
    let (status, after) = upload_raw(&sandbox, &[file, malformed]);
    assert_eq!(status, 400, "{after}");
    assert_eq!(after["error"]["code"], "invalid_request");
}
