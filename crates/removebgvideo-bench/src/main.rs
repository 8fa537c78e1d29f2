//! `removebgvideo-bench`: the Rust side of `cargo xtask bench`. Each subcommand measures one
//! thing and prints one JSON object; xtask runs them next to the Python, Node and curl
//! contenders and writes the report.
//!
//! ```text
//! removebgvideo-bench percall  --base-url URL --key KEY --job-id ID --calls N --rounds R
//! removebgvideo-bench polling  --jobs N --seed S
//! removebgvideo-bench prepare  --base-url URL --key KEY --video-url URL
//! removebgvideo-bench download --base-url URL --key KEY --job-id ID --out PATH
//! removebgvideo-bench create-jobs --base-url URL --key KEY --jobs N --seed S --speed X [--pace R] --out FILE
//! removebgvideo-bench many-wait --base-url URL --key KEY --jobs-file FILE --mode threads|engine --timeout SECONDS
//! removebgvideo-bench batch-run --base-url URL --key KEY --video-url URL --items N --in-flight C --out DIR
//! removebgvideo-bench batch-resume --base-url URL --key KEY --items N --out DIR
//! removebgvideo-bench webhook-lag --jobs N --seed S
//! removebgvideo-bench batch-worker --base-url URL --key KEY --ledger URL --manifest FILE --batch ID --in-flight C --out DIR
//! ```

mod batchrun;
mod download;
mod jobset;
mod manywait;
mod percall;
mod polling;
mod prepare;
mod probe;
mod stats;
mod webhooklag;

use std::collections::HashMap;
use std::process::ExitCode;

/// `--name value` pairs.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(raw: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut pairs = HashMap::new();
        let mut raw = raw.peekable();
        while let Some(flag) = raw.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --name, got {flag:?}"))?;
            let value = raw
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.insert(name.to_owned(), value);
        }
        Ok(Args(pairs))
    }

    fn text(&self, name: &str) -> Result<&str, String> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn float(&self, name: &str) -> Result<f64, String> {
        self.text(name)?
            .parse()
            .map_err(|e| format!("--{name}: {e}"))
    }

    fn number(&self, name: &str) -> Result<u64, String> {
        self.text(name)?
            .parse()
            .map_err(|e| format!("--{name}: {e}"))
    }
}

fn run() -> Result<serde_json::Value, String> {
    let mut raw = std::env::args().skip(1);
    let command = raw
        .next()
        .ok_or("usage: removebgvideo-bench COMMAND --name value ...")?;
    let args = Args::parse(raw)?;
    match command.as_str() {
        "percall" => percall::run(
            args.text("base-url")?,
            args.text("key")?,
            args.text("job-id")?,
            args.number("calls")? as usize,
            args.number("rounds")? as usize,
        ),
        "polling" => Ok(polling::run(
            args.number("jobs")? as usize,
            args.number("seed")?,
        )),
        "prepare" => prepare::run(
            args.text("base-url")?,
            args.text("key")?,
            args.text("video-url")?,
        ),
        "download" => download::run(
            args.text("base-url")?,
            args.text("key")?,
            args.text("job-id")?,
            std::path::Path::new(args.text("out")?),
        ),
        "create-jobs" => jobset::run(
            args.text("base-url")?,
            args.text("key")?,
            args.number("jobs")? as usize,
            args.number("seed")?,
            args.float("speed")?,
            args.0
                .contains_key("pace")
                .then(|| args.float("pace"))
                .transpose()?,
            std::path::Path::new(args.text("out")?),
        ),
        "many-wait" => manywait::run(
            args.text("base-url")?,
            args.text("key")?,
            std::path::Path::new(args.text("jobs-file")?),
            args.text("mode")?,
            std::time::Duration::from_secs(args.number("timeout")?),
        ),
        "batch-run" => batchrun::run(
            args.text("base-url")?,
            args.text("key")?,
            args.text("video-url")?,
            args.number("items")? as usize,
            args.number("in-flight")? as usize,
            std::path::Path::new(args.text("out")?),
        ),
        "batch-resume" => batchrun::resume(
            args.text("base-url")?,
            args.text("key")?,
            args.number("items")? as usize,
            std::path::Path::new(args.text("out")?),
        ),
        "batch-worker" => batchrun::worker(
            args.text("base-url")?,
            args.text("key")?,
            args.text("ledger")?,
            std::path::Path::new(args.text("manifest")?),
            args.text("batch")?,
            args.number("in-flight")? as usize,
            std::path::Path::new(args.text("out")?),
        ),
        "webhook-lag" => webhooklag::run(args.number("jobs")? as usize, args.number("seed")?),
        other => Err(format!("unknown command {other:?}")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("removebgvideo-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
