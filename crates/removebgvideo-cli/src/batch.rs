//! `batch run|status|export`: a manifest run on the client's engine with its ledger, bars on
//! a terminal, and the ledger read back.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use removebgvideo::core::validate::ProblemCode;
use removebgvideo::{CancelToken, Client, Error, ErrorCode};
use removebgvideo_batch::bridge::BatchArgs;
use removebgvideo_batch::{Progress, now};
use removebgvideo_ledger::{Durability, Ledger, Location};
use serde_json::{Value, json};

use crate::args::{Batch, BatchRunArgs, LedgerArgs};
use crate::commands::usage_error;
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
    // Next to a ledger file; in the out folder for a shared ledger.
    let dir = match ledger_location(args) {
        Location::File(path) => path
            .parent()
            .map(std::path::Path::to_owned)
            .unwrap_or_default(),
        Location::Postgres(_) => args.out.clone(),
    };
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

fn ledger_location(args: &LedgerArgs) -> Location {
    match &args.ledger {
        Some(ledger) => Location::parse(&ledger.to_string_lossy()),
        None => Location::File(args.out.join("ledger.sqlite")),
    }
}

/// The ledger as a message names it (a URL's password left out).
fn ledger_name(args: &LedgerArgs) -> String {
    match ledger_location(args) {
        Location::File(path) => path.display().to_string(),
        Location::Postgres(_) => "the PostgreSQL ledger".to_owned(),
    }
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
            format!("{} holds no batch", ledger_name(args)),
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
    let location = ledger_location(args);
    if let Location::File(path) = &location
        && !path.exists()
    {
        return Err(usage_error(
            "/ledger",
            ProblemCode::NotApplicable,
            format!("no ledger at {} (run `batch run` first)", path.display()),
        ));
    }
    Ledger::open_at(&location, Durability::Normal).map_err(ledger_error)
}

/// The runner's arguments, as every language gives them (checked and loaded by the bridge, so
/// the CLI, Python and Node refuse the same things the same way).
fn batch_args(args: &BatchRunArgs) -> BatchArgs {
    BatchArgs {
        manifest: Some(args.manifest.clone()),
        items: None,
        out: args.ledger.out.clone(),
        ledger: args.ledger.ledger.clone(),
        batch: args.ledger.batch.clone(),
        max_in_flight: Some(args.max_in_flight as u64),
        budget_credits: args.budget_credits,
        restart_failed: Some(args.restart_failed),
        recreate_unknown: args.recreate_unknown,
        durability: args.durability_full.then(|| "full".to_owned()),
        timeout: args.timeout,
        lease: args.lease,
        max_requests_per_second: args.max_requests_per_second,
    }
}

fn run(
    client: &Client,
    args: &BatchRunArgs,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<u8, Error> {
    let batch_args = batch_args(args);
    batch_args.check()?;
    let mut options = batch_args.options(cancel.clone())?;
    // A bad manifest is a validation error naming every bad row (`/<line>/<column>`): exit 2,
    // nothing sent.
    let (mut ledger, batch) = batch_args.load()?;
    // Kept until the run ends: its waits end on the receiver's deliveries.
    let _receiver =
        crate::webhooks::receiver_for(client, &args.webhooks, args.webhook_url.as_deref())?;
    let bars = Arc::new(Bars::new(json_mode));
    let sink = bars.clone();
    options.on_progress = Some(Arc::new(move |progress: &Progress| sink.show(progress)));
    let summary =
        removebgvideo_batch::run(client, &mut ledger, &batch, &options).map_err(ledger_error)?;
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
    let value = json!({ "summary": summary });
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
    fn new(json_mode: bool) -> Bars {
        let draw = if json_mode {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(draw);
        // Its length comes with the first report.
        let items = multi.add(ProgressBar::new(0));
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
