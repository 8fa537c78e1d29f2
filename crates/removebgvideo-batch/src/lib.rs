//! Batches of RemoveBGVideo jobs. So far the manifest: a CSV or JSONL file with one job per
//! row, checked whole by the core before anything is sent (every bad row reported at once, with
//! its line and field), its rows turned into the ledger's items. The runner comes next.

mod manifest;

pub use manifest::{Format, ManifestError, RowProblem, read_manifest};
