//! What the command prints and the exit status it ends with.

use removebgvideo::{Error, ErrorKind};
use serde_json::{Value, json};

/// Exit statuses: a script can tell what went wrong without reading the text.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Anything else (local files, webhook verification, the sandbox).
    pub const OTHER: u8 = 1;
    /// Bad arguments or a request rejected before sending (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// The API answered with an error, or could not be reached.
    pub const API: u8 = 3;
    /// The job failed.
    pub const JOB_FAILED: u8 = 4;
    /// A wait or run reached its deadline.
    pub const TIMEOUT: u8 = 5;
    /// The playground found failing checks or runs.
    pub const CHECKS_FAILED: u8 = 6;
    /// Interrupted (Ctrl-C): 128 + SIGINT.
    pub const INTERRUPTED: u8 = 130;
    /// Terminated (SIGTERM): 128 + SIGTERM.
    pub const TERMINATED: u8 = 143;
}

/// The exit status of an error.
pub fn exit_code(error: &Error) -> u8 {
    match error.kind() {
        ErrorKind::Validation => exit::USAGE,
        ErrorKind::JobFailed => exit::JOB_FAILED,
        ErrorKind::WaitTimeout => exit::TIMEOUT,
        ErrorKind::Cancelled => exit::INTERRUPTED,
        ErrorKind::Download | ErrorKind::Webhook => exit::OTHER,
        _ => exit::API,
    }
}

/// An error as JSON, in the shape every language shares.
pub fn error_json(error: &Error) -> Value {
    json!({ "error": error.to_json() })
}

/// Prints an error: JSON on stdout with `--json`, else a readable block on stderr.
pub fn print_error(error: &Error, json_mode: bool) {
    if json_mode {
        println!(
            "{}",
            serde_json::to_string_pretty(&error_json(error)).expect("JSON")
        );
        return;
    }
    eprintln!("error: {}: {}", error.code, error.message);
    if let Some(status) = error.status {
        eprintln!("  HTTP status: {status}");
    }
    if let Some(request_id) = &error.request_id {
        eprintln!("  request id:  {request_id}");
    }
    if let Some(key) = &error.idempotency_key {
        eprintln!("  idempotency key: {key}");
    }
    for problem in &error.problems {
        eprintln!("  - {} ({})", problem.message, problem.path);
    }
    if let Some(job) = &error.job {
        eprintln!("  job: {} ({})", job.id, job.status);
    }
}

/// Prints a result: pretty JSON with `--json`, else the human lines.
pub fn print_result(value: &Value, human: &str, json_mode: bool) {
    if json_mode {
        println!("{}", serde_json::to_string_pretty(value).expect("JSON"));
    } else {
        println!("{human}");
    }
}
