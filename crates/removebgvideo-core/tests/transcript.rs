//! The virtual-time simulation of a whole job, snapshotted: any change to a retry, backoff or
//! polling decision shows up as a reviewed diff of this transcript.

#[path = "../examples/simulate.rs"]
mod simulate;

use serde_json::Value;

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn simulated_job_transcript() {
    let events = simulate::simulate();

    let retries = events_of(&events, "retry");
    let reasons: Vec<&str> = retries
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["HTTP 503", "HTTP 429", "HTTP 503"]);
    assert_eq!(
        retries[1]["delay_ms"], 2000,
        "Retry-After: 2 is honoured exactly"
    );

    let creates: Vec<&Value> = events_of(&events, "request")
        .into_iter()
        .filter(|r| r["operation"] == "create_job")
        .collect();
    assert_eq!(creates.len(), 2);
    assert_eq!(
        creates[0]["idempotency_key"], creates[1]["idempotency_key"],
        "a retry reuses the key"
    );

    let times: Vec<u64> = events
        .iter()
        .map(|e| e["at_ms"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "virtual time never runs backwards"
    );
    let completed = events_of(&events, "completed");
    assert_eq!(completed.len(), 1);
    let started = events_of(&events, "started")[0]["at_ms"].as_u64().unwrap();
    let done = completed[0]["at_ms"].as_u64().unwrap();
    assert!(
        done - started >= 20_000,
        "completion is seen no earlier than the 20 s of processing"
    );
    assert!(
        done - started <= 30_000,
        "and within one capped interval of it"
    );

    insta::assert_json_snapshot!("simulated_job_transcript", events);
}
