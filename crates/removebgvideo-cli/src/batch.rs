//! `batch run|status|export`: a manifest run on the client's engine with its ledger, bars on
//! a terminal, and the ledger read back.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use removebgvideo::core::validate::ProblemCode;
use removebgvideo::{CancelToken, Client, Error, ErrorCode, WaitLimit};
use removebgvideo_batch::{BatchOptions, LoadError, Progress, load_manifest, now};
use removebgvideo_ledger::{Durability, Ledger};
use serde_json::{Value, json};

use crate::args::{Batch, BatchRunArgs, LedgerArgs};
use crate::commands::{limit, usage_error};
use crate::output::{exit, print_result};

/// Runs a `batch` subcommand; the client is made only for `run`.
pub fn batch(
    command: &Batch,
    client: impl FnOnce() -> Result<Client, Error>,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<u8, Error> {
    match command {
        Batch::Run(args) => run(&client()?, args, cancel, json_mode),
        Batch::Status(args) => status(args, json_mode),
        Batch::Export {
            ledger,
            format,
            output,
        } => export(ledger, format, output.as_ref()),
        Batch::Report {
            ledger,
            markdown,
            html,
            no_usage,
        } => {
            let client = if *no_usage { None } else { Some(client()?) };
            report(
                ledger,
                markdown.as_ref(),
                html.as_ref(),
                client.as_ref(),
                json_mode,
            )
        }
    }
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorCode::Unknown("io_error".into()),
        format!("cannot {what} {}: {e}", path.display()),
    )
}

fn report(
    args: &LedgerArgs,
    markdown: Option<&PathBuf>,
    html: Option<&PathBuf>,
    client: Option<&Client>,
    json_mode: bool,
) -> Result<u8, Error> {
    let ledger = open_existing(args)?;
    let batch = chosen_batch(&ledger, args)?;
    let report = removebgvideo_batch::report(&ledger, &batch, client, now().unix_millis())
        .map_err(|error| match error {
            removebgvideo_batch::ReportError::Api(error) => error,
            removebgvideo_batch::ReportError::Ledger(error) => ledger_error(error),
        })?;
    let dir = ledger_path(args)
        .parent()
        .map(std::path::Path::to_owned)
        .unwrap_or_default();
    let md_path = markdown.cloned().unwrap_or_else(|| dir.join("report.md"));
    let html_path = html.cloned().unwrap_or_else(|| dir.join("report.html"));
    let md = report.markdown();
    std::fs::write(&md_path, &md).map_err(|e| io_error("write", &md_path, e))?;
    std::fs::write(&html_path, report.html()).map_err(|e| io_error("write", &html_path, e))?;
    let value = json!({ "report": report, "markdown": md_path, "html": html_path });
    print_result(&value, md.trim_end(), json_mode);
    Ok(exit::OK)
}

fn ledger_error(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Unknown("ledger_error".into()), error.to_string())
}

fn ledger_path(args: &LedgerArgs) -> PathBuf {
    args.ledger
        .clone()
        .unwrap_or_else(|| args.out.join("ledger.sqlite"))
}

/// The batch a read-only command is about: `--batch`, or the ledger's only one.
fn chosen_batch(ledger: &Ledger, args: &LedgerArgs) -> Result<String, Error> {
    if let Some(batch) = &args.batch {
        return Ok(batch.clone());
    }
    let batches = ledger.batches().map_err(ledger_error)?;
    match batches.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(usage_error(
            "/ledger",
            ProblemCode::NotApplicable,
            format!("{} holds no batch", ledger_path(args).display()),
        )),
        many => Err(usage_error(
            "/batch",
            ProblemCode::Required,
            format!(
                "the ledger holds {} batches; name one with --batch ({})",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

fn open_existing(args: &LedgerArgs) -> Result<Ledger, Error> {
    let path = ledger_path(args);
    if !path.exists() {
        return Err(usage_error(
            "/ledger",
            ProblemCode::NotApplicable,
            format!("no ledger at {} (run `batch run` first)", path.display()),
        ));
    }
    Ledger::open(&path, Durability::Normal).map_err(ledger_error)
}

fn options(args: &BatchRunArgs, cancel: &CancelToken) -> Result<BatchOptions, Error> {
    if args.max_in_flight == 0 {
        return Err(usage_error(
            "/max_in_flight",
            ProblemCode::OutOfRange,
            "--max-in-flight must be 1 or more".into(),
        ));
    }
    if let Some(budget) = args.budget_credits
        && !(budget.is_finite() && budget >= 0.0)
    {
        return Err(usage_error(
            "/budget_credits",
            ProblemCode::OutOfRange,
            format!("--budget-credits must be a number of credits, 0 or more (got {budget})"),
        ));
    }
    let mut options = BatchOptions::new(&args.ledger.out);
    options.max_in_flight = args.max_in_flight;
    options.budget_credits = args.budget_credits;
    options.restart_failed = args.restart_failed;
    options.recreate_unknown = args.recreate_unknown;
    options.cancel = cancel.clone();
    options.wait_limit = match args.timeout {
        None => WaitLimit::Unbounded,
        some => limit(some)?,
    };
    Ok(options)
}

/// A refused manifest: every bad row, and exit 2 (nothing was sent).
fn manifest_refused(error: LoadError, json_mode: bool) -> Result<u8, Error> {
    let LoadError::Manifest(manifest) = error else {
        return Err(ledger_error(error));
    };
    if json_mode {
        let problems: Vec<Value> = manifest
            .problems
            .iter()
            .map(|p| json!({ "line": p.line, "field": p.field, "code": p.code, "message": p.message }))
            .collect();
        let value = json!({ "error": {
            "code": "validation_error",
            "message": format!("the manifest has {} problem(s); nothing was sent", problems.len()),
            "problems": problems,
        }});
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
    } else {
        eprint!("error: {manifest}");
    }
    Ok(exit::USAGE)
}

fn run(
    client: &Client,
    args: &BatchRunArgs,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<u8, Error> {
    let mut options = options(args, cancel)?;
    std::fs::create_dir_all(&args.ledger.out).map_err(|e| {
        Error::new(
            ErrorCode::Unknown("io_error".into()),
            format!("cannot make {}: {e}", args.ledger.out.display()),
        )
    })?;
    let durability = if args.durability_full {
        Durability::Full
    } else {
        Durability::Normal
    };
    let mut ledger = Ledger::open(&ledger_path(&args.ledger), durability).map_err(ledger_error)?;
    let loaded = match load_manifest(
        &mut ledger,
        &args.manifest,
        args.ledger.batch.as_deref(),
        now(),
    ) {
        Ok(loaded) => loaded,
        Err(error) => return manifest_refused(error, json_mode),
    };
    let bars = Arc::new(Bars::new(json_mode, loaded.total as u64));
    let sink = bars.clone();
    options.on_progress = Some(Arc::new(move |progress: &Progress| sink.show(progress)));
    let summary = removebgvideo_batch::run(client, &mut ledger, &loaded.batch, &options)
        .map_err(ledger_error)?;
    bars.finish();
    if summary.cancelled {
        return Err(Error::new(
            ErrorCode::Cancelled,
            format!(
                "stopped: {} of {} done; run the same command again to resume",
                summary.progress.done, summary.progress.total
            ),
        ));
    }
    let p = &summary.progress;
    let human = format!(
        "batch {}: {} done, {} failed, {} unknown, {} errors, {} held, of {} in {:.1} s; {} credits\nresults: {}\nerrors:  {}",
        summary.batch,
        p.done,
        p.failed,
        p.unknown,
        p.errors,
        p.held,
        p.total,
        summary.seconds,
        p.credits_committed,
        summary.results.display(),
        summary.errors.display(),
    );
    let value = json!({ "summary": summary, "added": loaded.added });
    print_result(&value, &human, json_mode);
    Ok(if summary.complete {
        exit::OK
    } else {
        exit::JOB_FAILED
    })
}

/// The bars of a run: items finished (done and failed) with the ETA, then the line of what
/// is in flight and the credits against the budget. They draw only on a terminal.
struct Bars {
    items: ProgressBar,
    credits: ProgressBar,
}

impl Bars {
    fn new(json_mode: bool, total: u64) -> Bars {
        let draw = if json_mode {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(draw);
        let items = multi.add(ProgressBar::new(total));
        items.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} (ETA {eta})")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        items.set_prefix("items");
        let credits = multi.add(ProgressBar::new_spinner());
        credits.set_style(
            ProgressStyle::with_template("{prefix:>8} {msg}").expect("a valid template"),
        );
        credits.set_prefix("credits");
        Bars { items, credits }
    }

    fn show(&self, p: &Progress) {
        self.items.set_length(p.total);
        self.items
            .set_position(p.done + p.failed + p.unknown + p.errors + p.held);
        self.items.set_message(format!(
            "done {} failed {} in flight {} (ceiling {})",
            p.done, p.failed, p.in_flight, p.ceiling
        ));
        let budget = p
            .budget_credits
            .map_or_else(|| "no budget".to_owned(), |b| format!("of {b}"));
        self.credits
            .set_message(format!("{} committed {budget}", p.credits_committed));
    }

    fn finish(&self) {
        self.items.finish();
        self.credits.finish();
    }
}

fn status(args: &LedgerArgs, json_mode: bool) -> Result<u8, Error> {
    let ledger = open_existing(args)?;
    let batch = chosen_batch(&ledger, args)?;
    let status = removebgvideo_batch::status(&ledger, &batch).map_err(ledger_error)?;
    let value = serde_json::to_value(&status).expect("JSON");
    print_result(&value, &status.human(), json_mode);
    Ok(exit::OK)
}

const CSV_COLUMNS: [&str; 13] = [
    "seq",
    "at",
    "key",
    "kind",
    "phase_from",
    "phase_to",
    "status_from",
    "status_to",
    "request_id",
    "http_status",
    "attempt",
    "detail",
    "batch",
];

fn export(args: &LedgerArgs, format: &str, output: Option<&PathBuf>) -> Result<u8, Error> {
    if !matches!(format, "jsonl" | "csv") {
        return Err(usage_error(
            "/format",
            ProblemCode::UnknownValue,
            format!("--format must be jsonl or csv (got {format:?})"),
        ));
    }
    let ledger = open_existing(args)?;
    let batch = chosen_batch(&ledger, args)?;
    let events = ledger.batch_events(&batch).map_err(ledger_error)?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| {
                Error::new(
                    ErrorCode::Unknown("io_error".into()),
                    format!("cannot write {}: {e}", path.display()),
                )
            })?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let write_error = |e: std::io::Error| {
        Error::new(
            ErrorCode::Unknown("io_error".into()),
            format!("cannot write the export: {e}"),
        )
    };
    if format == "csv" {
        writeln!(out, "{}", CSV_COLUMNS.join(",")).map_err(write_error)?;
    }
    for (key, event) in &events {
        let mut line = serde_json::to_value(event).expect("JSON");
        line["key"] = json!(key);
        line["batch"] = json!(batch);
        if format == "jsonl" {
            writeln!(out, "{line}").map_err(write_error)?;
        } else {
            let cells: Vec<String> = CSV_COLUMNS
                .iter()
                .map(|column| csv_cell(&line[*column]))
                .collect();
            writeln!(out, "{}", cells.join(",")).map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)?;
    Ok(exit::OK)
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_cell(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
