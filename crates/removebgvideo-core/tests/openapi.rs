//! The published OpenAPI document holds what linters and stateful testers rely on: links that
//! resolve, no unused components, defaults valid for their own schemas, and upload and query
//! parameters that say what the server checks. (`cargo xtask contract` runs the independent
//! validators and schemathesis on it; these are the rules kept as fast tests.)

use std::collections::BTreeSet;

use removebgvideo_core::http::IDEMPOTENCY_KEY_MAX_BYTES;
use removebgvideo_core::requests::{UPLOAD_MIME_TYPES, validate_idempotency_key};
use removebgvideo_core::{Operation, spec};
use serde_json::{Value, json};

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation));
        }
    }
    found
}

fn by_operation_id<'a>(document: &'a Value, id: &str) -> Option<&'a Value> {
    operations(document)
        .into_iter()
        .map(|(_, _, op)| op)
        .find(|op| op["operationId"] == id)
}

/// Every `$ref` under `value`.
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                found.insert(target.clone());
            }
            object.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[test]
fn every_link_names_an_operation_and_its_parameters() {
    let document = spec::openapi();
    let mut links = 0;
    for (method, path, operation) in operations(&document) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            let Some(response_links) = response.get("links").and_then(Value::as_object) else {
                continue;
            };
            assert!(
                status.starts_with('2'),
                "{method} {path}: links on {status}"
            );
            for (name, link) in response_links {
                links += 1;
                let target_id = link["operationId"].as_str().expect("an operationId");
                let target = by_operation_id(&document, target_id)
                    .unwrap_or_else(|| panic!("{name}: no operation {target_id}"));
                let names: Vec<&str> = target["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                for (parameter, expression) in link["parameters"].as_object().into_iter().flatten()
                {
                    assert!(names.contains(&parameter.as_str()), "{name}: {parameter}");
                    assert!(expression.as_str().unwrap().starts_with("$response.body#/"));
                }
                if let Some(body) = link.get("requestBody") {
                    assert!(target.get("requestBody").is_some(), "{name}");
                    for (field, _) in body.as_object().unwrap() {
                        let schema = &document["components"]["schemas"]["CreateJobRequest"];
                        assert!(schema["properties"].get(field).is_some(), "{name}: {field}");
                    }
                }
                assert!(link["description"].is_string(), "{name}");
            }
        }
    }
    let create = by_operation_id(&document, Operation::CreateJob.name()).unwrap();
    let create_links = &create["responses"]["200"]["links"];
    for target in [Operation::GetJob, Operation::StartJob] {
        assert!(
            create_links
                .as_object()
                .unwrap()
                .values()
                .any(|l| l["operationId"] == target.name()
                    && l["parameters"]["job_id"] == "$response.body#/id"),
            "create -> {target:?}"
        );
    }
    let upload = by_operation_id(&document, Operation::Upload.name()).unwrap();
    assert_eq!(
        upload["responses"]["200"]["links"]["CreateJobFromUpload"]["requestBody"]["video_url"],
        "$response.body#/video_url"
    );
    assert!(links >= 8, "{links} links");
}

#[test]
fn every_component_is_used_and_every_reference_resolves() {
    let document = spec::openapi();
    let mut used = BTreeSet::new();
    references(&document, &mut used);
    for target in &used {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(document.pointer(pointer).is_some(), "{target} resolves");
    }
    for kind in ["schemas", "responses", "headers"] {
        for name in document["components"][kind].as_object().unwrap().keys() {
            let target = format!("#/components/{kind}/{name}");
            assert!(used.contains(&target), "{target} is never used");
        }
    }
    // The JSON Schema bundle keeps the SDK-only types the HTTP API does not carry.
    let bundle = spec::json_schema_bundle();
    assert!(bundle["$defs"]["Event"].is_object());
    assert!(document["components"]["schemas"].get("Event").is_none());
}

/// Every `(pointer, schema)` below `value` that has a `default`.
fn with_defaults(value: &Value, pointer: String, found: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(object) => {
            if object.contains_key("default") {
                found.push((pointer.clone(), value.clone()));
            }
            for (key, child) in object {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                with_defaults(child, format!("{pointer}/{escaped}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                with_defaults(child, format!("{pointer}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_default_satisfies_its_own_schema() {
    for (name, document) in [
        ("bundle", spec::json_schema_bundle()),
        ("openapi", spec::openapi()),
    ] {
        let mut found = Vec::new();
        with_defaults(&document, String::new(), &mut found);
        assert!(!found.is_empty(), "{name} has defaults to check");
        for (pointer, schema) in found {
            // Validated in place, so that its `$ref`s resolve against the whole document.
            let mut root = json!({
                "$defs": document.get("$defs").cloned().unwrap_or(json!({})),
                "components": document.get("components").cloned().unwrap_or(json!({})),
            });
            root["$ref"] = json!(format!("#{pointer}"));
            let validator = jsonschema::validator_for(&root)
                .unwrap_or_else(|e| panic!("{name} {pointer}: {e}"));
            assert!(
                validator.is_valid(&schema["default"]),
                "{name} {pointer}: default {} is not valid for {schema}",
                schema["default"]
            );
        }
    }
}

#[test]
fn the_upload_form_states_the_part_content_types_and_a_non_empty_file() {
    let document = spec::openapi();
    let upload = by_operation_id(&document, Operation::Upload.name()).unwrap();
    let form = &upload["requestBody"]["content"]["multipart/form-data"];
    let listed: Vec<&str> = form["encoding"]["file"]["contentType"]
        .as_str()
        .unwrap()
        .split(", ")
        .collect();
    assert_eq!(listed, UPLOAD_MIME_TYPES);
    let file = &form["schema"]["properties"]["file"];
    assert_eq!(file["minLength"], 1);
    assert_eq!(file["format"], "binary");
    assert_eq!(form["schema"]["required"], json!(["file"]));
}

#[test]
fn parameters_state_the_server_rules() {
    let document = spec::openapi();
    for (method, path, operation) in operations(&document) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let schema = &parameter["schema"];
            let text = schema.to_string();
            assert!(
                !text.contains("\"null\""),
                "{method} {path} {}: a query cannot carry null: {text}",
                parameter["name"]
            );
            if parameter["name"] == "Idempotency-Key" {
                assert_eq!(schema["maxLength"], IDEMPOTENCY_KEY_MAX_BYTES);
                assert_eq!(schema["pattern"], "^[!-~]+$");
            }
        }
    }
    // The length the document states is the one the core enforces.
    let longest = vec![b'k'; IDEMPOTENCY_KEY_MAX_BYTES];
    assert!(validate_idempotency_key(&longest).is_ok());
    let error = validate_idempotency_key(&[longest, vec![b'k']].concat()).unwrap_err();
    assert_eq!(error.problems[0].path, "/Idempotency-Key");
    assert!(error.problems[0].message.contains("1 to 255 bytes"));
    // The pattern the document states is the one the core enforces.
    assert!(validate_idempotency_key(b"has space").is_err());
    assert!(validate_idempotency_key(b"").is_err());
    let list = by_operation_id(&document, Operation::ListJobs.name()).unwrap();
    let offset = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "offset")
        .unwrap();
    assert_eq!(offset["schema"]["maximum"], u32::MAX);
    assert_eq!(offset["schema"]["type"], "integer");
    let status = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap();
    assert_eq!(status["schema"]["$ref"], "#/components/schemas/JobStatus");
}

#[test]
fn the_document_names_its_licence_servers_tags_and_every_operation() {
    let document = spec::openapi();
    assert_eq!(
        document["info"]["license"]["identifier"],
        "MIT OR Apache-2.0"
    );
    assert_eq!(
        document["servers"][0]["url"],
        "https://api.removebgvideo.com"
    );
    let tags: BTreeSet<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let webhook = &document["webhooks"]["jobEvent"]["post"];
    for operation in operations(&document)
        .into_iter()
        .map(|(_, _, op)| op)
        .chain([webhook])
    {
        assert!(operation["operationId"].is_string(), "{operation}");
        assert!(operation["description"].is_string(), "{operation}");
        let tag = operation["tags"][0].as_str().unwrap();
        assert!(tags.contains(tag), "{tag}");
    }
}
