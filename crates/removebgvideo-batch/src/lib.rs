//! Batches of RemoveBGVideo jobs: a manifest (CSV or JSONL, one job per row, checked whole by
//! the core before anything is sent) loaded into the ledger, and the runner that takes every
//! item to its end on the client's engine, resumable after a kill at any moment.
//!
//! ```no_run
//! use removebgvideo::Client;
//! use removebgvideo_batch::{BatchOptions, load_manifest, run};
//! use removebgvideo_ledger::{Durability, Ledger};
//!
//! let client = Client::from_env()?;
//! let mut ledger = Ledger::open("out/ledger.sqlite".as_ref(), Durability::Normal)?;
//! let loaded = load_manifest(&mut ledger, "videos.csv".as_ref(), None, removebgvideo_batch::now())?;
//! let summary = run(&client, &mut ledger, &loaded.batch, &BatchOptions::new("out"))?;
//! println!("{} of {} done", summary.progress.done, summary.progress.total);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bridge;
mod crash;
mod files;
mod ledger_cost;
mod manifest;
mod plan;
mod report;
mod request;
mod runner;
mod shared_gate;
mod source;
mod status;

pub use crash::{CRASH_ENV, POINTS as CRASH_POINTS};
pub use files::{digest, output_path, result_line};
pub use ledger_cost::LedgerCost;
pub use manifest::{Format, ManifestError, RowProblem, read_manifest};
pub use plan::{Budget, Ceiling, Next, Policy, next_step};
pub use report::{
    ModelBaseline, Reconciliation, Report, ReportError, build as build_report, for_batch as report,
    reconcile,
};
pub use request::{create_request, estimate};
pub use runner::{
    BatchError, BatchOptions, ItemHandler, Progress, ProgressHandler, Summary, now, run,
};
pub use source::{LoadError, Loaded, load_manifest, new_batch_id};
pub use status::{Credits, Status, WorkerShare, status};
