//! Request building as plain data, redaction of the key, and the typed background.

use removebgvideo_core::http::{API_KEY_HEADER, IDEMPOTENCY_KEY_HEADER, RequestBuilder};
use removebgvideo_core::{
    ApiKey, Background, CreateJobRequest, ErrorCode, ListJobsQuery, Method, PresetColor,
    ProblemCode, Rgb, StartJobRequest, UploadFile, spec,
};
use serde_json::{Value, json};

const SECRET: &str = "sk_live_secret_4242";

fn builder() -> RequestBuilder {
    RequestBuilder::new(ApiKey::new(format!("  {SECRET}\n")), "removebgvideo-test/1")
}

#[test]
fn the_key_is_sent_but_never_printed() {
    let request = builder().get_job("job_1").unwrap();
    assert_eq!(request.header(API_KEY_HEADER), Some(SECRET), "sent trimmed");
    let printed = format!(
        "{request:?} {:?} {}",
        ApiKey::new(SECRET),
        ApiKey::new(SECRET)
    );
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(printed.contains("[redacted]"));
    assert!(!format!("{:?}", builder()).contains(SECRET));
}

#[test]
fn create_sends_flat_fields_with_an_idempotency_key() {
    let body = CreateJobRequest::new("https://example.com/a.mp4")
        .with_background(&Background::Color(Rgb([0.035, 0.635, 0.274])));
    let request = builder().create_job(&body, "idem-1").unwrap();
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.path, "/v1/jobs");
    assert_eq!(request.header(IDEMPOTENCY_KEY_HEADER), Some("idem-1"));
    let sent: Value = serde_json::from_slice(request.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"video_url": "https://example.com/a.mp4", "bg_type": "custom", "bg_color": [0.035, 0.635, 0.274]})
    );
}

#[test]
fn start_sends_the_nested_background_and_presets_become_colours() {
    let body = StartJobRequest::default().with_background(&Background::Preset(PresetColor::Green));
    let request = builder().start_job("job 1", &body, "idem-2").unwrap();
    assert_eq!(request.path, "/v1/jobs/job%201/start");
    let sent: Value = serde_json::from_slice(request.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"background": {"type": "color", "color": "#00b140"}})
    );
}

#[test]
fn start_reports_a_bad_id_and_a_bad_body_together() {
    let body = StartJobRequest {
        preview_duration: Some(-1.0),
        ..Default::default()
    };
    let error = builder().start_job("  ", &body, "k").unwrap_err();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/job_id", "/preview_duration"]);
    assert!(error.message.contains("2 problems"), "{}", error.message);
}

#[test]
fn list_query_is_encoded() {
    let query = ListJobsQuery {
        limit: Some(5),
        offset: None,
        status: Some("completed".into()),
    };
    assert_eq!(
        builder().list_jobs(&query).unwrap().path_and_query(),
        "/v1/jobs?limit=5&status=completed"
    );
}

#[test]
fn health_needs_no_key() {
    assert_eq!(builder().health().header(API_KEY_HEADER), None);
}

#[test]
fn upload_framing_streams_around_the_file() {
    let file = UploadFile::new("my \"clip\".MOV", 1000);
    assert_eq!(file.content_type, "video/quicktime");
    let (request, framing) = builder().upload(&file, "BOUNDARY42", "idem-3").unwrap();
    assert!(request.body.is_none(), "the file is streamed, not buffered");
    assert_eq!(
        request.header("Content-Type"),
        Some("multipart/form-data; boundary=BOUNDARY42")
    );
    let head = String::from_utf8(framing.head.clone()).unwrap();
    assert!(
        head.contains("name=\"file\"; filename=\"my 'clip'.MOV\""),
        "{head}"
    );
    assert_eq!(framing.tail, b"\r\n--BOUNDARY42--\r\n");
    assert_eq!(
        framing.content_length(1000),
        (framing.head.len() + 1000 + framing.tail.len()) as u64
    );

    let error = builder()
        .upload(&UploadFile::new("notes.txt", 0), "B", "k")
        .unwrap_err();
    let codes: Vec<ProblemCode> = error.problems.iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [ProblemCode::UnsupportedMediaType, ProblemCode::EmptyFile]
    );
}

#[test]
fn background_text_forms() {
    assert_eq!(
        Background::parse("transparent").unwrap(),
        Background::Transparent
    );
    assert_eq!(
        Background::parse("blue").unwrap(),
        Background::Preset(PresetColor::Blue)
    );
    assert_eq!(
        Background::parse("#FF0000").unwrap(),
        Background::Color(Rgb([1.0, 0.0, 0.0]))
    );
    assert_eq!(
        Background::parse("image:https://example.com/b.jpg").unwrap(),
        Background::Image("https://example.com/b.jpg".into())
    );
    let error = Background::parse("#12").unwrap_err();
    assert_eq!(error.code, ErrorCode::ValidationError);
    assert_eq!(error.problems[0].path, "/background");
    assert!(
        Background::parse("plaid")
            .unwrap_err()
            .message
            .contains("transparent, green")
    );
    assert!(Background::from_rgb([0.0, 1.5, 0.0]).is_err());
}

#[test]
fn both_shapes_describe_the_same_background() {
    for background in [
        Background::Transparent,
        Background::Preset(PresetColor::White),
        Background::Color(Rgb([0.2, 0.4, 0.6])),
        Background::Image("https://example.com/x.png".into()),
    ] {
        let flat = background.to_flat();
        let from_flat = Background::from_flat(
            Some(&flat.bg_type),
            flat.bg_color.as_deref(),
            flat.bg_image_url.as_deref(),
        )
        .unwrap();
        let from_nested = Background::from_nested(&background.to_nested()).unwrap();
        assert!(from_flat.same_as(&background), "{background:?}");
        assert!(
            from_nested.same_as(&background),
            "{background:?} -> {from_nested:?}"
        );
    }
}

#[test]
fn openapi_covers_every_operation_and_reuses_the_schemas() {
    let openapi = spec::openapi();
    assert_eq!(openapi["openapi"], "3.1.0");
    for operation in removebgvideo_core::Operation::ALL {
        let method = operation.method().as_str().to_ascii_lowercase();
        let op = &openapi["paths"][operation.path_template()][&method];
        assert_eq!(op["operationId"], operation.name(), "{operation:?}");
    }
    let create = &openapi["paths"]["/v1/jobs"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateJobRequest"
    );
    assert!(openapi["components"]["schemas"]["CreateJobRequest"]["allOf"].is_array());
    let text = openapi.to_string();
    assert!(
        !text.contains("#/$defs/"),
        "every reference points into components"
    );
}

#[test]
fn schema_bundle_snapshot() {
    insta::assert_json_snapshot!("schema_bundle", spec::json_schema_bundle());
}
