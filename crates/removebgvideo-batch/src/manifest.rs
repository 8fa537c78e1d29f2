//! The manifest: one job per row, as CSV (a header row) or JSONL (one JSON object per line).
//!
//! Columns: `key` (optional: a stable hash of the row otherwise), `video_url` or `file`,
//! `model`, `output_format`, `background`, `text_prompt`, `metadata` (a JSON object), `output`
//! (optional path). Every row is checked by the core as the create request it becomes; every
//! problem of every row is reported at once, with its line number and field, and a manifest
//! with any is refused whole: nothing is sent.

use std::collections::HashMap;
use std::fmt;

use removebgvideo_core::validate::{Severity, problems_with_background};
use removebgvideo_core::{Background, CreateJobRequest, Model, OutputFormat};
use removebgvideo_ledger::{ItemInput, NewItem};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The columns a row may have.
const COLUMNS: [&str; 9] = [
    "key",
    "video_url",
    "file",
    "model",
    "output_format",
    "background",
    "text_prompt",
    "metadata",
    "output",
];

/// A manifest's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// The format a file name says (`.csv`; `.jsonl` or `.ndjson`).
    pub fn of_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(Format::Jsonl)
        } else {
            None
        }
    }
}

/// One thing wrong with one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowProblem {
    /// The line of the file (1 is the first; a CSV's header is line 1).
    pub line: u64,
    /// The column (`video_url`), or `row` for the row as a whole.
    pub field: String,
    /// A stable code (the core's problem codes, or `duplicate_key`, `unknown_column`,
    /// `invalid_json`, `missing_input`, `two_inputs`).
    pub code: String,
    pub message: String,
}

/// A manifest refused: every problem of every row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub problems: Vec<RowProblem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the manifest has {} problem(s); nothing was sent:",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(
                f,
                "  line {}: {}: {} ({})",
                p.line, p.field, p.message, p.code
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

impl From<ManifestError> for removebgvideo_core::Error {
    /// A `validation_error` with one problem per bad cell: its path is `/<line>/<column>`,
    /// its code one of the core's problem codes, its message names the line.
    fn from(error: ManifestError) -> Self {
        let problems = error
            .problems
            .iter()
            .map(|p| {
                let code = serde_json::from_value(Value::String(p.code.clone()))
                    .unwrap_or(removebgvideo_core::ProblemCode::InvalidType);
                removebgvideo_core::Problem::error(
                    format!("/{}/{}", p.line, p.field),
                    code,
                    format!("line {}: {}: {}", p.line, p.field, p.message),
                )
            })
            .collect();
        let mut converted = removebgvideo_core::Error::validation(problems);
        converted.message = format!(
            "the manifest has {} problem(s); nothing was sent",
            error.problems.len()
        );
        converted
    }
}

/// Reads a whole manifest into the ledger's items, or every problem it has.
pub fn read_manifest(text: &str, format: Format) -> Result<Vec<NewItem>, ManifestError> {
    let mut problems = Vec::new();
    let rows = match format {
        Format::Csv => csv_rows(text, &mut problems),
        Format::Jsonl => jsonl_rows(text, &mut problems),
    };
    let mut items = Vec::new();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for (line, row) in rows {
        // A key the row names is checked even when the row has other problems, so that
        // every problem is reported at once.
        let named = row.get("key").and_then(Value::as_str).map(str::to_owned);
        let item = checked_item(line, row, &mut problems);
        let Some(key) = item.as_ref().map(|item| item.key.clone()).or(named) else {
            continue;
        };
        match first_line_of.get(&key) {
            Some(first) => problems.push(RowProblem {
                line,
                field: "key".into(),
                code: "duplicate_key".into(),
                message: format!("key {key:?} is already used on line {first}"),
            }),
            None => {
                first_line_of.insert(key, line);
                items.extend(item);
            }
        }
    }
    if problems.is_empty() {
        Ok(items)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(ManifestError { problems })
    }
}

/// A CSV's rows as JSON objects (empty cells left out), with their line numbers.
fn csv_rows(text: &str, problems: &mut Vec<RowProblem>) -> Vec<(u64, Map<String, Value>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            problems.push(row_problem(1, "row", "invalid_csv", error.to_string()));
            return Vec::new();
        }
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                problems.push(row_problem(line, "row", "invalid_csv", error.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut row = Map::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            if !cell.is_empty() {
                row.insert(name.to_owned(), Value::String(cell.to_owned()));
            }
        }
        rows.push((line, row));
    }
    rows
}

/// A JSONL file's rows (blank lines skipped), with their line numbers.
fn jsonl_rows(text: &str, problems: &mut Vec<RowProblem>) -> Vec<(u64, Map<String, Value>)> {
    let mut rows = Vec::new();
    for (index, text) in text.lines().enumerate() {
        let line = index as u64 + 1;
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(row)) => rows.push((line, row)),
            Ok(_) => problems.push(row_problem(
                line,
                "row",
                "invalid_json",
                "a row must be a JSON object".into(),
            )),
            Err(error) => {
                problems.push(row_problem(line, "row", "invalid_json", error.to_string()))
            }
        }
    }
    rows
}

fn row_problem(line: u64, field: &str, code: &str, message: String) -> RowProblem {
    RowProblem {
        line,
        field: field.into(),
        code: code.into(),
        message,
    }
}

/// A row's text value (CSV cells are text; JSONL may hold anything).
fn text(
    row: &Map<String, Value>,
    name: &str,
    line: u64,
    problems: &mut Vec<RowProblem>,
) -> Option<String> {
    match row.get(name)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => {
            problems.push(row_problem(
                line,
                name,
                "invalid_type",
                format!("{name} must be a string (got {other})"),
            ));
            None
        }
    }
}

/// A JSON-valued column: a JSONL value as it is, a CSV cell parsed as JSON.
fn json_cell(
    row: &Map<String, Value>,
    name: &str,
    line: u64,
    problems: &mut Vec<RowProblem>,
) -> Option<Value> {
    match row.get(name)? {
        Value::String(cell) => match serde_json::from_str(cell) {
            Ok(value) => Some(value),
            Err(error) => {
                problems.push(row_problem(
                    line,
                    name,
                    "invalid_json",
                    format!("{name} is not JSON: {error}"),
                ));
                None
            }
        },
        Value::Null => None,
        value => Some(value.clone()),
    }
}

/// One row checked as the create request it becomes; `None` if it has problems (pushed).
fn checked_item(
    line: u64,
    row: Map<String, Value>,
    problems: &mut Vec<RowProblem>,
) -> Option<NewItem> {
    let before = problems.len();
    for name in row.keys().filter(|name| !COLUMNS.contains(&name.as_str())) {
        // A header cell left empty (a trailing comma) is a column without a name.
        let (field, shown) = if name.trim().is_empty() {
            ("(unnamed)", "a column without a name".to_owned())
        } else {
            (name.as_str(), name.clone())
        };
        problems.push(row_problem(
            line,
            field,
            "unknown_column",
            format!(
                "{shown} is not a manifest column (columns: {})",
                COLUMNS.join(", ")
            ),
        ));
    }
    let video_url = text(&row, "video_url", line, problems);
    let file = text(&row, "file", line, problems);
    match (&video_url, &file) {
        (None, None) => problems.push(row_problem(
            line,
            "video_url",
            "missing_input",
            "a row needs a video_url or a file".into(),
        )),
        (Some(_), Some(_)) => problems.push(row_problem(
            line,
            "file",
            "two_inputs",
            "a row takes a video_url or a file, not both".into(),
        )),
        _ => {}
    }
    let model = text(&row, "model", line, problems);
    let output_format = text(&row, "output_format", line, problems);
    let text_prompt = text(&row, "text_prompt", line, problems);
    let output = text(&row, "output", line, problems);
    let key = text(&row, "key", line, problems);
    let background = background_cell(&row, line, problems);
    let metadata = json_cell(&row, "metadata", line, problems);
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        problems.push(row_problem(
            line,
            "metadata",
            "invalid_type",
            "metadata must be a JSON object".into(),
        ));
    }
    // The request the row becomes, checked by the core. A file's upload URL is not known
    // yet: a placeholder stands in for it, so the other fields are checked all the same.
    let request = CreateJobRequest {
        video_url: video_url
            .clone()
            .unwrap_or_else(|| "https://upload.invalid/file".into()),
        model: model.as_deref().map(Model::from),
        output_format: output_format.as_deref().map(OutputFormat::from),
        text_prompt: text_prompt.clone(),
        ..CreateJobRequest::default()
    };
    let request = match &background {
        Some(Ok(background)) => request.with_background(background),
        _ => request,
    };
    for problem in problems_with_background(&request, background.as_ref()) {
        if problem.severity != Severity::Error {
            continue;
        }
        let field = problem
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("row");
        let field = if field.starts_with("bg_") || field.is_empty() {
            "background"
        } else {
            field
        };
        problems.push(row_problem(
            line,
            field,
            problem.code.as_str(),
            problem.message,
        ));
    }
    if problems.len() > before {
        return None;
    }
    let background = background
        .and_then(Result::ok)
        .map(|b| serde_json::to_value(b.to_nested()).unwrap_or(Value::Null));
    let input = ItemInput {
        video_url,
        file_path: file,
        file_size: None,
        model,
        output_format,
        background,
        text_prompt,
        output_target: output,
    };
    let key = key.unwrap_or_else(|| row_key(&input, metadata.as_ref()));
    Some(NewItem {
        key,
        line: Some(line),
        input,
        context: json!({ "metadata": metadata.unwrap_or_else(|| json!({})) }),
    })
}

/// The background column: text (`transparent`, a preset, `#rrggbb`, `image:URL`) or, as JSON,
/// an `[r, g, b]` array of channels in [0, 1].
fn background_cell(
    row: &Map<String, Value>,
    line: u64,
    problems: &mut Vec<RowProblem>,
) -> Option<Result<Background, removebgvideo_core::Error>> {
    let value = row.get("background")?;
    let channels = match value {
        Value::String(cell) if cell.trim_start().starts_with('[') => {
            json_cell(row, "background", line, problems)?
        }
        Value::String(cell) => return Some(Background::parse(cell)),
        Value::Null => return None,
        other => other.clone(),
    };
    match serde_json::from_value::<[f64; 3]>(channels) {
        Ok(channels) => Some(Background::from_rgb(channels)),
        Err(_) => {
            problems.push(row_problem(
                line,
                "background",
                "invalid_type",
                "background must be text or an [r, g, b] array".into(),
            ));
            None
        }
    }
}

/// A stable key for a row without one: a hash of what it asks for, so the same row run again
/// is the same item.
fn row_key(input: &ItemInput, metadata: Option<&Value>) -> String {
    let canonical = json!({ "input": input, "metadata": metadata }).to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("row-{hex}")
}
