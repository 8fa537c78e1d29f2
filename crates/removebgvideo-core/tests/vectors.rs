//! Runs every shared vector in `schema/vectors/` against the core; the Python and Node packages
//! run the same files, so the three languages agree code for code.

use std::time::Duration;

use removebgvideo_core::http::{Headers, RequestBuilder, parse_response};
use removebgvideo_core::validate::{Problem, Severity, parse_and_validate};
use removebgvideo_core::{
    ApiKey, CreateJobRequest, Error, ErrorCode, FixedDraws, Job, JobAccepted, JobList, JobStatus,
    JobTracker, LegacyDownload, ListJobsQuery, Model, Outcome, PollPolicy, PollStep, Poller,
    Replay, RetryBudget, RetryPolicy, StartJobRequest, Timestamp, UploadFile, UploadResult,
    UsageEventsQuery, UsageSummary, UsageSummaryQuery, estimate_credits, spec, webhook,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/../../schema/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    doc["vectors"].as_array().expect("a vectors array").clone()
}

fn name(vector: &Value) -> String {
    vector["name"].as_str().unwrap_or("(unnamed)").to_owned()
}

/// (path, code) pairs of problems with the given severity.
fn pairs(problems: &[Problem], severity: Severity) -> Vec<(String, String)> {
    problems
        .iter()
        .filter(|p| p.severity == severity)
        .map(|p| (p.path.clone(), json!(p.code).as_str().unwrap().to_owned()))
        .collect()
}

fn expected_pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().into(),
                e["code"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn problems_of<T: DeserializeOwned + removebgvideo_core::Validate>(body: &Value) -> Vec<Problem> {
    match parse_and_validate::<T>(body) {
        Ok((_, warnings)) => warnings,
        Err(error) => {
            assert_eq!(error.code, ErrorCode::ValidationError);
            assert!(!error.message.is_empty());
            error.problems
        }
    }
}

fn rust_problems(type_name: &str, body: &Value) -> Vec<Problem> {
    match type_name {
        "CreateJobRequest" => problems_of::<CreateJobRequest>(body),
        "StartJobRequest" => problems_of::<StartJobRequest>(body),
        "ListJobsQuery" => problems_of::<ListJobsQuery>(body),
        "UsageSummaryQuery" => problems_of::<UsageSummaryQuery>(body),
        "UsageEventsQuery" => problems_of::<UsageEventsQuery>(body),
        "UploadFile" => problems_of::<UploadFile>(body),
        other => panic!("no validator for {other}"),
    }
}

fn schema_validator(type_name: &str) -> jsonschema::Validator {
    let mut schema = spec::json_schema_bundle();
    schema["$ref"] = json!(format!("#/$defs/{type_name}"));
    jsonschema::validator_for(&schema).expect("the generated schema compiles")
}

#[test]
fn request_vectors_match_rust_validation_and_json_schema() {
    let vectors = load("requests.json");
    assert!(vectors.len() >= 40, "the request vectors are all there");
    let mut failures = Vec::new();
    for vector in &vectors {
        let name = name(vector);
        let type_name = vector["type"].as_str().unwrap();
        let body = &vector["body"];
        let problems = rust_problems(type_name, body);
        let errors = pairs(&problems, Severity::Error);
        let warnings = pairs(&problems, Severity::Warning);
        if errors != expected_pairs(&vector["errors"]) {
            failures.push(format!(
                "{name}: errors {errors:?}, expected {}",
                vector["errors"]
            ));
        }
        if warnings != expected_pairs(&vector["warnings"]) {
            failures.push(format!(
                "{name}: warnings {warnings:?}, expected {}",
                vector["warnings"]
            ));
        }
        for problem in &problems {
            let field = removebgvideo_core::validate::display_path(&problem.path);
            if !problem.message.contains(&field) {
                failures.push(format!(
                    "{name}: message {:?} does not name {field}",
                    problem.message
                ));
            }
        }

        let validator = schema_validator(type_name);
        let schema_errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        let rust_valid = errors.is_empty();
        let disagreement = vector.get("schema_disagrees").and_then(Value::as_str);
        let schema_valid = schema_errors.is_empty();
        match disagreement {
            None if schema_valid != rust_valid => failures.push(format!(
                "{name}: Rust says valid={rust_valid}, JSON Schema says valid={schema_valid} {schema_errors:?}"
            )),
            Some(_) if schema_valid == rust_valid => failures.push(format!(
                "{name}: marked as a deliberate disagreement, but Rust and JSON Schema agree"
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn job_id_vectors() {
    let builder = RequestBuilder::new(ApiKey::new("k"), "test");
    for vector in load("job_ids.json") {
        let id = vector["job_id"].as_str().unwrap();
        match (builder.get_job(id), vector.get("path")) {
            (Ok(request), Some(path)) => assert_eq!(request.path, path.as_str().unwrap(), "{id:?}"),
            (Err(error), None) => {
                assert_eq!(json!(error.problems[0].code), vector["error"], "{id:?}");
                assert_eq!(error.problems[0].path, "/job_id");
            }
            (result, _) => panic!("{id:?}: unexpected {result:?}"),
        }
    }
}

fn headers_from(value: &Value) -> Headers {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every field the vector names must equal the parsed value's field.
fn assert_subset(actual: &Value, expected: &Value, context: &str) {
    match expected {
        Value::Object(fields) => {
            for (key, want) in fields {
                assert_subset(&actual[key], want, &format!("{context}.{key}"));
            }
        }
        Value::Array(items) => {
            let got = actual
                .as_array()
                .unwrap_or_else(|| panic!("{context}: not an array"));
            assert_eq!(got.len(), items.len(), "{context}");
            for (i, want) in items.iter().enumerate() {
                assert_subset(&got[i], want, &format!("{context}[{i}]"));
            }
        }
        want => assert_eq!(actual, want, "{context}"),
    }
}

fn parse_as<T: removebgvideo_core::http::ResponseBody + Serialize>(
    status: u16,
    headers: &Headers,
    body: &[u8],
) -> Result<Value, Error> {
    parse_response::<T>(status, headers, body, Timestamp::EPOCH)
        .map(|v| serde_json::to_value(v).unwrap())
}

#[test]
fn response_vectors() {
    for vector in load("responses.json") {
        let name = name(&vector);
        let status = vector["status"].as_u64().unwrap() as u16;
        let headers = headers_from(&vector["headers"]);
        let body = vector["body"].as_str().unwrap().as_bytes();
        let parsed = match vector["type"].as_str().unwrap() {
            "Job" => parse_as::<Job>(status, &headers, body),
            "JobAccepted" => parse_as::<JobAccepted>(status, &headers, body),
            "JobList" => parse_as::<JobList>(status, &headers, body),
            "UploadResult" => parse_as::<UploadResult>(status, &headers, body),
            "UsageSummary" => parse_as::<UsageSummary>(status, &headers, body),
            "LegacyDownload" => parse_as::<LegacyDownload>(status, &headers, body),
            other => panic!("{name}: no parser for {other}"),
        };
        let expect = &vector["expect"];
        match (parsed, expect.get("ok"), expect.get("error")) {
            (Ok(value), Some(ok), None) => assert_subset(&value, ok, &name),
            (Err(error), None, Some(want)) => {
                assert_eq!(
                    error.code.as_str(),
                    want["code"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(json!(error.kind()), want["kind"], "{name}");
                assert_eq!(
                    error.status,
                    want["status"].as_u64().map(|s| s as u16),
                    "{name}"
                );
                if let Some(request_id) = want.get("request_id") {
                    assert_eq!(error.request_id.as_deref(), request_id.as_str(), "{name}");
                }
                if let Some(ms) = want.get("retry_after_ms") {
                    assert_eq!(
                        error.retry_after,
                        Some(Duration::from_millis(ms.as_u64().unwrap())),
                        "{name}"
                    );
                }
                assert!(
                    !error.message.is_empty(),
                    "{name}: an error always says something"
                );
            }
            (result, _, _) => panic!("{name}: unexpected {result:?}"),
        }
    }
}

#[test]
fn transition_vectors() {
    for vector in load("transitions.json") {
        let mut tracker = JobTracker::new();
        let verdicts: Vec<Value> = vector["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let status = JobStatus::from(s.as_str().unwrap());
                json!(tracker.observe(&status, None, Timestamp::from_unix_secs(i as u64), None))
            })
            .collect();
        assert_eq!(
            Value::Array(verdicts),
            vector["verdicts"],
            "{}",
            vector["statuses"]
        );
        assert_eq!(
            tracker.current().map(|s| s.as_str()),
            vector["final"].as_str(),
            "{}",
            vector["statuses"]
        );
    }
}

/// The default policy with the vector's overrides applied (same field names as the serde form).
fn with_overrides<T: Serialize + DeserializeOwned + Default>(overrides: Option<&Value>) -> T {
    let mut value = serde_json::to_value(T::default()).unwrap();
    if let Some(Value::Object(fields)) = overrides {
        for (key, field) in fields {
            assert!(value.get(key).is_some(), "unknown policy field {key}");
            value[key] = field.clone();
        }
    }
    serde_json::from_value(value).unwrap()
}

fn draws(vector: &Value) -> FixedDraws {
    FixedDraws::new(
        vector["draws"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap())
            .collect(),
    )
}

#[test]
fn retry_vectors() {
    for vector in load("retry.json") {
        let name = name(&vector);
        let policy: RetryPolicy = with_overrides(vector.get("policy"));
        let mut budget = match vector.get("budget_tokens").and_then(Value::as_u64) {
            Some(tokens) => RetryBudget::default().with_tokens(tokens as u32),
            None => RetryBudget::default(),
        };
        let outcome = &vector["outcome"];
        let headers = headers_from(&outcome["headers"]);
        let code = ErrorCode::from(outcome["code"].as_str().unwrap_or(""));
        let outcome = if let Some(status) = outcome.get("status") {
            Outcome::Status {
                status: status.as_u64().unwrap() as u16,
                code: &code,
                headers: &headers,
            }
        } else if outcome.get("connect_failed").is_some() {
            Outcome::ConnectFailed
        } else {
            Outcome::NoAnswer {
                timed_out: outcome["timed_out"].as_bool().unwrap(),
            }
        };
        let replay = if vector["replay"] == "unsafe" {
            Replay::Unsafe
        } else {
            Replay::Safe
        };
        let now = Timestamp::from_unix_millis(vector["now_ms"].as_u64().unwrap());
        let decision = removebgvideo_core::retry::decide(
            &policy,
            &mut budget,
            vector["retries_done"].as_u64().unwrap() as u32,
            &outcome,
            replay,
            now,
            &mut draws(&vector),
        );
        let mut expect = vector["expect"].clone();
        if let Some(after) = expect
            .as_object_mut()
            .and_then(|e| e.remove("budget_after"))
        {
            assert_eq!(
                u64::from(budget.tokens()),
                after.as_u64().unwrap(),
                "{name}: budget"
            );
        }
        assert_eq!(json!(decision), expect, "{name}");
    }
}

#[test]
fn poll_vectors() {
    for vector in load("poll.json") {
        let name = name(&vector);
        let policy: PollPolicy = with_overrides(vector.get("policy"));
        let deadline = vector["deadline_ms"]
            .as_u64()
            .map(Timestamp::from_unix_millis);
        let mut poller = Poller::new(policy, deadline);
        let mut random = draws(&vector);
        for (i, step) in vector["steps"].as_array().unwrap().iter().enumerate() {
            let context = format!("{name}, step {i}");
            let now = Timestamp::from_unix_millis(step["at_ms"].as_u64().unwrap());
            let expect = &step["expect"];
            let result = if let Some(job) = step.get("job") {
                let job: Job = serde_json::from_value(job.clone()).unwrap();
                let hint = step
                    .get("hint_ms")
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                let observed = poller.on_job(job, now, hint, &mut random);
                if let Some(verdict) = expect.get("verdict") {
                    assert_eq!(&json!(observed.verdict), verdict, "{context}");
                }
                Ok(observed.step)
            } else {
                let error = &step["error"];
                let mut err = Error::new(ErrorCode::from(error["code"].as_str().unwrap()), "test");
                err.status = error
                    .get("status")
                    .and_then(Value::as_u64)
                    .map(|s| s as u16);
                err.retry_after = error
                    .get("retry_after_ms")
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                poller.on_error(err, now, &mut random)
            };
            match result {
                Ok(PollStep::PollAt(at)) => {
                    assert_eq!(
                        Some(at.unix_millis()),
                        expect["poll_at_ms"].as_u64(),
                        "{context}"
                    )
                }
                Ok(PollStep::Completed(job)) => {
                    assert_eq!(expect["completed"], true, "{context}");
                    assert_eq!(job.status, JobStatus::Completed);
                }
                Ok(PollStep::Failed(job)) => {
                    assert_eq!(expect["failed"], true, "{context}");
                    assert_eq!(job.status, JobStatus::Failed);
                }
                Ok(PollStep::DeadlineReached(job)) => {
                    assert_eq!(expect["deadline_reached"], true, "{context}");
                    assert_eq!(
                        job.map(|j| j.status.to_string()).as_deref(),
                        expect["last_status"].as_str(),
                        "{context}"
                    );
                }
                Err(error) => assert_eq!(
                    Some(error.code.as_str()),
                    expect["error"].as_str(),
                    "{context}"
                ),
            }
        }
    }
}

#[test]
fn webhook_vectors() {
    for vector in load("webhooks.json") {
        let name = name(&vector);
        let result = webhook::verify(
            &headers_from(&vector["headers"]),
            vector["body"].as_str().unwrap().as_bytes(),
            vector["secret"].as_str().unwrap(),
            Timestamp::from_unix_millis(vector["now_ms"].as_u64().unwrap()),
            Duration::from_secs(vector["tolerance_s"].as_u64().unwrap()),
        );
        let expect = &vector["expect"];
        match result {
            Ok(hook) => {
                let ok = &expect["ok"];
                assert_eq!(hook.event.as_str(), ok["event"].as_str().unwrap(), "{name}");
                assert_eq!(hook.data.id, ok["job_id"].as_str().unwrap(), "{name}");
                assert_eq!(
                    hook.delivery_id.as_deref(),
                    ok["delivery_id"].as_str(),
                    "{name}"
                );
            }
            Err(error) => assert_eq!(
                Some(error.code.as_str()),
                expect["error"].as_str(),
                "{name}: {error}"
            ),
        }
    }
}

#[test]
fn webhook_signing_matches_the_independent_signatures() {
    // The vectors were signed by Python's hmac module; our signer must produce the same bytes.
    let vector = &load("webhooks.json")[0];
    let headers = headers_from(&vector["headers"]);
    let timestamp = headers.get(webhook::TIMESTAMP_HEADER).unwrap();
    let signature = webhook::sign(
        vector["secret"].as_str().unwrap(),
        timestamp,
        vector["body"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(
        Some(signature.as_str()),
        headers.get(webhook::SIGNATURE_HEADER)
    );
}

#[test]
fn credit_vectors() {
    for vector in load("credits.json") {
        let model = Model::from(vector["model"].as_str().unwrap());
        let result = estimate_credits(&model, vector["duration_seconds"].as_f64().unwrap());
        match result {
            Ok(credits) => assert_eq!(Some(credits), vector["credits"].as_u64(), "{vector}"),
            Err(error) => assert_eq!(
                Some(error.code.as_str()),
                vector["error"].as_str(),
                "{vector}"
            ),
        }
    }
}
