//! The job ledger: what a batch of RemoveBGVideo jobs did, durably, so a batch can be killed at
//! any moment and resumed without a duplicate paid job or a lost job id.
//!
//! One SQLite file holds the items (one row per manifest row: its input, the caller's context,
//! its idempotency key, job id, phase, credits, output and last error) and an append-only event
//! log per item (every lifecycle transition, every create and start attempt, every retry and
//! error, each with its request id, HTTP status, attempt and time). The schema is documented in
//! `docs/ledger.md` for teams that query it with `sqlite3`.
//!
//! Write-ahead rules, which make a crash at any moment survivable:
//! - the intent to create a job (phase `creating`, with its idempotency key) is committed
//!   before the POST is sent ([`Ledger::begin_create`]);
//! - an answer is committed in the same transaction as the phase change it causes;
//! - an output is recorded done only after it is renamed into place.
//!
//! The default is WAL with `synchronous=NORMAL`: a process crash (kill -9) loses nothing
//! committed; a power loss may lose the last transactions. [`Durability::Full`] syncs every
//! commit, for machines where power loss matters. WAL needs a local filesystem: a ledger shared
//! between machines is PostgreSQL's job.

mod backend;
mod checkpoint;
mod error;
mod item;
mod ledger;
#[cfg(feature = "postgres")]
mod postgresql;
#[cfg(feature = "postgres")]
mod postgresql_schema;
mod schema;
mod sqlite;
mod step;
mod writer;

pub use backend::{GATE_WORKER_FORGOTTEN, GATE_WORKER_SEEN, Lease, RateGateRow};

pub use error::LedgerError;
pub use item::{EventRecord, Item, ItemInput, ItemPhase, NewItem};
pub use ledger::{Counts, Durability, Ledger, Location, derive_idempotency_key};
pub use schema::SCHEMA_VERSION;
pub use step::Step;
pub use writer::{Reservation, Writer};
