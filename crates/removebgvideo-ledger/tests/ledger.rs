//! The ledger's rules, each on a real SQLite file: its schema and migrations, items added all
//! or none, the intent recorded before a create (and the same key on resume), steps that move
//! an item only along its lifecycle, an event log nobody can rewrite, and no half-written step
//! after a kill -9 at any moment.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use removebgvideo_core::state::{TransitionRecord, Verdict};
use removebgvideo_core::{JobStatus, Timestamp};
use removebgvideo_ledger::{
    Durability, ItemInput, ItemPhase, Ledger, LedgerError, NewItem, Reservation, SCHEMA_VERSION,
    Step, Writer, derive_idempotency_key,
};
use serde_json::json;

const T0: Timestamp = Timestamp::from_unix_secs(1_795_000_000);
const BATCH: &str = "batch-1";

fn item(key: &str, url: &str) -> NewItem {
    NewItem {
        key: key.into(),
        line: Some(2),
        input: ItemInput {
            video_url: Some(url.into()),
            model: Some("v1".into()),
            background: Some(json!([0, 255, 0])),
            ..ItemInput::default()
        },
        context: json!({ "user": "u1", "metadata": { "campaign": "spring" } }),
    }
}

fn ledger_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("ledger.sqlite")
}

#[test]
fn a_new_file_gets_the_schema_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_file(&dir);
    let ledger = Ledger::open(&path, Durability::Normal).unwrap();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    drop(ledger);
    // Reopening migrates nothing twice.
    let ledger = Ledger::open(&path, Durability::Full).unwrap();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    drop(ledger);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    raw.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(raw);
    match Ledger::open(&path, Durability::Normal) {
        Err(LedgerError::NewerSchema { found: 99, .. }) => {}
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn items_are_added_all_or_none_and_a_rerun_keeps_them() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    let twice = [
        item("a", "https://e.com/a.mp4"),
        item("a", "https://e.com/b.mp4"),
    ];
    match ledger.add_items(BATCH, "m.csv", &twice, T0) {
        Err(LedgerError::DuplicateKey(key)) => assert_eq!(key, "a"),
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    assert_eq!(ledger.counts(BATCH).unwrap().total, 0, "nothing was added");
    let items = [
        item("a", "https://e.com/a.mp4"),
        item("b", "https://e.com/b.mp4"),
    ];
    assert_eq!(ledger.add_items(BATCH, "m.csv", &items, T0).unwrap(), 2);
    assert_eq!(
        ledger.add_items(BATCH, "m.csv", &items, T0).unwrap(),
        0,
        "a re-run adds nothing"
    );
    let changed = [item("a", "https://e.com/other.mp4")];
    match ledger.add_items(BATCH, "m.csv", &changed, T0) {
        Err(LedgerError::InputChanged(key)) => assert_eq!(key, "a"),
        other => panic!("expected InputChanged, got {other:?}"),
    }
    let stored = ledger.item(BATCH, "a").unwrap();
    assert_eq!(stored.input, items[0].input);
    assert_eq!(stored.context, items[0].context);
    assert_eq!(stored.phase, ItemPhase::Planned);
    assert_eq!(ledger.counts(BATCH).unwrap().of(ItemPhase::Planned), 2);
}

#[test]
fn the_intent_is_recorded_before_the_create_and_a_resume_sends_the_same_key() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    ledger
        .add_items(BATCH, "m.csv", &[item("a", "https://e.com/a.mp4")], T0)
        .unwrap();
    let key = ledger.begin_create(BATCH, "a", T0).unwrap();
    assert_eq!(key, derive_idempotency_key(BATCH, "a", 0));
    let stored = ledger.item(BATCH, "a").unwrap();
    assert_eq!(stored.phase, ItemPhase::Creating);
    assert_eq!(stored.idempotency_key.as_deref(), Some(key.as_str()));
    // The process died before the answer was recorded: the resume sends the same key.
    assert_eq!(ledger.begin_create(BATCH, "a", T0).unwrap(), key);
    let created = Step {
        kind: "created",
        phase: Some(ItemPhase::Created),
        job_id: Some("job_1".into()),
        status_to: Some("pending".into()),
        request_id: Some("req_1".into()),
        http_status: Some(201),
        attempt: Some(1),
        ..Step::default()
    };
    ledger.record(BATCH, "a", &created, T0).unwrap();
    assert!(matches!(
        ledger.begin_create(BATCH, "a", T0),
        Err(LedgerError::WrongPhase { .. })
    ));
    let events = ledger.events(BATCH, "a").unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["planned", "intent", "intent", "created"]);
    assert_eq!(events[2].detail.as_ref().unwrap()["resent"], true);
    assert_eq!(events[3].request_id.as_deref(), Some("req_1"));
    assert_eq!(events[3].http_status, Some(201));
    assert_eq!(
        ledger.item(BATCH, "a").unwrap().job_id.as_deref(),
        Some("job_1")
    );
    // Keys differ by batch, item and generation, and fit the API's rule.
    assert_ne!(key, derive_idempotency_key("batch-2", "a", 0));
    assert_ne!(key, derive_idempotency_key(BATCH, "a", 1));
    assert_ne!(
        derive_idempotency_key("ab", "c", 0),
        derive_idempotency_key("a", "bc", 0)
    );
    assert!(key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()));
}

#[test]
fn a_writer_commits_its_steps_all_at_once_and_never_over_another_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_file(&dir);
    let mut ledger = Ledger::open(&path, Durability::Normal).unwrap();
    let items = [
        item("a", "https://e.com/a.mp4"),
        item("b", "https://e.com/b.mp4"),
    ];
    ledger.add_items(BATCH, "m.csv", &items, T0).unwrap();
    let mut writer = Writer::new(BATCH);
    writer.hold(ledger.items(BATCH).unwrap().into_iter().map(Arc::new));
    let key = writer.begin_create(&ledger, "a", T0).unwrap();
    let created = Step {
        kind: "created",
        phase: Some(ItemPhase::Running),
        job_id: Some("job_1".into()),
        ..Step::default()
    };
    assert_eq!(
        writer.record(&ledger, "a", created.clone(), T0).unwrap(),
        ItemPhase::Creating
    );
    // A step the lifecycle refuses is refused at once, and stages nothing.
    let done = Step {
        kind: "output",
        phase: Some(ItemPhase::Done),
        ..Step::default()
    };
    assert!(matches!(
        writer.record(&ledger, "b", done, T0),
        Err(LedgerError::WrongPhase { .. })
    ));
    assert_eq!(writer.pending(), 2);
    assert_eq!(
        writer.item(&ledger, "a").unwrap().job_id.as_deref(),
        Some("job_1")
    );
    // Nothing is in the file before the commit (the runner sends nothing before it either).
    assert_eq!(ledger.item(BATCH, "a").unwrap().phase, ItemPhase::Planned);
    writer.commit(&mut ledger).unwrap();
    assert_eq!(writer.pending(), 0);
    let row = ledger.item(BATCH, "a").unwrap();
    assert_eq!(&row, &**writer.item(&ledger, "a").unwrap());
    assert_eq!(row.idempotency_key.as_deref(), Some(key.as_str()));
    assert_eq!(row.revision, 2, "two steps");
    let kinds: Vec<String> = ledger
        .events(BATCH, "a")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["planned", "intent", "created"]);

    // Another connection steps item b behind the writer's back: the writer's next commit
    // is refused whole (item a's step included), and b is read again afterwards.
    let mut other = Ledger::open(&path, Durability::Normal).unwrap();
    other.begin_create(BATCH, "b", T0).unwrap();
    let status = Step {
        kind: "status",
        status_to: Some("processing".into()),
        ..Step::default()
    };
    writer.record(&ledger, "a", status, T0).unwrap();
    writer.begin_create(&ledger, "b", T0).unwrap();
    assert!(matches!(
        writer.commit(&mut ledger),
        Err(LedgerError::Conflict(key)) if key == "b"
    ));
    assert_eq!(ledger.item(BATCH, "a").unwrap().job_status, None);
    assert_eq!(ledger.events(BATCH, "a").unwrap().len(), 3);
    assert_eq!(
        ledger.events(BATCH, "b").unwrap().len(),
        2,
        "planned, the other's intent"
    );
    assert_eq!(
        &**writer.item(&ledger, "b").unwrap(),
        &ledger.item(BATCH, "b").unwrap()
    );

    // A refused step stages nothing: the other connection moving that item on does not fail
    // the writer's next commit.
    let done = Step {
        kind: "output",
        phase: Some(ItemPhase::Done),
        ..Step::default()
    };
    assert!(matches!(
        writer.record(&ledger, "b", done, T0),
        Err(LedgerError::WrongPhase { .. })
    ));
    other.record(BATCH, "b", &created, T0).unwrap();
    let status = Step {
        kind: "status",
        status_to: Some("processing".into()),
        ..Step::default()
    };
    writer.record(&ledger, "a", status, T0).unwrap();
    writer.commit(&mut ledger).unwrap();
    assert_eq!(
        ledger.item(BATCH, "a").unwrap().job_status.as_deref(),
        Some("processing")
    );
    assert_eq!(ledger.item(BATCH, "b").unwrap().phase, ItemPhase::Running);
}

#[test]
fn a_reservation_is_written_only_within_the_budget_counting_every_items_commitment() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&ledger_file(&dir), Durability::Normal).unwrap();
    let items: Vec<NewItem> = ["a", "b", "c"]
        .iter()
        .map(|k| item(k, &format!("https://e.com/{k}.mp4")))
        .collect();
    ledger.add_items(BATCH, "m.csv", &items, T0).unwrap();
    let mut writer = Writer::new(BATCH);
    for key in ["a", "b", "c"] {
        writer.begin_create(&ledger, key, T0).unwrap();
        let draft = Step {
            kind: "created",
            phase: Some(ItemPhase::Created),
            job_id: Some(format!("job_{key}")),
            ..Step::default()
        };
        writer.record(&ledger, key, draft, T0).unwrap();
    }
    let reserve = |credits: f64| Step {
        kind: "start_intent",
        credits_estimated: Some(credits),
        credits_reserved: Some(credits),
        ..Step::default()
    };
    // The drafts' steps are still staged: the reservation commits them first.
    let made = writer.reserve(&mut ledger, "a", reserve(6.0), 10.0, T0);
    assert_eq!(made.unwrap(), Reservation::Made);
    assert_eq!(writer.pending(), 0);
    // 6 + 5 passes 10: nothing written.
    let refused = writer.reserve(&mut ledger, "b", reserve(5.0), 10.0, T0);
    assert_eq!(refused.unwrap(), Reservation::Refused { committed: 6.0 });
    assert_eq!(ledger.item(BATCH, "b").unwrap().credits_reserved, None);
    // A job that ended counts its charge, not its reservation: 2 of a's 6 were charged.
    let charged = Step {
        kind: "status",
        phase: Some(ItemPhase::Done),
        credits_charged: Some(2.0),
        ..Step::default()
    };
    writer.record(&ledger, "a", charged, T0).unwrap();
    writer.commit(&mut ledger).unwrap();
    let made = writer.reserve(&mut ledger, "b", reserve(5.0), 10.0, T0);
    assert_eq!(made.unwrap(), Reservation::Made);
    let refused = writer.reserve(&mut ledger, "c", reserve(3.5), 10.0, T0);
    assert_eq!(refused.unwrap(), Reservation::Refused { committed: 7.0 });
}

#[test]
fn a_step_off_the_lifecycle_is_refused_and_writes_nothing() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    ledger
        .add_items(BATCH, "m.csv", &[item("a", "https://e.com/a.mp4")], T0)
        .unwrap();
    let done = Step {
        kind: "output",
        phase: Some(ItemPhase::Done),
        ..Step::default()
    };
    assert!(matches!(
        ledger.record(BATCH, "a", &done, T0),
        Err(LedgerError::WrongPhase { .. })
    ));
    assert_eq!(
        ledger.events(BATCH, "a").unwrap().len(),
        1,
        "only its planning"
    );
    assert!(matches!(
        ledger.record(BATCH, "nope", &done, T0),
        Err(LedgerError::NoSuchItem(_))
    ));
}

#[test]
fn an_error_stays_the_items_last_until_another_and_status_changes_only_are_logged() {
    let mut ledger = Ledger::open_in_memory().unwrap();
    ledger
        .add_items(BATCH, "m.csv", &[item("a", "https://e.com/a.mp4")], T0)
        .unwrap();
    ledger.begin_create(BATCH, "a", T0).unwrap();
    let created = Step {
        kind: "created",
        phase: Some(ItemPhase::Created),
        job_id: Some("job_1".into()),
        ..Step::default()
    };
    ledger.record(BATCH, "a", &created, T0).unwrap();
    let retry = Step {
        kind: "attempt",
        request_id: Some("req_9".into()),
        http_status: Some(503),
        attempt: Some(2),
        error: Some(("service_unavailable".into(), "try again".into())),
        ..Step::default()
    };
    ledger.record(BATCH, "a", &retry, T0).unwrap();
    let seen = |from: Option<JobStatus>, to: JobStatus, verdict: Verdict| TransitionRecord {
        from,
        to,
        progress: None,
        at: T0,
        request_id: Some("req_10".into()),
        verdict,
    };
    let running = Some(ItemPhase::Running);
    assert!(
        ledger
            .record_status(
                BATCH,
                "a",
                &seen(None, JobStatus::Pending, Verdict::Initial),
                running
            )
            .unwrap()
    );
    assert!(
        !ledger
            .record_status(
                BATCH,
                "a",
                &seen(
                    Some(JobStatus::Pending),
                    JobStatus::Pending,
                    Verdict::Unchanged
                ),
                running
            )
            .unwrap(),
        "the same status again is not logged"
    );
    let failed = seen(
        Some(JobStatus::Pending),
        JobStatus::Failed,
        Verdict::Advanced,
    );
    assert!(
        ledger
            .record_status(BATCH, "a", &failed, Some(ItemPhase::Failed))
            .unwrap()
    );
    let stored = ledger.item(BATCH, "a").unwrap();
    assert_eq!(stored.phase, ItemPhase::Failed);
    assert_eq!(stored.job_status.as_deref(), Some("failed"));
    assert_eq!(
        stored.last_error_code.as_deref(),
        Some("service_unavailable")
    );
    assert_eq!(stored.last_error_request_id.as_deref(), Some("req_9"));
    let kinds: Vec<String> = ledger
        .events(BATCH, "a")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "planned", "intent", "created", "attempt", "status", "status"
        ]
    );
}

#[test]
fn the_event_log_cannot_be_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_file(&dir);
    let mut ledger = Ledger::open(&path, Durability::Normal).unwrap();
    ledger
        .add_items(BATCH, "m.csv", &[item("a", "https://e.com/a.mp4")], T0)
        .unwrap();
    drop(ledger);
    let raw = rusqlite::Connection::open(&path).unwrap();
    for sql in ["UPDATE events SET kind = 'x'", "DELETE FROM events"] {
        let refused = raw.execute(sql, []).unwrap_err().to_string();
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }
}

/// The child of the crash test: records steps as fast as it can, saying how many it made.
fn write_until_killed(path: &Path) {
    let mut ledger = Ledger::open(path, Durability::Normal).unwrap();
    let items: Vec<NewItem> = (0..2_000)
        .map(|i| item(&format!("k{i}"), &format!("https://e.com/{i}.mp4")))
        .collect();
    ledger.add_items(BATCH, "m.csv", &items, T0).unwrap();
    for (n, item) in items.iter().enumerate() {
        ledger.begin_create(BATCH, &item.key, T0).unwrap();
        let created = Step {
            kind: "created",
            phase: Some(ItemPhase::Created),
            job_id: Some(format!("job_{n}")),
            ..Step::default()
        };
        ledger.record(BATCH, &item.key, &created, T0).unwrap();
        println!("{n}");
    }
}

#[test]
fn a_kill_at_any_moment_leaves_no_half_written_step() {
    if let Ok(path) = std::env::var("RBV_LEDGER_CRASH_CHILD") {
        return write_until_killed(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut state: u64 = 0x5eed_1ed6_e2e2_0001;
    for round in 0..20 {
        let path = dir.path().join(format!("crash-{round}.sqlite"));
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let kill_after = state % 400;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_kill_at_any_moment_leaves_no_half_written_step",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RBV_LEDGER_CRASH_CHILD", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.map_while(Result::ok) {
            if line.trim().parse::<u64>().is_ok_and(|n| n >= kill_after) {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no flush
        child.wait().unwrap();
        let ledger = Ledger::open(&path, Durability::Normal).unwrap();
        let counts = ledger.counts(BATCH).unwrap();
        assert!(
            counts.of(ItemPhase::Created) > kill_after,
            "round {round}: the writer got as far as it said ({counts:?})"
        );
        for item in ledger.items(BATCH).unwrap() {
            let events = ledger.events(BATCH, &item.key).unwrap();
            let last = events.last().unwrap();
            // Every phase has the event that moved it there, and the facts that came with it.
            match item.phase {
                ItemPhase::Planned => assert_eq!(last.kind, "planned"),
                ItemPhase::Creating => {
                    assert_eq!(last.kind, "intent");
                    assert!(item.idempotency_key.is_some());
                }
                ItemPhase::Created => {
                    assert_eq!(last.kind, "created");
                    assert!(item.job_id.is_some() && item.idempotency_key.is_some());
                }
                other => panic!("round {round}: {} is {other:?}", item.key),
            }
        }
        let integrity: String = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "round {round}");
    }
}

#[test]
fn every_column_is_documented_in_docs_ledger_md() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ledger.md"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_file(&dir);
    drop(Ledger::open(&path, Durability::Normal).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    for table in [
        "batches",
        "items",
        "events",
        "rate_gates",
        "rate_gate_workers",
    ] {
        assert!(
            docs.contains(&format!("### `{table}`")),
            "docs/ledger.md has no section for {table}"
        );
        let mut columns = raw.prepare(&format!("PRAGMA table_info({table})")).unwrap();
        let names: Vec<String> = columns
            .query_map([], |row| row.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for name in names {
            assert!(
                docs.contains(&format!("| `{name}` |")),
                "docs/ledger.md does not document {table}.{name}"
            );
        }
    }
    for phase in ItemPhase::ALL {
        assert!(
            docs.contains(&format!("`{}`", phase.as_str())),
            "phase {phase:?} undocumented"
        );
    }
}

#[test]
fn a_rate_gate_counts_the_workers_seen_lately_and_forgets_those_gone_for_long() {
    let dir = tempfile::tempdir().unwrap();
    let path = ledger_file(&dir);
    let (mut one, mut two) = (
        Ledger::open(&path, Durability::Normal).unwrap(),
        Ledger::open(&path, Durability::Normal).unwrap(),
    );
    one.set_worker("host:1:a");
    two.set_worker("host:2:b");
    assert_eq!(one.sync_rate_gate("key", None, T0).unwrap().workers, 1);
    assert_eq!(two.sync_rate_gate("key", None, T0).unwrap().workers, 2);
    let later = T0.plus(removebgvideo_ledger::GATE_WORKER_SEEN * 2);
    assert_eq!(
        two.sync_rate_gate("key", None, later).unwrap().workers,
        1,
        "a worker not seen lately no longer shares the ceiling"
    );
    let gone = T0.plus(removebgvideo_ledger::GATE_WORKER_FORGOTTEN * 2);
    two.sync_rate_gate("key", None, gone).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let workers: Vec<String> = conn
        .prepare("SELECT worker FROM rate_gate_workers")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(workers, ["host:2:b"], "and one gone for long is forgotten");
}
