//! A manifest file loaded into the ledger as a batch: its id, its rows as items (file inputs
//! resolved against the manifest's folder and weighed), all or nothing.

use std::path::{Path, PathBuf};

use removebgvideo_core::Timestamp;
use removebgvideo_ledger::{Ledger, LedgerError, NewItem};

use crate::manifest::{Format, ManifestError, RowProblem, read_manifest};

/// Why a manifest could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read, or its format is not known from its name.
    Io(String),
    /// Bad rows: every one, with its line and field (nothing was sent or stored).
    Manifest(ManifestError),
    Ledger(LedgerError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(message) => f.write_str(message),
            LoadError::Manifest(error) => error.fmt(f),
            LoadError::Ledger(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The batch id.
    pub batch: String,
    /// Items new to the ledger.
    pub added: usize,
    /// Items in the manifest.
    pub total: usize,
}

/// A new batch id for a manifest: its file stem and 12 random hex digits. The id is part of
/// every idempotency key, so another ledger running the same manifest makes its own jobs,
/// while the same ledger resumes its own.
pub fn new_batch_id(manifest: &Path) -> String {
    let stem: String = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(40)
        .collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{stem}-{}", &random[..12])
}

/// Reads, checks and stores the manifest at `path` as batch `batch`, or else as the batch
/// this ledger already holds for the same file (a re-run resumes it), or else a new one.
pub fn load_manifest(
    ledger: &mut Ledger,
    path: &Path,
    batch: Option<&str>,
    now: Timestamp,
) -> Result<Loaded, LoadError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let name = absolute.to_string_lossy();
    let format = Format::of_path(&name).ok_or_else(|| {
        LoadError::Io(format!(
            "{name}: a manifest is .csv, .jsonl or .ndjson (the format is read from the name)"
        ))
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::Io(format!("cannot read the manifest {name}: {e}")))?;
    let mut items = read_manifest(&text, format).map_err(LoadError::Manifest)?;
    let base = path.parent().unwrap_or(Path::new(""));
    weigh_files(&mut items, base).map_err(LoadError::Manifest)?;
    let batch = match batch {
        Some(batch) => batch.to_owned(),
        None => ledger
            .adopt_batch(&name, &new_batch_id(path), now)
            .map_err(LoadError::Ledger)?,
    };
    let added = ledger
        .add_items(&batch, &name, &items, now)
        .map_err(LoadError::Ledger)?;
    Ok(Loaded {
        batch,
        added,
        total: items.len(),
    })
}

/// Resolves every file input against the manifest's folder and records its size; a file that
/// is missing is a row problem like any other, reported with the rest.
fn weigh_files(items: &mut [NewItem], base: &Path) -> Result<(), ManifestError> {
    let mut problems = Vec::new();
    for item in items.iter_mut() {
        let Some(file) = &item.input.file_path else {
            continue;
        };
        let resolved: PathBuf = if Path::new(file).is_absolute() {
            PathBuf::from(file)
        } else {
            base.join(file)
        };
        match std::fs::metadata(&resolved) {
            Ok(meta) if meta.is_file() => {
                item.input.file_path = Some(resolved.display().to_string());
                item.input.file_size = Some(meta.len());
            }
            Ok(_) => problems.push(file_problem(item, "is not a file", &resolved)),
            Err(e) => problems.push(file_problem(item, &e.to_string(), &resolved)),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ManifestError { problems })
    }
}

fn file_problem(item: &NewItem, what: &str, path: &Path) -> RowProblem {
    RowProblem {
        line: item.line.unwrap_or(0),
        field: "file".into(),
        code: "file_unreadable".into(),
        message: format!("{}: {what}", path.display()),
    }
}
