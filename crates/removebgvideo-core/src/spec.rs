//! The published contract as data: JSON Schema 2020-12 of every wire type, and OpenAPI 3.1.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::error::ErrorBody;
use crate::http::{Method, Operation};
use crate::job::{Job, JobAccepted, JobList};
use crate::requests::{
    CreateJobRequest, ListJobsQuery, StartJobRequest, UploadFile, UsageEventsQuery,
    UsageSummaryQuery,
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
    defs
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
            &[400, 401, 413, 415, 429, 500],
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
            let mut schema = schema.clone();
            let description = schema
                .as_object_mut()
                .and_then(|s| s.remove("description"))
                .unwrap_or(Value::Null);
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
        })
        .collect()
}

/// The OpenAPI 3.1 document of every endpoint, reusing the JSON Schemas as components.
pub fn openapi() -> Value {
    let components = definitions("/components/schemas");
    let mut paths = Map::new();
    for operation in Operation::ALL {
        let doc = operation_doc(operation);
        let mut op = Map::new();
        op.insert("operationId".into(), json!(operation.name()));
        op.insert("summary".into(), json!(doc.summary));
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
                "schema": { "type": "string", "maxLength": 255 }
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
                json!({ "required": true, "content": { "multipart/form-data": { "schema": {
                    "type": "object", "required": ["file"],
                    "properties": { "file": { "type": "string", "contentMediaType": "video/mp4", "description": "The video: video/mp4, video/quicktime, video/webm or video/x-msvideo." } }
                } } } }),
            );
        }
        let mut responses = Map::new();
        responses.insert(
            doc.success_status.into(),
            json!({ "description": "Success", "headers": { "X-Request-Id": { "$ref": "#/components/headers/RequestId" } },
                    "content": { "application/json": { "schema": schema_ref(doc.response) } } }),
        );
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
            "Invalid request (`invalid_request`), or legacy download of an unfinished job.",
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
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "RemoveBGVideo API",
            "version": "1",
            "description": "Background removal for videos as asynchronous jobs: upload or URL, create, start, poll, download. Generated from removebgvideo-core by `cargo xtask codegen`; do not edit."
        },
        "servers": [{ "url": "https://api.removebgvideo.com" }],
        "security": [{ "ApiKey": [] }],
        "paths": Value::Object(paths),
        "webhooks": {
            "jobEvent": { "post": {
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
    })
}
