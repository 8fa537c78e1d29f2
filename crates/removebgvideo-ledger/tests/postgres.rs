//! The PostgreSQL ledger on a real server these tests start (initdb in a temp folder, a free
//! loopback port): the same rules as the SQLite file, plus what many workers need: claims that
//! never hand one item to two workers, leases that lapse and are taken over (on the log), a
//! write from a worker that lost its lease refused, and a step that rides out a server
//! restart.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use removebgvideo_core::Timestamp;
use removebgvideo_ledger::{
    Durability, ItemInput, ItemPhase, Ledger, LedgerError, Location, NewItem, Reservation,
    SCHEMA_VERSION, Step, Writer,
};
use removebgvideo_testpg::TestPostgres;
use serde_json::json;

const T0: Timestamp = Timestamp::from_unix_secs(1_795_000_000);
const BATCH: &str = "batch-1";
const LEASE: Duration = Duration::from_secs(30);

fn item(key: &str) -> NewItem {
    NewItem {
        key: key.into(),
        line: Some(2),
        input: ItemInput {
            video_url: Some(format!("https://e.com/{key}.mp4")),
            model: Some("v1".into()),
            background: Some(json!([0, 255, 0])),
            file_size: Some(5_000_000_000),
            ..ItemInput::default()
        },
        context: json!({ "user": "u1" }),
    }
}

fn server() -> TestPostgres {
    TestPostgres::start().expect("a PostgreSQL server for the test")
}

fn open(server: &TestPostgres) -> Ledger {
    Ledger::open_at(&Location::parse(&server.url()), Durability::Normal).expect("connects")
}

fn created(job: &str) -> Step {
    Step {
        kind: "created",
        phase: Some(ItemPhase::Running),
        job_id: Some(job.into()),
        http_status: Some(201),
        attempt: Some(1),
        ..Step::default()
    }
}

/// Bounded polling: `done` within `bound`, checked every 20 ms.
fn within(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn workers_starting_at_once_migrate_once_and_the_rules_match_sqlite() {
    let server = server();
    // Four workers open the new database at the same moment: the advisory lock makes them
    // take turns, and every one ends at the current version.
    let start = Arc::new(Barrier::new(4));
    let url = server.url();
    let opened: Vec<Result<i64, String>> = (0..4)
        .map(|_| {
            let (start, url) = (start.clone(), url.clone());
            std::thread::spawn(move || {
                start.wait();
                let ledger = Ledger::open_postgres(&url).map_err(|e| e.to_string())?;
                ledger.schema_version().map_err(|e| e.to_string())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .collect();
    assert!(
        opened.iter().all(|v| v == &Ok(SCHEMA_VERSION)),
        "{opened:?}"
    );

    let mut ledger = open(&server);
    let items = [item("a"), item("b")];
    assert_eq!(ledger.add_items(BATCH, "m.csv", &items, T0).unwrap(), 2);
    // A re-run keeps them; a changed row and a key used twice are refused, all or none.
    assert_eq!(ledger.add_items(BATCH, "m.csv", &items, T0).unwrap(), 0);
    let mut changed = item("a");
    changed.input.model = Some("v2".into());
    assert!(matches!(
        ledger.add_items(BATCH, "m.csv", &[item("c"), changed], T0),
        Err(LedgerError::InputChanged(key)) if key == "a"
    ));
    assert!(matches!(
        ledger.add_items(BATCH, "m.csv", &[item("d"), item("d")], T0),
        Err(LedgerError::DuplicateKey(key)) if key == "d"
    ));
    assert_eq!(
        ledger.counts(BATCH).unwrap().total,
        2,
        "c and d were not added"
    );
    let stored = ledger.item(BATCH, "a").unwrap();
    assert_eq!(
        stored.input, items[0].input,
        "every input column round-trips"
    );
    assert_eq!(stored.context, items[0].context);
    assert_eq!(
        ledger.batch_of_source("m.csv").unwrap().as_deref(),
        Some(BATCH)
    );
    assert_eq!(ledger.batches().unwrap(), [BATCH]);

    // The intent before the create, the same key on resume, steps along the lifecycle only.
    let key = ledger.begin_create(BATCH, "a", T0).unwrap();
    assert_eq!(ledger.begin_create(BATCH, "a", T0).unwrap(), key);
    ledger.record(BATCH, "a", &created("job_1"), T0).unwrap();
    let done = Step {
        kind: "output",
        phase: Some(ItemPhase::Done),
        ..Step::default()
    };
    assert!(matches!(
        ledger.record(BATCH, "b", &done, T0),
        Err(LedgerError::WrongPhase { .. })
    ));
    let error = Step {
        kind: "error",
        error: Some(("rate_limited".into(), "slow down".into())),
        request_id: Some("req_9".into()),
        http_status: Some(429),
        attempt: Some(2),
        ..Step::default()
    };
    ledger.record(BATCH, "a", &error, T0).unwrap();
    let a = ledger.item(BATCH, "a").unwrap();
    assert_eq!(a.phase, ItemPhase::Running);
    assert_eq!(a.job_id.as_deref(), Some("job_1"));
    assert_eq!(a.last_error_code.as_deref(), Some("rate_limited"));
    assert_eq!(a.last_error_request_id.as_deref(), Some("req_9"));
    let events = ledger.events(BATCH, "a").unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["planned", "intent", "intent", "created", "error"]);
    assert!(events.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(events[3].http_status, Some(201));
    assert_eq!(
        events[4].detail.as_ref().unwrap()["error"]["code"],
        "rate_limited"
    );
    assert!(
        events
            .iter()
            .all(|e| e.worker.as_deref() == Some(ledger.worker())),
        "each event names the worker that wrote it"
    );
    let pid = std::process::id().to_string();
    assert!(ledger.worker().split(':').any(|part| part == pid));
    assert_eq!(ledger.batch_events(BATCH).unwrap().len(), 6);
    assert_eq!(ledger.keys_honoured(BATCH).unwrap(), None);
    ledger.set_keys_honoured(BATCH, true).unwrap();
    assert_eq!(ledger.keys_honoured(BATCH).unwrap(), Some(true));

    // The log cannot be rewritten, even by hand.
    let mut raw = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    for sql in [
        "UPDATE events SET kind = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let refused = raw.batch_execute(sql).unwrap_err();
        let message = refused.as_db_error().map(|e| e.message().to_owned());
        assert_eq!(
            message.as_deref(),
            Some("the event log is append-only"),
            "{sql}"
        );
    }
    // A database from a newer version is refused, not written to.
    raw.batch_execute("INSERT INTO removebgvideo_schema (version) VALUES (99)")
        .unwrap();
    assert!(matches!(
        Ledger::open_postgres(&server.url()),
        Err(LedgerError::NewerSchema { found: 99, .. })
    ));
}

#[test]
fn four_workers_claim_a_thousand_items_and_none_gets_one_twice() {
    let server = server();
    let mut ledger = open(&server);
    let items: Vec<NewItem> = (0..1_000).map(|n| item(&format!("k{n:04}"))).collect();
    ledger.add_items(BATCH, "m.csv", &items, T0).unwrap();
    let start = Arc::new(Barrier::new(4));
    let claims: Vec<Vec<String>> = (0..4)
        .map(|_| {
            let (start, url) = (start.clone(), server.url());
            std::thread::spawn(move || {
                let mut ledger = Ledger::open_postgres(&url).unwrap();
                let mut mine = Vec::new();
                start.wait();
                loop {
                    let claimed = ledger.claim(BATCH, 25, LEASE, T0).unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    for item in claimed {
                        // Each claimed item is stepped at once (it is this worker's now).
                        ledger.begin_create(BATCH, &item.key, T0).unwrap();
                        mine.push(item.key);
                    }
                }
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .collect();
    let all: Vec<&String> = claims.iter().flatten().collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 1_000, "every item claimed");
    assert_eq!(distinct.len(), 1_000, "no item claimed twice");
    assert!(
        claims.iter().all(|mine| !mine.is_empty()),
        "all four workers got work: {:?}",
        claims.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(ledger.counts(BATCH).unwrap().of(ItemPhase::Creating), 1_000);
    let leases = ledger.leases(BATCH, T0).unwrap();
    assert_eq!(leases.len(), 1_000);
    let workers: HashSet<&str> = leases.iter().map(|l| l.worker.as_str()).collect();
    assert_eq!(workers.len(), 4, "each lease names its worker");
}

/// Drives each claimed item to a draft (a created job, not started), then reserves `credits`
/// for it within `limit`; returns how many reservations were made.
fn reserve_drafts(ledger: &mut Ledger, credits: f64, limit: f64) -> usize {
    let mut made = 0;
    loop {
        let claimed = ledger.claim(BATCH, 10, LEASE, T0).unwrap();
        if claimed.is_empty() {
            return made;
        }
        let mut writer = Writer::new(BATCH);
        for item in &claimed {
            writer.begin_create(ledger, &item.key, T0).unwrap();
            let draft = Step {
                phase: Some(ItemPhase::Created),
                ..created(&format!("job-{}", item.key))
            };
            writer.record(ledger, &item.key, draft, T0).unwrap();
        }
        writer.commit(ledger).unwrap();
        for item in &claimed {
            let step = Step {
                kind: "start_intent",
                credits_estimated: Some(credits),
                credits_reserved: Some(credits),
                ..Step::default()
            };
            match writer.reserve(ledger, &item.key, step, limit, T0).unwrap() {
                Reservation::Made => made += 1,
                Reservation::Refused { committed } => {
                    assert!(
                        committed + credits > limit,
                        "{committed} + {credits} fits {limit}"
                    )
                }
            }
        }
        // Each item is final for this test once looked at (its reservation still counts),
        // then let go.
        let done: Vec<String> = claimed.iter().map(|item| item.key.clone()).collect();
        for key in &done {
            let end = Step {
                kind: "test_end",
                phase: Some(ItemPhase::Error),
                ..Step::default()
            };
            writer.record(ledger, key, end, T0).unwrap();
        }
        writer.commit(ledger).unwrap();
        ledger.release_leases(BATCH, Some(&done)).unwrap();
    }
}

#[test]
fn four_workers_reserving_at_once_never_pass_the_shared_budget() {
    let server = server();
    let mut ledger = open(&server);
    let items: Vec<NewItem> = (0..200).map(|n| item(&format!("b{n:03}"))).collect();
    ledger.add_items(BATCH, "m.csv", &items, T0).unwrap();
    // 300 credits hold 42 reservations of 7 (294); 200 are asked for, by four workers at once.
    let start = Arc::new(Barrier::new(4));
    let made: usize = (0..4)
        .map(|_| {
            let (start, url) = (start.clone(), server.url());
            std::thread::spawn(move || {
                let mut ledger = Ledger::open_postgres(&url).unwrap();
                start.wait();
                reserve_drafts(&mut ledger, 7.0, 300.0)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .sum();
    assert_eq!(made, 42, "as many as fit, and no more");
    let items = ledger.items(BATCH).unwrap();
    let reserved: f64 = items.iter().filter_map(|i| i.credits_reserved).sum();
    assert_eq!(reserved, 294.0);
}

#[test]
fn a_429_one_worker_records_pauses_every_worker_of_the_key_and_each_counts_towards_its_ceiling() {
    let server = server();
    let (mut one, mut two) = (open(&server), open(&server));
    one.set_worker("host:1:a");
    two.set_worker("host:2:b");
    let quiet = one.sync_rate_gate("key-a", None, T0).unwrap();
    assert_eq!(
        (quiet.limited, quiet.pause_left, quiet.workers),
        (0, Duration::ZERO, 1)
    );
    let limited = two
        .sync_rate_gate("key-a", Some(Duration::from_secs(5)), T0)
        .unwrap();
    assert_eq!((limited.limited, limited.workers), (1, 2));
    // The other worker sees the pause (on the server's clock) and the 429 counted once.
    let seen = one.sync_rate_gate("key-a", None, T0).unwrap();
    assert_eq!(seen.limited, 1);
    assert!(seen.pause_left > Duration::from_secs(4) && seen.pause_left <= Duration::from_secs(5));
    // A shorter pause never shortens a longer one; another key is its own.
    let shorter = one
        .sync_rate_gate("key-a", Some(Duration::from_millis(10)), T0)
        .unwrap();
    assert_eq!(shorter.limited, 2);
    assert!(shorter.pause_left > Duration::from_secs(4));
    let other = one.sync_rate_gate("key-b", None, T0).unwrap();
    assert_eq!((other.limited, other.workers), (0, 1));
    // A worker not seen for long is forgotten by the next sync of its key.
    let mut raw = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    raw.execute(
        "INSERT INTO rate_gate_workers (key_hash, worker, seen_at) VALUES ('key-a', 'gone:9:z', 0)",
        &[],
    )
    .unwrap();
    let rows = |raw: &mut postgres::Client| -> Vec<String> {
        raw.query(
            "SELECT worker FROM rate_gate_workers WHERE key_hash = 'key-a' ORDER BY worker",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    assert_eq!(rows(&mut raw).len(), 3);
    assert_eq!(two.sync_rate_gate("key-a", None, T0).unwrap().workers, 2);
    assert_eq!(rows(&mut raw), ["host:1:a", "host:2:b"]);
}

#[test]
fn a_lapsed_lease_is_taken_over_on_the_log_and_its_old_holder_can_no_longer_write() {
    let server = server();
    let mut first = open(&server);
    first.set_worker("host-a:100:0001");
    first
        .add_items(BATCH, "m.csv", &[item("a"), item("b")], T0)
        .unwrap();
    let short = Duration::from_millis(300);
    let claimed = first.claim(BATCH, 1, short, T0).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].key, "a");
    let mut writer = Writer::new(BATCH);
    writer.hold(claimed.into_iter().map(Arc::new));
    writer.begin_create(&first, "a", T0).unwrap();
    writer.commit(&mut first).unwrap();

    let mut second = open(&server);
    second.set_worker("host-b:200:0002");
    // While the lease is live the second worker gets only b.
    let got = second.claim(BATCH, 10, LEASE, T0).unwrap();
    assert_eq!(
        got.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    // The heartbeat keeps a lease alive: renewed, it does not lapse.
    assert_eq!(first.renew_leases(BATCH, LEASE, T0).unwrap(), 1);
    assert!(second.claim(BATCH, 10, LEASE, T0).unwrap().is_empty());
    // Without it, it lapses and the second worker takes the item over, job state and all.
    first.renew_leases(BATCH, short, T0).unwrap();
    let mut taken = Vec::new();
    assert!(
        within(Duration::from_secs(10), || {
            taken = second.claim(BATCH, 10, LEASE, T0).unwrap();
            !taken.is_empty()
        }),
        "the lapsed lease was never taken over"
    );
    assert_eq!(taken[0].key, "a");
    assert_eq!(taken[0].phase, ItemPhase::Creating);
    let log = second.events(BATCH, "a").unwrap();
    let takeover = log.last().unwrap();
    assert_eq!(takeover.kind, "claimed");
    assert_eq!(takeover.worker.as_deref(), Some("host-b:200:0002"));
    assert_eq!(
        takeover.detail.as_ref().unwrap()["previous_worker"],
        "host-a:100:0001"
    );
    assert_eq!(log[1].worker.as_deref(), Some("host-a:100:0001"));

    // The old holder wakes up and writes a step from its copy: refused, nothing written.
    writer.record(&first, "a", created("job_1"), T0).unwrap();
    assert!(matches!(
        writer.commit(&mut first),
        Err(LedgerError::Conflict(key)) if key == "a"
    ));
    assert_eq!(second.item(BATCH, "a").unwrap().job_id, None);
    // Its new holder can; and released, the lease is gone.
    second.record(BATCH, "a", &created("job_1"), T0).unwrap();
    assert_eq!(second.release_leases(BATCH, None).unwrap(), 2);
    assert!(second.leases(BATCH, T0).unwrap().is_empty());
}

#[test]
fn a_ledger_rides_out_a_server_restart_and_writes_each_step_once() {
    let server = server();
    let mut ledger = open(&server);
    ledger.add_items(BATCH, "m.csv", &[item("a")], T0).unwrap();
    server.kill().unwrap();
    std::thread::scope(|scope| {
        // The server is down for a second (a restart, a failover), then back on its port.
        scope.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            server.restart().unwrap();
        });
        // The step that meets the outage waits it out and lands once.
        ledger.begin_create(BATCH, "a", T0).unwrap();
    });
    let events = ledger.events(BATCH, "a").unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["planned", "intent"]
    );
    assert_eq!(ledger.item(BATCH, "a").unwrap().phase, ItemPhase::Creating);
}
