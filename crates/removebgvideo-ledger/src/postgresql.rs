//! The PostgreSQL ledger: the same tables and answers as the SQLite file, on a server that
//! any number of workers share. A worker claims items with one statement (`FOR UPDATE SKIP
//! LOCKED`, as River, Oban, procrastinate and pg-boss do), holds each on a lease it renews,
//! and writes a group's rows and events in two statements (arrays unnested), so a commit costs
//! a few round trips whatever its size. Leases run on the server's clock, so the workers'
//! clocks may disagree. A connection that dropped (a server restart) is opened again on the
//! next call; the call that saw it drop fails, and its transaction with it.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::{Client, NoTls, Row};
use removebgvideo_core::Timestamp;
use serde_json::Value;

use crate::LedgerError;
use crate::backend::{
    Backend, BudgetLimit, GATE_WORKER_FORGOTTEN, GATE_WORKER_SEEN, Lease, RateGateRow, gate_row,
    lease_millis, millis,
};
use crate::item::{
    EventRecord, FINAL_PHASES, Item, ItemInput, ItemPhase, NewItem, WAITING_FOR_CREDITS,
    committed_sql,
};
use crate::ledger::{NewEvent, event_detail, parse_json, planned_event, takeover_event};
use crate::postgresql_schema;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call keeps trying to reach the server again (a restart, a failover) before it
/// gives up, and the pause between attempts.
const RECONNECT_FOR: Duration = Duration::from_secs(60);
const RECONNECT_PAUSE: Duration = Duration::from_millis(250);

/// The advisory lock under which a manifest's batch is chosen ("rbv-adop").
const ADOPT_LOCK: i64 = 0x7262_762d_6164_6f70;

/// The server's clock in unix milliseconds, as SQL.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

pub(crate) struct Postgres {
    url: String,
    /// One connection; reads take `&self`, so it sits behind a lock (never contended: one
    /// ledger serves one thread at a time).
    client: Mutex<Option<Connection>>,
}

/// A connection and the statements prepared on it (a statement is parsed once per connection,
/// not once per call: a round trip saved on every commit).
struct Connection {
    client: Client,
    statements: std::collections::HashMap<&'static str, postgres::Statement>,
}

impl Connection {
    fn new(client: Client) -> Connection {
        Connection {
            client,
            statements: std::collections::HashMap::new(),
        }
    }
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

pub(crate) fn pg_error(error: postgres::Error) -> LedgerError {
    LedgerError::Postgres(Box::new(error))
}

fn connect(url: &str) -> Result<Client, LedgerError> {
    let mut config: postgres::Config = url.parse().map_err(pg_error)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("removebgvideo-ledger");
    }
    config.connect(NoTls).map_err(pg_error)
}

impl Postgres {
    /// Connects and brings the schema up to date.
    pub(crate) fn connect(url: &str) -> Result<Postgres, LedgerError> {
        let mut client = connect(url)?;
        postgresql_schema::migrate(&mut client)?;
        Ok(Postgres {
            url: url.to_owned(),
            client: Mutex::new(Some(Connection::new(client))),
        })
    }

    /// Runs `work` on the connection; when the connection is lost (or cannot be made) it is
    /// made again and `work` runs again, for up to a minute. Only for work that may run twice:
    /// reads, and writes that set what they set whether or not they ran before.
    fn retrying<T>(
        &self,
        mut work: impl FnMut(&mut ClientGuard<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let started = std::time::Instant::now();
        loop {
            let outcome = self.client().and_then(|mut client| work(&mut client));
            match outcome {
                Err(error) if error.is_connection_lost() && started.elapsed() < RECONNECT_FOR => {
                    self.forget_connection();
                    std::thread::sleep(RECONNECT_PAUSE);
                }
                other => return other,
            }
        }
    }

    /// Drops the connection, so that the next call opens a new one.
    fn forget_connection(&self) {
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// One try at a group's transaction: BEGIN, one statement that writes the rows and logs
    /// the events (prepared once per connection), COMMIT: three round trips. With a budget,
    /// two more come first: the batch's budget lock and the sum of what it commits.
    fn write_steps_once(
        &self,
        rows: &[(&Item, i64)],
        events: &[NewEvent<'_>],
        worker: &str,
        budget: Option<&BudgetLimit<'_>>,
    ) -> Result<(), LedgerError> {
        let mut client = self.client()?;
        let columns = RowColumns::of(rows);
        let logged = EventColumns::of(events);
        let expected = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::with_capacity(32);
        params.extend(columns.params(&worker));
        params.extend(logged.params());
        params.push(&expected);
        let statement = client.prepared(UPDATE_AND_LOG)?;
        let Some(budget) = budget else {
            // One statement is its own transaction: one round trip, where BEGIN, the
            // statement and COMMIT take three (the cost per transition on a busy machine is
            // mostly waits for the server's turn on a core). A moved row fails the statement
            // (see UPDATE_AND_LOG), so none of the group is written.
            return client
                .query_one(&statement, &params)
                .map(drop)
                .map_err(|error| conflict_or_error(error, rows));
        };
        let mut tx = client.transaction().map_err(pg_error)?;
        // Held to the end of the transaction: the reservations of all workers go one at a
        // time, and each sum (a statement of its own, under READ COMMITTED) sees every
        // reservation committed before it.
        tx.execute(BUDGET_LOCK, &[&budget.batch])
            .map_err(pg_error)?;
        let ids: Vec<i64> = rows.iter().map(|(item, _)| item.id).collect();
        let others: Option<f64> = tx
            .query_one(COMMITTED_ELSEWHERE, &[&budget.batch, &ids])
            .map_err(pg_error)?
            .get(0);
        budget.check(others.unwrap_or(0.0), rows)?;
        tx.query_one(&statement, &params)
            .map_err(|error| conflict_or_error(error, rows))?;
        tx.commit().map_err(pg_error)
    }

    /// The connection, opened again if the last one dropped.
    fn client(&self) -> Result<ClientGuard<'_>, LedgerError> {
        let mut guard = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
            *guard = None;
            *guard = Some(Connection::new(connect(&self.url)?));
        }
        Ok(ClientGuard(guard))
    }
}

/// A locked, open connection.
struct ClientGuard<'a>(MutexGuard<'a, Option<Connection>>);

impl ClientGuard<'_> {
    /// `sql`, prepared once on this connection.
    fn prepared(&mut self, sql: &'static str) -> Result<postgres::Statement, LedgerError> {
        let connection = self.0.as_mut().expect("opened by Postgres::client");
        if let Some(statement) = connection.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = connection.client.prepare(sql).map_err(pg_error)?;
        connection.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl std::ops::Deref for ClientGuard<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.0.as_ref().expect("opened by Postgres::client").client
    }
}

impl std::ops::DerefMut for ClientGuard<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.0.as_mut().expect("opened by Postgres::client").client
    }
}

impl Backend for Postgres {
    fn schema_version(&self) -> Result<i64, LedgerError> {
        self.retrying(|client| postgresql_schema::found_version(&mut **client))
    }

    fn add_items(
        &mut self,
        batch: &str,
        source: &str,
        items: &[NewItem],
        now: Timestamp,
        worker: &str,
    ) -> Result<usize, LedgerError> {
        // All of it may run again after a lost connection: rows already there are kept.
        self.retrying(|client| {
            let mut tx = client.transaction().map_err(pg_error)?;
            tx.execute(
                "INSERT INTO batches (id, created_at, source) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
                &[&batch, &millis(now), &source],
            )
            .map_err(pg_error)?;
            // The items already there: their inputs must match (a changed row needs a new key).
            let stored: Vec<Item> = tx
                .query(
                    &format!("SELECT {ITEM_COLUMNS} FROM items WHERE batch_id = $1"),
                    &[&batch],
                )
                .map_err(pg_error)?
                .iter()
                .map(read_item)
                .collect::<Result<_, _>>()?;
            let stored: std::collections::HashMap<&str, &Item> = stored
                .iter()
                .map(|item| (item.key.as_str(), item))
                .collect();
            let mut new = Vec::new();
            for item in items {
                match stored.get(item.key.as_str()) {
                    Some(known) if known.input != item.input => {
                        return Err(LedgerError::InputChanged(item.key.clone()));
                    }
                    Some(_) => {}
                    None => new.push(item),
                }
            }
            let insert = tx
                .prepare(
                    "INSERT INTO items (batch_id, key, line, video_url, file_path, file_size, model, \
                     output_format, background, text_prompt, output_target, context, phase, \
                     updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'planned', $13) \
                     ON CONFLICT (batch_id, key) DO NOTHING RETURNING id",
                )
                .map_err(pg_error)?;
            let step = planned_event();
            let mut events = Vec::with_capacity(new.len());
            for item in &new {
                let input = &item.input;
                let row = tx
                    .query_opt(
                        &insert,
                        &[
                            &batch,
                            &item.key,
                            &item.line.map(to_i64),
                            &input.video_url,
                            &input.file_path,
                            &input.file_size.map(to_i64),
                            &input.model,
                            &input.output_format,
                            &input.background.as_ref().map(Value::to_string),
                            &input.text_prompt,
                            &input.output_target,
                            &item.context.to_string(),
                            &millis(now),
                        ],
                    )
                    .map_err(pg_error)?;
                // None: another worker added the same batch at the same moment; its row stands
                // (the same manifest row, or a conflict its own check reports).
                if let Some(row) = row {
                    events.push(NewEvent::first(row.get(0), now, &step));
                }
            }
            append_events(&mut tx, &events, worker)?;
            tx.commit().map_err(pg_error)?;
            Ok(events.len())
        })
    }

    fn write_steps(
        &mut self,
        rows: &[(&Item, i64)],
        events: &[NewEvent<'_>],
        worker: &str,
        budget: Option<&BudgetLimit<'_>>,
    ) -> Result<(), LedgerError> {
        let started = std::time::Instant::now();
        loop {
            match self.write_steps_once(rows, events, worker, budget) {
                Err(error) if error.is_connection_lost() && started.elapsed() < RECONNECT_FOR => {
                    self.forget_connection();
                    std::thread::sleep(RECONNECT_PAUSE);
                    // The commit may have landed before the connection went: then every row
                    // is at the revision this group gave it, and it must not be written twice.
                    let ids: Vec<i64> = rows.iter().map(|(item, _)| item.id).collect();
                    let landed = !rows.is_empty()
                        && self.retrying(|client| {
                            let at: std::collections::HashMap<i64, i64> = client
                                .query("SELECT id, revision FROM items WHERE id = ANY($1)", &[&ids])
                                .map_err(pg_error)?
                                .iter()
                                .map(|row| (row.get(0), row.get(1)))
                                .collect();
                            Ok(rows
                                .iter()
                                .all(|(item, _)| at.get(&item.id) == Some(&item.revision)))
                        })?;
                    if landed {
                        return Ok(());
                    }
                }
                other => return other,
            }
        }
    }

    fn find_item(&self, batch: &str, key: &str) -> Result<Option<Item>, LedgerError> {
        self.retrying(|client| {
            client
                .query_opt(
                    &format!("SELECT {ITEM_COLUMNS} FROM items WHERE batch_id = $1 AND key = $2"),
                    &[&batch, &key],
                )
                .map_err(pg_error)?
                .as_ref()
                .map(read_item)
                .transpose()
        })
    }

    fn items(&self, batch: &str) -> Result<Vec<Item>, LedgerError> {
        self.retrying(|client| {
            client
                .query(
                    &format!("SELECT {ITEM_COLUMNS} FROM items WHERE batch_id = $1 ORDER BY id"),
                    &[&batch],
                )
                .map_err(pg_error)?
                .iter()
                .map(read_item)
                .collect()
        })
    }

    fn events(
        &self,
        batch: &str,
        key: Option<&str>,
    ) -> Result<Vec<(String, EventRecord)>, LedgerError> {
        let rows = self.retrying(|client| {
            match key {
                Some(key) => client.query(
                    &format!("{EVENTS_OF_BATCH} AND i.key = $2 ORDER BY e.seq"),
                    &[&batch, &key],
                ),
                None => client.query(&format!("{EVENTS_OF_BATCH} ORDER BY e.seq"), &[&batch]),
            }
            .map_err(pg_error)
        })?;
        rows.iter()
            .map(|row| Ok((row.get("key"), read_event(row)?)))
            .collect()
    }

    fn phase_counts(&self, batch: &str) -> Result<Vec<(String, u64)>, LedgerError> {
        self.retrying(|client| {
            Ok(client
                .query(
                    "SELECT phase, COUNT(*) FROM items WHERE batch_id = $1 GROUP BY phase",
                    &[&batch],
                )
                .map_err(pg_error)?
                .iter()
                .map(|row| (row.get(0), row.get::<_, i64>(1).max(0) as u64))
                .collect())
        })
    }

    fn batches(&self) -> Result<Vec<String>, LedgerError> {
        self.retrying(|client| {
            Ok(client
                .query("SELECT id FROM batches ORDER BY created_at, id", &[])
                .map_err(pg_error)?
                .iter()
                .map(|row| row.get(0))
                .collect())
        })
    }

    fn batch_of_source(&self, source: &str) -> Result<Option<String>, LedgerError> {
        self.retrying(|client| {
            Ok(client
                .query_opt(
                    "SELECT id FROM batches WHERE source = $1 ORDER BY created_at DESC, id LIMIT 1",
                    &[&source],
                )
                .map_err(pg_error)?
                .map(|row| row.get(0)))
        })
    }

    fn adopt_batch(
        &mut self,
        source: &str,
        proposed: &str,
        now: Timestamp,
    ) -> Result<String, LedgerError> {
        self.retrying(|client| {
            let mut tx = client.transaction().map_err(pg_error)?;
            // Workers that load one manifest at once take turns here, and the first one's id
            // stands for all of them.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADOPT_LOCK])
                .map_err(pg_error)?;
            let known = tx
                .query_opt(
                    "SELECT id FROM batches WHERE source = $1 ORDER BY created_at DESC, id LIMIT 1",
                    &[&source],
                )
                .map_err(pg_error)?;
            let batch = match known {
                Some(row) => row.get(0),
                None => {
                    tx.execute(
                        "INSERT INTO batches (id, created_at, source) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO NOTHING",
                        &[&proposed, &millis(now), &source],
                    )
                    .map_err(pg_error)?;
                    proposed.to_owned()
                }
            };
            tx.commit().map_err(pg_error)?;
            Ok(batch)
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn idempotency(&self, batch: &str) -> Result<Option<String>, LedgerError> {
        self.retrying(|client| {
            Ok(client
                .query_opt("SELECT idempotency FROM batches WHERE id = $1", &[&batch])
                .map_err(pg_error)?
                .and_then(|row| row.get(0)))
        })
    }

    fn set_idempotency(&mut self, batch: &str, value: &str) -> Result<(), LedgerError> {
        self.retrying(|client| {
            client
                .execute(
                    "UPDATE batches SET idempotency = $2 WHERE id = $1",
                    &[&batch, &value],
                )
                .map_err(pg_error)
        })?;
        Ok(())
    }

    fn claim(
        &mut self,
        batch: &str,
        worker: &str,
        limit: usize,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<Item>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(pg_error)?;
        let rows = tx
            .query(
                &format!(
                    "UPDATE items i SET lease_owner = $2, lease_until = {NOW_MS} + $4 \
                     FROM (SELECT id, lease_owner AS previous FROM items \
                           WHERE batch_id = $1 AND phase NOT IN ({FINAL_PHASES}) \
                           AND (lease_owner IS NULL OR lease_until < {NOW_MS}) \
                           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) picked \
                     WHERE i.id = picked.id \
                     RETURNING {ITEM_COLUMNS_OF_I}, picked.previous"
                ),
                &[&batch, &worker, &limit, &lease_millis(lease)],
            )
            .map_err(pg_error)?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut takeovers = Vec::new();
        for row in &rows {
            let item = read_item(row)?;
            let previous: Option<String> = row.get("previous");
            if let Some(previous) = previous.filter(|p| p != worker) {
                takeovers.push((item.id, takeover_event(&previous)));
            }
            claimed.push(item);
        }
        let events: Vec<NewEvent<'_>> = takeovers
            .iter()
            .map(|(id, step)| NewEvent::note(*id, now, step))
            .collect();
        append_events(&mut tx, &events, worker)?;
        tx.commit().map_err(pg_error)?;
        Ok(claimed)
    }

    fn renew(
        &mut self,
        batch: &str,
        worker: &str,
        lease: Duration,
        _now: Timestamp,
    ) -> Result<u64, LedgerError> {
        self.retrying(|client| {
            client
                .execute(
                    &format!(
                        "UPDATE items SET lease_until = {NOW_MS} + $3 \
                         WHERE batch_id = $1 AND lease_owner = $2"
                    ),
                    &[&batch, &worker, &lease_millis(lease)],
                )
                .map_err(pg_error)
        })
    }

    fn release(
        &mut self,
        batch: &str,
        worker: &str,
        keys: Option<&[String]>,
    ) -> Result<u64, LedgerError> {
        self.retrying(|client| {
            match keys {
                None => client.execute(
                    "UPDATE items SET lease_owner = NULL, lease_until = NULL \
                 WHERE batch_id = $1 AND lease_owner = $2",
                    &[&batch, &worker],
                ),
                Some(keys) => client.execute(
                    "UPDATE items SET lease_owner = NULL, lease_until = NULL \
                 WHERE batch_id = $1 AND lease_owner = $2 AND key = ANY($3)",
                    &[&batch, &worker, &keys],
                ),
            }
            .map_err(pg_error)
        })
    }

    fn unfinished_elsewhere(&self, batch: &str, worker: &str) -> Result<u64, LedgerError> {
        let n: i64 = self
            .retrying(|client| {
                client
                    .query_one(
                        &format!(
                            "SELECT COUNT(*) FROM items WHERE batch_id = $1 \
                     AND phase NOT IN ({FINAL_PHASES}) \
                     AND (lease_owner IS NULL OR lease_owner <> $2) \
                 AND NOT {WAITING_FOR_CREDITS}"
                        ),
                        &[&batch, &worker],
                    )
                    .map_err(pg_error)
            })?
            .get(0);
        Ok(n.max(0) as u64)
    }

    fn sync_rate_gate(
        &mut self,
        key_hash: &str,
        worker: &str,
        limited: Option<Duration>,
        _now: Timestamp,
    ) -> Result<RateGateRow, LedgerError> {
        // On the server's clock, as leases are: the workers' clocks need not agree. Recording
        // a 429 twice (a lost answer, sent again) only lengthens the pause a little.
        let pause = limited.map(lease_millis);
        let seen = lease_millis(GATE_WORKER_SEEN);
        let forgotten = lease_millis(GATE_WORKER_FORGOTTEN);
        self.retrying(|client| {
            // One statement, one round trip (every worker syncs every 100 ms). Its parts see
            // the table as it was before it: the pause and the count are taken from what the
            // inserts return, and this worker is counted apart.
            let statement = client.prepared(SYNC_RATE_GATE)?;
            let row = client
                .query_one(&statement, &[&key_hash, &worker, &pause, &seen, &forgotten])
                .map_err(pg_error)?;
            let paused_until: Option<i64> = row.get(0);
            let gate = paused_until.map(|paused| (paused, row.get(1)));
            Ok(gate_row(gate, row.get(2), row.get(3)))
        })
    }

    fn leases(&self, batch: &str, _now: Timestamp) -> Result<Vec<Lease>, LedgerError> {
        self.retrying(|client| {
            Ok(client
                .query(
                    &format!(
                        "SELECT key, lease_owner, lease_until FROM items WHERE batch_id = $1 \
                         AND lease_owner IS NOT NULL AND lease_until >= {NOW_MS} ORDER BY id"
                    ),
                    &[&batch],
                )
                .map_err(pg_error)?
                .iter()
                .map(|row| Lease {
                    key: row.get(0),
                    worker: row.get(1),
                    until: row.get::<_, i64>(2).max(0) as u64,
                })
                .collect())
        })
    }
}

const ITEM_COLUMNS: &str = "id, revision, key, line, video_url, file_path, file_size, model, \
     output_format, background, text_prompt, output_target, context, phase, generation, \
     idempotency_key, job_id, job_status, credits_estimated, credits_reserved, credits_charged, \
     output_path, output_size, output_sha256, last_error_code, last_error_message, \
     last_error_request_id, updated_at, uploaded_video_url";

/// [`ITEM_COLUMNS`] of the table aliased `i` (an UPDATE ... FROM returns both tables').
const ITEM_COLUMNS_OF_I: &str = "i.id, i.revision, i.key, i.line, i.video_url, i.file_path, \
     i.file_size, i.model, i.output_format, i.background, i.text_prompt, i.output_target, \
     i.context, i.phase, i.generation, i.idempotency_key, i.job_id, i.job_status, \
     i.credits_estimated, i.credits_reserved, i.credits_charged, i.output_path, i.output_size, \
     i.output_sha256, i.last_error_code, i.last_error_message, i.last_error_request_id, \
     i.updated_at, i.uploaded_video_url";

/// The events of a batch (`$1`), each with its item's key.
const EVENTS_OF_BATCH: &str = "SELECT e.seq, e.at, e.kind, e.phase_from, e.phase_to, \
     e.status_from, e.status_to, e.request_id, e.http_status, e.attempt, e.detail, e.worker, \
     i.key FROM events e JOIN items i ON i.id = e.item_id WHERE i.batch_id = $1";

/// A group in one statement: every changed row, each guarded by the revision it was read at
/// and by the lease (a row another worker holds or moved is not written, and the commit fails
/// for it), and the group's events (`$21`-`$31`) in order. Two data-modifying CTEs run whole,
/// on one snapshot; it returns the ids of the rows written.
/// The budget lock of a batch ($1): a transaction-scoped advisory lock on the batch id's
/// hash (a collision only makes two batches' reservations take turns).
const BUDGET_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('removebgvideo.budget:' || $1, 0))";

/// What the batch's ($1) items other than those with the ids $2 commit.
const COMMITTED_ELSEWHERE: &str = concat!(
    "SELECT SUM(",
    committed_sql!(),
    ") FROM items WHERE batch_id = $1 AND NOT (id = ANY($2))"
);

const UPDATE_AND_LOG: &str = concat!(
    "WITH updated AS (",
    "UPDATE items i SET phase = u.phase, generation = u.generation, \
     idempotency_key = u.idempotency_key, job_id = u.job_id, job_status = u.job_status, \
     credits_estimated = u.credits_estimated, credits_reserved = u.credits_reserved, \
     credits_charged = u.credits_charged, output_path = u.output_path, \
     output_size = u.output_size, output_sha256 = u.output_sha256, \
     last_error_code = u.last_error_code, last_error_message = u.last_error_message, \
     last_error_request_id = u.last_error_request_id, \
     uploaded_video_url = u.uploaded_video_url, updated_at = u.updated_at, \
     revision = u.revision \
     FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
          $7::float8[], $8::float8[], $9::float8[], $10::text[], $11::bigint[], $12::text[], \
          $13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::bigint[], \
          $19::bigint[]) \
       AS u(id, phase, generation, idempotency_key, job_id, job_status, credits_estimated, \
            credits_reserved, credits_charged, output_path, output_size, output_sha256, \
            last_error_code, last_error_message, last_error_request_id, uploaded_video_url, \
            updated_at, revision, read_at) \
     WHERE i.id = u.id AND i.revision = u.read_at \
       AND (i.lease_owner IS NULL OR i.lease_owner = $20) \
     RETURNING i.id",
    "), logged AS (",
    "INSERT INTO events (item_id, at, kind, phase_from, phase_to, status_from, status_to, \
     request_id, http_status, attempt, detail, worker) \
     SELECT item_id, at, kind, phase_from, phase_to, status_from, status_to, request_id, \
            http_status, attempt, detail, $20 \
     FROM UNNEST($21::bigint[], $22::bigint[], $23::text[], $24::text[], $25::text[], \
                 $26::text[], $27::text[], $28::text[], $29::bigint[], $30::bigint[], \
                 $31::text[]) WITH ORDINALITY \
       AS e(item_id, at, kind, phase_from, phase_to, status_from, status_to, request_id, \
            http_status, attempt, detail, n) \
     ORDER BY n RETURNING 1",
    // A row another worker moved (its revision, or its lease) fails the whole statement, so
    // nothing of the group is written even outside a transaction: PostgreSQL has no RAISE in
    // plain SQL, and a cast that cannot succeed is the one error a query can make at will.
    // It names the moved row: see `conflict_or_error`.
    ") SELECT CASE WHEN count(*) = $32 THEN count(*) \
       ELSE ('rbv-ledger-conflict ' || (SELECT min(r) FROM UNNEST($1::bigint[]) AS r \
                                      WHERE r NOT IN (SELECT id FROM updated)))::bigint END \
     FROM updated"
);

/// A worker's sync with a key's shared rate gate (see `sync_rate_gate`): $1 the key's hash,
/// $2 the worker, $3 the pause of a 429 it got (or NULL), $4 how recently a worker must have
/// synced to count, $5 how long after its last sync a worker's row is deleted. Returns the
/// pause's end, the 429s so far, the workers counted and the server's time.
const SYNC_RATE_GATE: &str = concat!(
    "WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now), ",
    "limited AS (",
    "INSERT INTO rate_gates (key_hash, paused_until, limited, limited_at) \
     SELECT $1, now + $3::BIGINT, 1, now FROM clock WHERE $3::BIGINT IS NOT NULL \
     ON CONFLICT (key_hash) DO UPDATE SET \
     paused_until = GREATEST(rate_gates.paused_until, EXCLUDED.paused_until), \
     limited = rate_gates.limited + 1, limited_at = EXCLUDED.limited_at \
     RETURNING paused_until, limited), ",
    "seen AS (",
    "INSERT INTO rate_gate_workers (key_hash, worker, seen_at) SELECT $1, $2, now FROM clock \
     ON CONFLICT (key_hash, worker) DO UPDATE SET seen_at = EXCLUDED.seen_at RETURNING 1), ",
    "forgotten AS (",
    "DELETE FROM rate_gate_workers WHERE key_hash = $1 AND worker <> $2 \
     AND seen_at < (SELECT now FROM clock) - $5::BIGINT RETURNING 1) ",
    "SELECT COALESCE((SELECT paused_until FROM limited), \
                     (SELECT paused_until FROM rate_gates WHERE key_hash = $1)), \
            COALESCE((SELECT limited FROM limited), \
                     (SELECT limited FROM rate_gates WHERE key_hash = $1)), \
            (SELECT COUNT(*) FROM rate_gate_workers \
              WHERE key_hash = $1 AND worker <> $2 \
                AND seen_at >= (SELECT now FROM clock) - $4::BIGINT) + 1, \
            (SELECT now FROM clock)"
);

/// The text of the cast [`UPDATE_AND_LOG`] fails with when a row moved, before its id.
const CONFLICT_MARK: &str = "rbv-ledger-conflict ";

/// The error of [`UPDATE_AND_LOG`]: a moved row (its failed cast, see there) is a conflict
/// over that row's item; anything else is the server's error.
fn conflict_or_error(error: postgres::Error, rows: &[(&Item, i64)]) -> LedgerError {
    let moved = error
        .as_db_error()
        .filter(|db| *db.code() == postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
        .and_then(|db| {
            let at = db.message().find(CONFLICT_MARK)? + CONFLICT_MARK.len();
            let id: String = db.message()[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            id.parse::<i64>().ok()
        });
    match moved {
        Some(id) => {
            let key = rows
                .iter()
                .find(|(item, _)| item.id == id)
                .map_or_else(String::new, |(item, _)| item.key.clone());
            LedgerError::Conflict(key)
        }
        None => pg_error(error),
    }
}

/// A group's events as columns (in order), for [`UPDATE_AND_LOG`] and `append_events`.
struct EventColumns<'a> {
    item_id: Vec<i64>,
    at: Vec<i64>,
    kind: Vec<&'a str>,
    from: Vec<Option<&'static str>>,
    to: Vec<Option<&'static str>>,
    status_from: Vec<Option<&'a str>>,
    status_to: Vec<Option<&'a str>>,
    request_id: Vec<Option<&'a str>>,
    http_status: Vec<Option<i64>>,
    attempt: Vec<Option<i64>>,
    detail: Vec<Option<String>>,
}

impl<'a> EventColumns<'a> {
    fn of(events: &'a [NewEvent<'a>]) -> EventColumns<'a> {
        EventColumns {
            item_id: events.iter().map(|e| e.item_id).collect(),
            at: events.iter().map(|e| millis(e.at)).collect(),
            kind: events.iter().map(|e| e.kind).collect(),
            from: events
                .iter()
                .map(|e| e.from.map(ItemPhase::as_str))
                .collect(),
            to: events.iter().map(|e| e.to.map(ItemPhase::as_str)).collect(),
            status_from: events
                .iter()
                .map(|e| e.step.status_from.as_deref())
                .collect(),
            status_to: events.iter().map(|e| e.step.status_to.as_deref()).collect(),
            request_id: events
                .iter()
                .map(|e| e.step.request_id.as_deref())
                .collect(),
            http_status: events
                .iter()
                .map(|e| e.step.http_status.map(i64::from))
                .collect(),
            attempt: events
                .iter()
                .map(|e| e.step.attempt.map(i64::from))
                .collect(),
            detail: events.iter().map(|e| event_detail(e.step)).collect(),
        }
    }

    fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 11] {
        [
            &self.item_id,
            &self.at,
            &self.kind,
            &self.from,
            &self.to,
            &self.status_from,
            &self.status_to,
            &self.request_id,
            &self.http_status,
            &self.attempt,
            &self.detail,
        ]
    }
}

/// A group's rows as columns, for [`UPDATE_AND_LOG`].
struct RowColumns {
    id: Vec<i64>,
    phase: Vec<&'static str>,
    generation: Vec<i64>,
    idempotency_key: Vec<Option<String>>,
    job_id: Vec<Option<String>>,
    job_status: Vec<Option<String>>,
    credits_estimated: Vec<Option<f64>>,
    credits_reserved: Vec<Option<f64>>,
    credits_charged: Vec<Option<f64>>,
    output_path: Vec<Option<String>>,
    output_size: Vec<Option<i64>>,
    output_sha256: Vec<Option<String>>,
    last_error_code: Vec<Option<String>>,
    last_error_message: Vec<Option<String>>,
    last_error_request_id: Vec<Option<String>>,
    uploaded_video_url: Vec<Option<String>>,
    updated_at: Vec<i64>,
    revision: Vec<i64>,
    read_at: Vec<i64>,
}

impl RowColumns {
    fn of(rows: &[(&Item, i64)]) -> RowColumns {
        RowColumns {
            id: rows.iter().map(|(item, _)| item.id).collect(),
            phase: rows.iter().map(|(item, _)| item.phase.as_str()).collect(),
            generation: rows
                .iter()
                .map(|(item, _)| i64::from(item.generation))
                .collect(),
            idempotency_key: rows
                .iter()
                .map(|(item, _)| item.idempotency_key.clone())
                .collect(),
            job_id: rows.iter().map(|(item, _)| item.job_id.clone()).collect(),
            job_status: rows
                .iter()
                .map(|(item, _)| item.job_status.clone())
                .collect(),
            credits_estimated: rows
                .iter()
                .map(|(item, _)| item.credits_estimated)
                .collect(),
            credits_reserved: rows.iter().map(|(item, _)| item.credits_reserved).collect(),
            credits_charged: rows.iter().map(|(item, _)| item.credits_charged).collect(),
            output_path: rows
                .iter()
                .map(|(item, _)| item.output_path.clone())
                .collect(),
            output_size: rows
                .iter()
                .map(|(item, _)| item.output_size.map(to_i64))
                .collect(),
            output_sha256: rows
                .iter()
                .map(|(item, _)| item.output_sha256.clone())
                .collect(),
            last_error_code: rows
                .iter()
                .map(|(item, _)| item.last_error_code.clone())
                .collect(),
            last_error_message: rows
                .iter()
                .map(|(item, _)| item.last_error_message.clone())
                .collect(),
            last_error_request_id: rows
                .iter()
                .map(|(item, _)| item.last_error_request_id.clone())
                .collect(),
            uploaded_video_url: rows
                .iter()
                .map(|(item, _)| item.uploaded_video_url.clone())
                .collect(),
            updated_at: rows
                .iter()
                .map(|(item, _)| to_i64(item.updated_at))
                .collect(),
            revision: rows.iter().map(|(item, _)| item.revision).collect(),
            read_at: rows.iter().map(|(_, read_at)| *read_at).collect(),
        }
    }

    fn params<'a>(&'a self, worker: &'a &'a str) -> [&'a (dyn postgres::types::ToSql + Sync); 20] {
        [
            &self.id,
            &self.phase,
            &self.generation,
            &self.idempotency_key,
            &self.job_id,
            &self.job_status,
            &self.credits_estimated,
            &self.credits_reserved,
            &self.credits_charged,
            &self.output_path,
            &self.output_size,
            &self.output_sha256,
            &self.last_error_code,
            &self.last_error_message,
            &self.last_error_request_id,
            &self.uploaded_video_url,
            &self.updated_at,
            &self.revision,
            &self.read_at,
            worker,
        ]
    }
}

/// Appends a group's events in order, in one statement.
fn append_events(
    tx: &mut postgres::Transaction<'_>,
    events: &[NewEvent<'_>],
    worker: &str,
) -> Result<(), LedgerError> {
    if events.is_empty() {
        return Ok(());
    }
    let columns = EventColumns::of(events);
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = columns.params().to_vec();
    params.push(&worker);
    // WITH ORDINALITY keeps the group's order in the log's sequence.
    tx.execute(
        "INSERT INTO events (item_id, at, kind, phase_from, phase_to, status_from, status_to, \
         request_id, http_status, attempt, detail, worker) \
         SELECT item_id, at, kind, phase_from, phase_to, status_from, status_to, request_id, \
                http_status, attempt, detail, $12 \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], \
                     $11::text[]) WITH ORDINALITY \
           AS e(item_id, at, kind, phase_from, phase_to, status_from, status_to, request_id, \
                http_status, attempt, detail, n) \
         ORDER BY n",
        &params,
    )
    .map_err(pg_error)?;
    Ok(())
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn read_item(row: &Row) -> Result<Item, LedgerError> {
    let background: Option<String> = row.get("background");
    let context: String = row.get("context");
    let phase: String = row.get("phase");
    let unsigned =
        |name: &str| -> Option<u64> { row.get::<_, Option<i64>>(name).map(|n| n.max(0) as u64) };
    Ok(Item {
        id: row.get("id"),
        revision: row.get("revision"),
        key: row.get("key"),
        line: unsigned("line"),
        input: ItemInput {
            video_url: row.get("video_url"),
            file_path: row.get("file_path"),
            file_size: unsigned("file_size"),
            model: row.get("model"),
            output_format: row.get("output_format"),
            background: parse_json(background, "background")?,
            text_prompt: row.get("text_prompt"),
            output_target: row.get("output_target"),
        },
        context: parse_json(Some(context), "context")?.unwrap_or(Value::Null),
        phase: ItemPhase::parse(&phase)?,
        generation: u32::try_from(row.get::<_, i64>("generation"))
            .map_err(|_| LedgerError::Corrupt("generation".into()))?,
        idempotency_key: row.get("idempotency_key"),
        uploaded_video_url: row.get("uploaded_video_url"),
        job_id: row.get("job_id"),
        job_status: row.get("job_status"),
        credits_estimated: row.get("credits_estimated"),
        credits_reserved: row.get("credits_reserved"),
        credits_charged: row.get("credits_charged"),
        output_path: row.get("output_path"),
        output_size: unsigned("output_size"),
        output_sha256: row.get("output_sha256"),
        last_error_code: row.get("last_error_code"),
        last_error_message: row.get("last_error_message"),
        last_error_request_id: row.get("last_error_request_id"),
        updated_at: row.get::<_, i64>("updated_at").max(0) as u64,
    })
}

fn read_event(row: &Row) -> Result<EventRecord, LedgerError> {
    let phase = |name: &str| -> Result<Option<ItemPhase>, LedgerError> {
        row.get::<_, Option<String>>(name)
            .as_deref()
            .map(ItemPhase::parse)
            .transpose()
    };
    let small = |name: &str| row.get::<_, Option<i64>>(name);
    Ok(EventRecord {
        seq: row.get("seq"),
        at: row.get::<_, i64>("at").max(0) as u64,
        kind: row.get("kind"),
        phase_from: phase("phase_from")?,
        phase_to: phase("phase_to")?,
        status_from: row.get("status_from"),
        status_to: row.get("status_to"),
        request_id: row.get("request_id"),
        http_status: small("http_status").and_then(|n| u16::try_from(n).ok()),
        attempt: small("attempt").and_then(|n| u32::try_from(n).ok()),
        detail: parse_json(row.get("detail"), "detail")?,
        worker: row.get("worker"),
    })
}
