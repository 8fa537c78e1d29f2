//! The published contract as data: JSON Schema 2020-12 of every wire type, and OpenAPI 3.1.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::error::ErrorBody;
use crate::http::{Method, Operation};
use crate::job::{Job, JobAccepted, JobList};
use crate::requests::{
    CreateJobRequest, ListJobsQuery, MAX_UPLOAD_BYTES, StartJobRequest, UPLOAD_MIME_TYPES,
    UploadFile, UsageEventsQuery, UsageSummaryQuery,
};
use crate::responses::{Health, LegacyDownload, UploadResult, UsageEvents, UsageSummary};
use crate::validate::Problem;
use crate::webhook::WebhookPayload;

/// Where the published schema lives; `$id`s are built from it.
pub const SCHEMA_BASE: &str = "https://schemas.removebgvideo.com/v1";

type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

/// Every top-level wire type, by schema name: requests, responses, the error body, webhooks.
pub fn top_level_types() -> Vec<(&'static str, SchemaFn)> {
    fn entry<T: JsonSchema>(name: &'static str) -> (&'static str, SchemaFn) {
        (name, |generator| generator.subschema_for::<T>())
    }
    vec![
        entry::<CreateJobRequest>("CreateJobRequest"),
        entry::<StartJobRequest>("StartJobRequest"),
        entry::<ListJobsQuery>("ListJobsQuery"),
        entry::<UsageSummaryQuery>("UsageSummaryQuery"),
        entry::<UsageEventsQuery>("UsageEventsQuery"),
        entry::<UploadFile>("UploadFile"),
        entry::<Job>("Job"),
        entry::<JobAccepted>("JobAccepted"),
        entry::<JobList>("JobList"),
        entry::<UploadResult>("UploadResult"),
        entry::<UsageSummary>("UsageSummary"),
        entry::<UsageEvents>("UsageEvents"),
        entry::<LegacyDownload>("LegacyDownload"),
        entry::<Health>("Health"),
        entry::<ErrorBody>("ErrorBody"),
        entry::<Problem>("Problem"),
        entry::<WebhookPayload>("WebhookPayload"),
        entry::<crate::events::Event>("Event"),
    ]
}

fn definitions(definitions_path: &'static str) -> Map<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = definitions_path.into())
        .into_generator();
    for (_, schema_for) in top_level_types() {
        schema_for(&mut generator);
    }
    let mut defs = generator.take_definitions(true);
    defs.sort_keys();
    for schema in defs.values_mut() {
        bound_integer_formats(schema);
    }
    defs
}

/// The range of each Rust integer type, by the `format` schemars gives it.
fn integer_format_range(format: &str) -> Option<(Value, Value)> {
    Some(match format {
        "uint8" => (json!(0), json!(u8::MAX)),
        "uint16" => (json!(0), json!(u16::MAX)),
        "uint32" | "uint" => (json!(0), json!(u32::MAX)),
        "uint64" => (json!(0), json!(u64::MAX)),
        "int8" => (json!(i8::MIN), json!(i8::MAX)),
        "int16" => (json!(i16::MIN), json!(i16::MAX)),
        "int32" | "int" => (json!(i32::MIN), json!(i32::MAX)),
        "int64" => (json!(i64::MIN), json!(i64::MAX)),
        _ => return None,
    })
}

/// States the range of the Rust type behind every integer as `minimum`/`maximum` where the
/// schema gives none: a `format` such as `uint32` is only an annotation, and the server
/// refuses an `offset` of 2^32 that the bare schema would allow.
fn bound_integer_formats(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let is_integer = match object.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            let range = object
                .get("format")
                .and_then(Value::as_str)
                .and_then(integer_format_range);
            if let (true, Some((min, max))) = (is_integer, range) {
                object.entry("minimum").or_insert(min);
                object.entry("maximum").or_insert(max);
            }
            object.values_mut().for_each(bound_integer_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integer_formats),
        _ => {}
    }
}

/// One JSON Schema document with every type under `$defs`.
pub fn json_schema_bundle() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{SCHEMA_BASE}/removebgvideo.schema.json"),
        "title": "RemoveBGVideo API",
        "description": "Every request, response, error and webhook body of the RemoveBGVideo API v1. Generated from the Rust types of removebgvideo-core by `cargo xtask codegen`; do not edit.",
        "$defs": Value::Object(definitions("/$defs")),
    })
}

/// One document per top-level type: a `$ref` into the bundle, so each rule is written once.
pub fn per_type_schemas() -> Vec<(String, Value)> {
    top_level_types()
        .into_iter()
        .map(|(name, _)| {
            let schema = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": format!("{SCHEMA_BASE}/{name}.schema.json"),
                "title": name,
                "$ref": format!("removebgvideo.schema.json#/$defs/{name}"),
            });
            (name.to_owned(), schema)
        })
        .collect()
}

/// What each operation sends and answers, by schema name.
struct OperationDoc {
    summary: &'static str,
    request_body: Option<&'static str>,
    query: Option<&'static str>,
    response: &'static str,
    success_status: &'static str,
    errors: &'static [u16],
}

fn operation_doc(operation: Operation) -> OperationDoc {
    let doc = |summary, request_body, query, response, errors| OperationDoc {
        summary,
        request_body,
        query,
        response,
        success_status: "200",
        errors,
    };
    const AUTH: &[u16] = &[401, 429, 500];
    match operation {
        Operation::Upload => doc(
            "Upload a video (multipart form, one field `file`; mp4, mov, webm or avi; at most 500 MB).",
            None,
            None,
            "UploadResult",
            &[400, 401, 409, 413, 415, 429, 500],
        ),
        Operation::CreateJob => doc(
            "Create a job from a video URL; it starts at once unless `auto_start` is false.",
            Some("CreateJobRequest"),
            None,
            "JobAccepted",
            &[400, 401, 402, 409, 429, 500],
        ),
        Operation::StartJob => doc(
            "Start a draft job, or restart a failed one.",
            Some("StartJobRequest"),
            None,
            "JobAccepted",
            &[400, 401, 402, 404, 409, 429, 500],
        ),
        Operation::GetJob => doc("Read a job.", None, None, "Job", &[401, 404, 429, 500]),
        Operation::ListJobs => doc(
            "List the key's jobs, newest first.",
            None,
            Some("ListJobsQuery"),
            "JobList",
            &[400, 401, 429, 500],
        ),
        Operation::UsageSummary => doc(
            "Usage totals over the last `days` days.",
            None,
            Some("UsageSummaryQuery"),
            "UsageSummary",
            &[400, 401, 429, 500],
        ),
        Operation::UsageEvents => doc(
            "Recent usage events.",
            None,
            Some("UsageEventsQuery"),
            "UsageEvents",
            &[400, 401, 429, 500],
        ),
        Operation::LegacyDownload => doc(
            "Legacy: the download URL of a completed job (400 \"Job not completed\" before).",
            None,
            None,
            "LegacyDownload",
            &[400, 401, 404, 429, 500],
        ),
        Operation::Health => doc("Health check (no key needed).", None, None, "Health", AUTH),
    }
}

/// The tags operations are grouped by, with what each holds.
const TAGS: &[(&str, &str)] = &[
    ("Uploads", "Sending a video to the API."),
    (
        "Jobs",
        "Background removal jobs: create, start, read, list.",
    ),
    ("Usage", "Jobs and credits used by the key."),
    ("Legacy", "Older routes kept for existing clients."),
    ("Health", "Whether the service is up."),
];

/// An operation's tag (one of `TAGS`) and its longer description.
fn operation_notes(operation: Operation) -> (&'static str, &'static str) {
    match operation {
        Operation::Upload => (
            "Uploads",
            "Streams one video as the multipart field `file`, its part's Content-Type set to the video's MIME type (without one the server guesses from the file name, and refuses what it cannot tell). Answers the `video_url` to create a job from.",
        ),
        Operation::CreateJob => (
            "Jobs",
            "The background is given flat (`bg_type`, `bg_color`, `bg_image_url`) or nested (`background`); both together must agree. Transparency needs a format with alpha, so not `mp4`. Send an `Idempotency-Key`: a retry under it creates no second job.",
        ),
        Operation::StartJob => (
            "Jobs",
            "Only a draft (`created`) or a `failed` job can be started; a job in another state answers 400. Every field is optional; one given replaces the job's own.",
        ),
        Operation::GetJob => (
            "Jobs",
            "Poll it every 2 to 5 seconds until it is `completed` or `failed`. `output_url` is time-bound: read the job again for a fresh one when it expires. Another key's job answers 404.",
        ),
        Operation::ListJobs => (
            "Jobs",
            "Pages with `limit` (1 to 100) and `offset`, optionally only the jobs in one `status`.",
        ),
        Operation::UsageSummary => (
            "Usage",
            "Totals of jobs and credits over the last `days` days (1 to 90).",
        ),
        Operation::UsageEvents => (
            "Usage",
            "The key's recent usage events, at most `limit` (1 to 100).",
        ),
        Operation::LegacyDownload => (
            "Legacy",
            "The older route to a job's download URL; `GET /v1/jobs/{job_id}` and its `output_url` replace it. Answers 400 \"Job not completed\" until the job is completed.",
        ),
        Operation::Health => (
            "Health",
            "Needs no key; answers `{\"status\": \"ok\"}` while the service is up.",
        ),
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn query_parameters(query: &str, components: &Map<String, Value>) -> Vec<Value> {
    let Some(properties) = components
        .get(query)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut schema = without_null(schema.clone());
            let description = schema
                .as_object_mut()
                .and_then(|s| s.remove("description"))
                .unwrap_or(Value::Null);
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
        })
        .collect()
}

/// A query string cannot carry a JSON null (a parameter is given or absent), so a query
/// parameter's schema drops the `null` that an `Option` field allows in a JSON body.
fn without_null(mut schema: Value) -> Value {
    let is_null = |s: &Value| s.get("type").and_then(Value::as_str) == Some("null");
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
    if let Some(Value::Array(options)) = schema.get("anyOf").cloned() {
        let kept: Vec<Value> = options.into_iter().filter(|o| !is_null(o)).collect();
        let object = schema
            .as_object_mut()
            .expect("a schema with anyOf is an object");
        object.remove("anyOf");
        match <[Value; 1]>::try_from(kept) {
            // One option left: it becomes the schema, keeping the description beside it.
            Ok([Value::Object(only)]) => object.extend(only),
            Ok([other]) => {
                object.insert("anyOf".into(), json!([other]));
            }
            Err(kept) => {
                object.insert("anyOf".into(), Value::Array(kept));
            }
        }
    }
    schema
}

/// The links of an operation's success answer: where the ids it returns can be used next, so
/// that generated clients and stateful testers (schemathesis) can chain the calls.
fn links(operation: Operation) -> Option<Value> {
    let job = |target: Operation, description: &str| {
        json!({
            "operationId": target.name(),
            "parameters": { "job_id": "$response.body#/id" },
            "description": description,
        })
    };
    let links = match operation {
        Operation::Upload => json!({
            "CreateJobFromUpload": {
                "operationId": Operation::CreateJob.name(),
                "requestBody": { "video_url": "$response.body#/video_url" },
                "description": "Create a job from the uploaded video (`video_url`).",
            },
            "CreateDraftFromUpload": {
                "operationId": Operation::CreateJob.name(),
                "requestBody": { "video_url": "$response.body#/video_url", "auto_start": false },
                "description": "Create a draft job from the uploaded video, to start it later.",
            }
        }),
        Operation::CreateJob => json!({
            "GetJob": job(Operation::GetJob, "Read the job just created."),
            "StartJob": job(Operation::StartJob, "Start the job (a draft made with `auto_start: false`)."),
            "LegacyDownload": job(Operation::LegacyDownload, "The job's download URL once it is completed."),
        }),
        Operation::StartJob => json!({
            "GetJob": job(Operation::GetJob, "Poll the job just started."),
            "LegacyDownload": job(Operation::LegacyDownload, "The job's download URL once it is completed."),
        }),
        Operation::GetJob => json!({
            "StartJob": job(Operation::StartJob, "Restart the job when it failed."),
            "LegacyDownload": job(Operation::LegacyDownload, "The job's download URL once it is completed."),
        }),
        _ => return None,
    };
    Some(links)
}

/// Every `$ref` target under `value`, as written (`#/components/schemas/Job`).
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                found.push(target.clone());
            }
            object.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

/// Drops the component schemas no path, webhook, response or header reaches: types such as the
/// SDK's progress `Event` or the query structs (inlined as parameters) stay in the JSON Schema
/// bundle, where clients use them, but are not part of the HTTP API.
fn keep_reachable_schemas(document: &mut Value) {
    let schemas = document["components"]["schemas"].take();
    let Value::Object(mut schemas) = schemas else {
        return;
    };
    let mut pending = Vec::new();
    for part in ["paths", "webhooks"] {
        references(&document[part], &mut pending);
    }
    for part in ["responses", "headers"] {
        references(&document["components"][part], &mut pending);
    }
    let mut kept = Map::new();
    while let Some(target) = pending.pop() {
        let Some(name) = target.strip_prefix("#/components/schemas/") else {
            continue;
        };
        if let Some(schema) = schemas.remove(name) {
            references(&schema, &mut pending);
            kept.insert(name.to_owned(), schema);
        }
    }
    kept.sort_keys();
    document["components"]["schemas"] = Value::Object(kept);
}

/// The OpenAPI 3.1 document of every endpoint, reusing the JSON Schemas as components.
pub fn openapi() -> Value {
    let components = definitions("/components/schemas");
    let mut paths = Map::new();
    for operation in Operation::ALL {
        let doc = operation_doc(operation);
        let mut op = Map::new();
        let (tag, description) = operation_notes(operation);
        op.insert("operationId".into(), json!(operation.name()));
        op.insert("summary".into(), json!(doc.summary));
        op.insert("description".into(), json!(description));
        op.insert("tags".into(), json!([tag]));
        let mut parameters = Vec::new();
        if operation.path_template().contains("{job_id}") {
            parameters.push(json!({ "name": "job_id", "in": "path", "required": true, "schema": { "type": "string", "minLength": 1 } }));
        }
        if let Some(query) = doc.query {
            parameters.extend(query_parameters(query, &components));
        }
        if operation.method() == Method::Post {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "A unique key per logical request, the same on retries: a repeat within 24 h replays the first answer and creates nothing.",
                "schema": { "type": "string", "minLength": 1, "maxLength": crate::http::IDEMPOTENCY_KEY_MAX_BYTES, "pattern": "^[!-~]+$" }
            }));
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = doc.request_body {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": schema_ref(body) } } }),
            );
        }
        if operation == Operation::Upload {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "multipart/form-data": {
                    "schema": {
                        "type": "object", "required": ["file"],
                        // A field's name travels in its part's header, which cannot hold control
                        // characters (the server refuses such a body as malformed); clients
                        // percent-encode CR, LF and quotes themselves.
                        "propertyNames": { "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$" },
                        "properties": { "file": {
                            "type": "string",
                            // OpenAPI 3.1 says bytes with contentMediaType; many tools
                            // (schemathesis among them) still look for the 3.0 `format`.
                            "format": "binary",
                            "contentMediaType": "application/octet-stream",
                            "minLength": 1,
                            "description": format!("The video, not empty and at most {MAX_UPLOAD_BYTES} bytes; its part's Content-Type is one of {}.", UPLOAD_MIME_TYPES.join(", ")),
                        } }
                    },
                    // The part's own Content-Type says what the video is; without one the
                    // server guesses from the file name and refuses the upload when it cannot.
                    "encoding": { "file": { "contentType": UPLOAD_MIME_TYPES.join(", ") } }
                } } }),
            );
        }
        let mut responses = Map::new();
        let mut success = json!({ "description": "Success", "headers": { "X-Request-Id": { "$ref": "#/components/headers/RequestId" } },
                "content": { "application/json": { "schema": schema_ref(doc.response) } } });
        if let Some(links) = links(operation) {
            success["links"] = links;
        }
        responses.insert(doc.success_status.into(), success);
        for status in doc.errors {
            responses.insert(
                status.to_string(),
                json!({ "$ref": format!("#/components/responses/Error{status}") }),
            );
        }
        op.insert("responses".into(), Value::Object(responses));
        if !operation.needs_api_key() {
            op.insert("security".into(), json!([]));
        }
        let path = paths
            .entry(operation.path_template())
            .or_insert_with(|| json!({}));
        path[operation.method().as_str().to_ascii_lowercase()] = Value::Object(op);
    }
    let error_statuses = [
        (
            400,
            "Invalid request (`invalid_request`); also a start of a job that is neither a draft nor failed, and the legacy download of a job not completed.",
        ),
        (
            401,
            "Missing or invalid API key (`missing_api_key`, `invalid_api_key`).",
        ),
        (
            402,
            "Not enough credits (`insufficient_credits`); never retried.",
        ),
        (
            404,
            "No such job for this key (another key's job is 404 too).",
        ),
        (
            409,
            "Idempotency-Key reused with a different body (`idempotency_conflict`).",
        ),
        (413, "Upload larger than 500 MB."),
        (415, "Upload of an unsupported MIME type."),
        (429, "Rate limited (`rate_limited`); honour Retry-After."),
        (
            500,
            "Server error (`internal_error`, `timeout`); retried with backoff.",
        ),
    ];
    let mut error_responses = Map::new();
    for (status, description) in error_statuses {
        let mut headers = json!({ "X-Request-Id": { "$ref": "#/components/headers/RequestId" } });
        if status == 429 {
            headers["Retry-After"] = json!({ "description": "Seconds to wait before retrying.", "schema": { "type": "integer", "minimum": 0 } });
        }
        error_responses.insert(
            format!("Error{status}"),
            json!({ "description": description, "headers": headers,
                    "content": { "application/json": { "schema": schema_ref("ErrorBody") } } }),
        );
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "RemoveBGVideo API",
            "version": "1",
            "description": "Background removal for videos as asynchronous jobs: upload or URL, create, start, poll, download. Generated from removebgvideo-core by `cargo xtask codegen`; do not edit.",
            // The licence of this description (the repository's), not of the service.
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" },
            "contact": { "name": "RemoveBGVideo", "url": "https://removebgvideo.com/docs" }
        },
        "servers": [{ "url": "https://api.removebgvideo.com", "description": "Production" }],
        "security": [{ "ApiKey": [] }],
        "tags": TAGS.iter().map(|(name, description)| json!({ "name": name, "description": description })).collect::<Vec<_>>(),
        "paths": Value::Object(paths),
        "webhooks": {
            "jobEvent": { "post": {
                "operationId": "job_event",
                "tags": ["Jobs"],
                "description": "Sent to a job's `webhook_url` when it starts, completes or fails. Verify the signature over the raw body, and refuse a timestamp outside your tolerance (300 s by default) to stop replays.",
                "summary": "job.started, job.completed or job.failed; signed with X-Webhook-Signature = sha256=hex(HMAC-SHA256(secret, timestamp + \".\" + raw body)).",
                "requestBody": { "content": { "application/json": { "schema": schema_ref("WebhookPayload") } } },
                "responses": { "200": { "description": "Delivery accepted." } }
            } }
        },
        "components": {
            "schemas": Value::Object(components),
            "responses": Value::Object(error_responses),
            "headers": { "RequestId": { "description": "The id of this request, for logs and support.", "schema": { "type": "string" } } },
            "securitySchemes": { "ApiKey": { "type": "apiKey", "in": "header", "name": "X-Api-Key" } }
        }
    });
    keep_reachable_schemas(&mut document);
    document
}
