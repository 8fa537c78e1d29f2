//! The batch's JSON bridge for the bindings, so that Python's and Node's `Batch` share one
//! reading of their arguments (snake_case JSON, unknown fields refused with their path) and
//! one shape of every result. Bindings add only their runtime's part: threads, the GIL,
//! promises, iterators, a progress bar.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use removebgvideo::core::validate::{Problem, ProblemCode};
use removebgvideo::{CancelToken, Client, Error, ErrorCode, WaitLimit};
use removebgvideo_core::units;
use removebgvideo_ledger::{Durability, Ledger, Location};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::manifest::{Format, read_manifest};
use crate::runner::{BatchOptions, Progress};
use crate::source::{LoadError, load_manifest, new_batch_id};

/// The source a batch of items given in code is stored under: one such batch per ledger,
/// resumed by the same call again.
const ITEMS_SOURCE: &str = "items";

/// The shortest lease: its heartbeat comes every third of it, and a pause of the worker (a
/// full collection, a slow disk) must not let it lapse.
const MIN_LEASE: std::time::Duration = std::time::Duration::from_secs(2);

/// What `Batch(...)` takes in every language.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchArgs {
    /// A manifest file (.csv, .jsonl); or else `items`.
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    /// Rows as a manifest's JSONL rows (`video_url` or `file`, `key`, `model`, ...).
    #[serde(default)]
    pub items: Option<Vec<Map<String, Value>>>,
    /// The out folder (outputs, results, the ledger by default).
    #[serde(default = "default_out")]
    pub out: PathBuf,
    /// The ledger file, instead of `out/ledger.sqlite`; or a `postgres://` URL, a ledger that
    /// workers on many machines share (each works on the items it claims).
    #[serde(default)]
    pub ledger: Option<PathBuf>,
    /// The batch id, instead of the one the ledger holds for this manifest (or items).
    #[serde(default)]
    pub batch: Option<String>,
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    #[serde(default)]
    pub budget_credits: Option<f64>,
    #[serde(default)]
    pub restart_failed: Option<u32>,
    #[serde(default)]
    pub recreate_unknown: bool,
    /// `normal` (default) or `full`.
    #[serde(default)]
    pub durability: Option<String>,
    /// Seconds each job may take.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Seconds a worker's claim on an item lasts unless its heartbeat renews it (a shared
    /// ledger; default 30): how soon another worker takes over a dead one's items.
    #[serde(default)]
    pub lease: Option<f64>,
    /// Requests per second the API key may be sent at most: on a shared ledger the key's
    /// ceiling, split between every worker that uses the key.
    #[serde(default)]
    pub max_requests_per_second: Option<f64>,
}

fn default_out() -> PathBuf {
    PathBuf::from("out")
}

fn invalid(path: &str, code: ProblemCode, message: String) -> Error {
    Error::validation(vec![Problem::error(path, code, message)])
}

fn ledger_error(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Unknown("ledger_error".into()), error.to_string())
}

impl BatchArgs {
    /// Reads and checks the arguments' JSON.
    pub fn from_json(json: &str) -> Result<BatchArgs, Error> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let args: BatchArgs = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = format!("/{}", e.path().to_string().replace('.', "/"));
            invalid(&path, ProblemCode::InvalidType, e.inner().to_string())
        })?;
        args.check()?;
        Ok(args)
    }

    /// Checks every argument, each problem naming its field.
    pub fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.manifest.is_some() == self.items.is_some() {
            problems.push(Problem::error(
                "/manifest",
                ProblemCode::Required,
                "a batch takes a manifest path or items, one of the two",
            ));
        }
        if self.max_in_flight == Some(0) {
            problems.push(Problem::error(
                "/max_in_flight",
                ProblemCode::OutOfRange,
                "max_in_flight must be 1 or more",
            ));
        }
        if let Some(budget) = self.budget_credits
            && !(budget.is_finite() && budget >= 0.0)
        {
            problems.push(Problem::error(
                "/budget_credits",
                ProblemCode::OutOfRange,
                format!("budget_credits must be a number of credits, 0 or more (got {budget})"),
            ));
        }
        if let Some(durability) = &self.durability
            && !matches!(durability.as_str(), "normal" | "full")
        {
            problems.push(Problem::error(
                "/durability",
                ProblemCode::UnknownValue,
                format!("durability must be normal or full (got {durability:?})"),
            ));
        }
        if let Some(seconds) = self.timeout
            && let Err(problem) = units::positive_seconds("/timeout", seconds)
        {
            problems.push(problem);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(problems))
        }
    }

    /// Where the ledger is: `ledger` (a file or a `postgres://` URL), else `out/ledger.sqlite`.
    pub fn ledger_location(&self) -> Location {
        match &self.ledger {
            Some(ledger) => Location::parse(&ledger.to_string_lossy()),
            None => Location::File(self.out.join("ledger.sqlite")),
        }
    }

    fn open_ledger(&self) -> Result<Ledger, Error> {
        std::fs::create_dir_all(&self.out).map_err(|e| {
            Error::new(
                ErrorCode::Unknown("io_error".into()),
                format!("cannot make the out folder {}: {e}", self.out.display()),
            )
        })?;
        let durability = match self.durability.as_deref() {
            Some("full") => Durability::Full,
            _ => Durability::Normal,
        };
        Ledger::open_at(&self.ledger_location(), durability).map_err(ledger_error)
    }

    /// Loads the manifest (or items) into the ledger, all or nothing: a bad row anywhere is a
    /// `validation_error` naming every bad row, and nothing is stored or sent.
    pub fn load(&self) -> Result<(Ledger, String), Error> {
        let mut ledger = self.open_ledger()?;
        let now = crate::runner::now();
        let batch = match (&self.manifest, &self.items) {
            (Some(path), _) => {
                load_manifest(&mut ledger, path, self.batch.as_deref(), now)
                    .map_err(load_error)?
                    .batch
            }
            (None, Some(rows)) => {
                let text: Vec<String> = rows
                    .iter()
                    .map(|row| Value::Object(row.clone()).to_string())
                    .collect();
                let items = read_manifest(&text.join("\n"), Format::Jsonl).map_err(Error::from)?;
                let batch = match &self.batch {
                    Some(batch) => batch.clone(),
                    None => ledger
                        .adopt_batch(ITEMS_SOURCE, &new_batch_id(Path::new(ITEMS_SOURCE)), now)
                        .map_err(ledger_error)?,
                };
                ledger
                    .add_items(&batch, ITEMS_SOURCE, &items, now)
                    .map_err(ledger_error)?;
                batch
            }
            (None, None) => unreachable!("checked: one of the two"),
        };
        Ok((ledger, batch))
    }

    /// The ledger and batch of a batch that was run before (status, events, report).
    pub fn existing(&self) -> Result<(Ledger, String), Error> {
        if let Location::File(path) = self.ledger_location()
            && !path.exists()
        {
            return Err(invalid(
                "/out",
                ProblemCode::NotApplicable,
                format!("no ledger at {} (run the batch first)", path.display()),
            ));
        }
        let ledger = self.open_ledger()?;
        let source = match &self.manifest {
            Some(path) => std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .to_string_lossy()
                .into_owned(),
            None => ITEMS_SOURCE.to_owned(),
        };
        let batch = match &self.batch {
            Some(batch) => Some(batch.clone()),
            None => ledger.batch_of_source(&source).map_err(ledger_error)?,
        };
        let batch = batch.ok_or_else(|| {
            invalid(
                "/batch",
                ProblemCode::NotApplicable,
                format!("the ledger holds no batch of {source}"),
            )
        })?;
        Ok((ledger, batch))
    }

    /// The runner's options these arguments make.
    pub fn options(&self, cancel: CancelToken) -> Result<BatchOptions, Error> {
        let mut options = BatchOptions::new(&self.out);
        if let Some(n) = self.max_in_flight {
            options.max_in_flight = usize::try_from(n).unwrap_or(usize::MAX);
        }
        options.budget_credits = self.budget_credits;
        options.restart_failed = self.restart_failed.unwrap_or(0);
        options.recreate_unknown = self.recreate_unknown;
        options.cancel = cancel;
        if let Some(seconds) = self.timeout {
            let limit = units::positive_seconds("/timeout", seconds).map_err(Error::from)?;
            options.wait_limit = WaitLimit::After(limit);
        }
        if let Some(seconds) = self.lease {
            let lease = units::positive_seconds("/lease", seconds).map_err(Error::from)?;
            if lease < MIN_LEASE {
                return Err(invalid(
                    "/lease",
                    ProblemCode::OutOfRange,
                    format!(
                        "lease must be at least {} s (its heartbeat renews it every third of it)",
                        MIN_LEASE.as_secs()
                    ),
                ));
            }
            options.lease = lease;
        }
        if let Some(rate) = self.max_requests_per_second {
            if !(rate.is_finite() && rate > 0.0 && rate <= 1e6) {
                return Err(invalid(
                    "/max_requests_per_second",
                    ProblemCode::OutOfRange,
                    format!(
                        "max_requests_per_second must be above 0 and at most 1000000 (got {rate})"
                    ),
                ));
            }
            options.max_requests_per_second = Some(rate);
        }
        Ok(options)
    }
}

fn load_error(error: LoadError) -> Error {
    match error {
        LoadError::Manifest(manifest) => Error::from(manifest),
        LoadError::Io(message) => invalid("/manifest", ProblemCode::FileUnreadable, message),
        LoadError::Ledger(error) => ledger_error(error),
    }
}

/// Receives JSON: an item's result line, or the progress.
pub type JsonHandler = Arc<dyn Fn(String) + Send + Sync>;

/// Callbacks of a run.
#[derive(Default)]
pub struct Callbacks {
    pub on_item: Option<JsonHandler>,
    pub on_progress: Option<JsonHandler>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_item", &self.on_item.is_some())
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

/// Runs (or resumes) a batch: the arguments' JSON in, the summary's JSON out. Blocks until
/// the batch ends or `cancel` stops it.
pub fn run(
    client: &Client,
    args_json: &str,
    callbacks: Callbacks,
    cancel: CancelToken,
) -> Result<String, Error> {
    let args = BatchArgs::from_json(args_json)?;
    let mut options = args.options(cancel)?;
    let (mut ledger, batch) = args.load()?;
    if let Some(on_item) = callbacks.on_item {
        options.on_item = Some(Arc::new(move |line: &Value| on_item(line.to_string())));
    }
    if let Some(on_progress) = callbacks.on_progress {
        options.on_progress = Some(Arc::new(move |progress: &Progress| {
            on_progress(serde_json::to_string(progress).expect("JSON"))
        }));
    }
    let summary =
        crate::runner::run(client, &mut ledger, &batch, &options).map_err(ledger_error)?;
    Ok(serde_json::to_string(&summary).expect("JSON"))
}

/// The status of a batch run before, as JSON.
pub fn status(args_json: &str) -> Result<String, Error> {
    let (ledger, batch) = BatchArgs::from_json(args_json)?.existing()?;
    let status = crate::status::status(&ledger, &batch).map_err(ledger_error)?;
    Ok(serde_json::to_string(&status).expect("JSON"))
}

/// An item's log, as a JSON array (oldest first).
pub fn events(args_json: &str, key: &str) -> Result<String, Error> {
    let (ledger, batch) = BatchArgs::from_json(args_json)?.existing()?;
    let events = ledger.events(&batch, key).map_err(|e| match e {
        removebgvideo_ledger::LedgerError::NoSuchItem(_) => invalid(
            "/key",
            ProblemCode::NotApplicable,
            format!("the batch has no item {key:?}"),
        ),
        other => ledger_error(other),
    })?;
    Ok(serde_json::to_string(&events).expect("JSON"))
}

/// The SLA report of a batch: `{"report", "markdown", "html"}` as JSON; with a client, the
/// usage reconciliation too.
pub fn report(client: Option<&Client>, args_json: &str) -> Result<String, Error> {
    let (ledger, batch) = BatchArgs::from_json(args_json)?.existing()?;
    let report =
        crate::report::for_batch(&ledger, &batch, client, crate::runner::now().unix_millis())
            .map_err(|e| match e {
                crate::report::ReportError::Api(error) => error,
                crate::report::ReportError::Ledger(error) => ledger_error(error),
            })?;
    Ok(json!({
        "report": report,
        "markdown": report.markdown(),
        "html": report.html(),
    })
    .to_string())
}

/// Checks a manifest's text without storing anything: its items' keys, or the
/// `validation_error` naming every bad row (the shared manifest vectors run through this).
pub fn check_manifest(text: &str, format: &str) -> Result<String, Error> {
    let format = match format {
        "csv" => Format::Csv,
        "jsonl" => Format::Jsonl,
        other => {
            return Err(invalid(
                "/format",
                ProblemCode::UnknownValue,
                format!("format must be csv or jsonl (got {other:?})"),
            ));
        }
    };
    let items = read_manifest(text, format).map_err(Error::from)?;
    let keys: Vec<&str> = items.iter().map(|item| item.key.as_str()).collect();
    Ok(json!({ "keys": keys }).to_string())
}
