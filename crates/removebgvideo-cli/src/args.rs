//! The command line: every subcommand and option, with `--help` on each.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The end of `--help`: what a script can rely on.
const EXIT_STATUSES: &str = "\
Exit statuses: 0 success, 1 other (local files, webhook verification), 2 usage or validation
error, 3 API error, 4 job failed, 5 timeout, 6 playground checks failed, 130 interrupted
(Ctrl-C, SIGINT), 143 terminated (SIGTERM).

Ctrl-C or SIGTERM cancels the running command: it stops through its normal path (a download
removes its part file; nothing is left at the target path) and exits 130 or 143. A second one
waits at most 2 s more for the current request, then exits all the same.";

/// Background removal for videos, from the command line: every endpoint of the RemoveBGVideo
/// API, the whole flow in one command, a local sandbox, and the API Playground checklist.
#[derive(Debug, Parser)]
#[command(
    name = "removebgvideo",
    version,
    propagate_version = true,
    after_help = EXIT_STATUSES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// API key (default: the REMOVEBGVIDEO_API_KEY environment variable).
    #[arg(
        long,
        env = "REMOVEBGVIDEO_API_KEY",
        hide_env_values = true,
        global = true
    )]
    pub api_key: Option<String>,
    /// API base URL (default https://api.removebgvideo.com; http only for loopback hosts).
    #[arg(long, global = true)]
    pub base_url: Option<String>,
    /// Print machine-readable JSON on stdout (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// Retries of each request (default 2).
    #[arg(long, global = true)]
    pub max_retries: Option<u32>,
    /// An extra header for every request, as "Name: value" (for example a sandbox fault).
    #[arg(long = "header", global = true, value_name = "NAME: VALUE")]
    pub extra_headers: Vec<String>,
    /// Log requests and retries on stderr.
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a video file (mp4, mov, webm or avi, at most 500 MB).
    Upload {
        /// The file.
        file: PathBuf,
        /// Idempotency-Key (a new UUID when absent).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Create, start, read, list, wait for and download jobs.
    #[command(subcommand)]
    Jobs(Jobs),
    /// Credit usage.
    #[command(subcommand)]
    Usage(Usage),
    /// The whole flow: upload or URL, create, wait, download, with progress bars.
    Run(RunArgs),
    /// Webhook tools.
    #[command(subcommand)]
    Webhooks(Webhooks),
    /// Serve the local sandbox until interrupted.
    Sandbox(SandboxArgs),
    /// Run the API Playground checklist and the recommended scenarios; write the SLA baseline.
    Playground(PlaygroundArgs),
    /// Many videos from a manifest, every transition in a ledger; run again to resume.
    #[command(subcommand)]
    Batch(Batch),
}

#[derive(Debug, Subcommand)]
pub enum Batch {
    /// Run (or resume) a manifest: CSV or JSONL, one video per row. Exit 0 when every item
    /// completed, 4 when some did not (see errors.jsonl), 2 for a bad manifest (nothing sent).
    Run(BatchRunArgs),
    /// How many items are in each phase, and the credits.
    Status(LedgerArgs),
    /// The audit trail: every event of every item.
    Export {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The SLA baseline per model (count, p50/p95 processing time, credits per video minute,
    /// failure codes) and the ledger's credits against the API's usage; written as
    /// OUT/report.md and OUT/report.html (with an SVG chart), the Markdown printed.
    Report {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// Write the Markdown here instead of OUT/report.md.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write the HTML page here instead of OUT/report.html.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Do not ask the API for its usage (no key needed).
        #[arg(long)]
        no_usage: bool,
    },
}

/// Which ledger and batch.
#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// The out folder of the run (its ledger is OUT/ledger.sqlite).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// The ledger file, instead of OUT/ledger.sqlite; or a postgres:// URL, one ledger that
    /// workers on many hosts share (each runs the items it claims).
    #[arg(long, value_name = "FILE|URL")]
    pub ledger: Option<PathBuf>,
    /// The batch, when the ledger holds several.
    #[arg(long)]
    pub batch: Option<String>,
}

#[derive(Debug, Args)]
pub struct BatchRunArgs {
    /// The manifest: .csv or .jsonl. Columns: key, video_url or file, model, output_format,
    /// background, text_prompt, metadata (a JSON object), output.
    pub manifest: PathBuf,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Items with work under way at most (halved while the server answers 429).
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Credits the batch may commit: jobs are made as drafts and started only while their
    /// estimate fits.
    #[arg(long)]
    pub budget_credits: Option<f64>,
    /// Start a failed job again, up to N times.
    #[arg(long, default_value_t = 0)]
    pub restart_failed: u32,
    /// Create the items parked as `unknown` again (a second job may result).
    #[arg(long)]
    pub recreate_unknown: bool,
    /// Sync every ledger commit to disk (survives power loss; slower).
    #[arg(long)]
    pub durability_full: bool,
    /// Give up waiting for a job after this many seconds (the item stays resumable).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// A shared (postgres://) ledger: seconds a claim on an item lasts unless renewed; a dead
    /// worker's items go to the others this long after its last heartbeat.
    #[arg(long, value_name = "SECONDS")]
    pub lease: Option<f64>,
    /// Requests per second the API key may be sent at most; with a shared (postgres://)
    /// ledger, the key's ceiling, split between every worker that uses the key.
    #[arg(long, value_name = "RATE")]
    pub max_requests_per_second: Option<f64>,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// The public URL the API delivers to (a tunnel or gateway forwarding to the receiver);
    /// starts the receiver too.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
}

/// Waits that end on webhook deliveries (polling only as a fallback).
#[derive(Debug, Clone, Default, Args)]
pub struct WebhookArgs {
    /// Start a local webhook receiver: jobs send their events to it (or to --webhook-url, a
    /// tunnel forwarding to it), and waits end on them.
    #[arg(long)]
    pub webhooks: bool,
    /// The signing secret of the API key's webhooks.
    #[arg(long, env = "REMOVEBGVIDEO_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// The receiver's port on 127.0.0.1 (0 lets the OS choose).
    #[arg(long, default_value_t = 0)]
    pub webhook_port: u16,
}

/// The processing options of a job.
#[derive(Debug, Clone, Default, Args)]
pub struct JobSettings {
    /// original, light, pro or human.
    #[arg(long)]
    pub model: Option<String>,
    /// webm, mov, mp4, gif, webp or png_sequence.
    #[arg(long)]
    pub output_format: Option<String>,
    /// transparent, green, white, black, blue, #rrggbb or image:URL.
    #[arg(long)]
    pub background: Option<String>,
    /// What to keep, in words (pro model).
    #[arg(long)]
    pub text_prompt: Option<String>,
    /// URL that receives job.started, job.completed and job.failed.
    #[arg(long)]
    pub webhook_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Jobs {
    /// Create a job from a video URL (started at once unless --no-start).
    Create {
        /// The video URL (for example an upload's video_url).
        #[arg(long)]
        video_url: String,
        #[command(flatten)]
        settings: JobSettings,
        /// Your own data, as a JSON object.
        #[arg(long)]
        metadata: Option<String>,
        /// Create a draft that waits for `jobs start`.
        #[arg(long)]
        no_start: bool,
        /// Idempotency-Key (a new UUID when absent).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Start a draft job, or restart a failed one.
    Start {
        /// The job id.
        id: String,
        #[command(flatten)]
        settings: JobSettings,
        /// Process only this many seconds, as a preview.
        #[arg(long)]
        preview_duration: Option<f64>,
        /// Idempotency-Key (a new UUID when absent).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Read a job.
    Get {
        /// The job id.
        id: String,
    },
    /// List jobs, newest first.
    List {
        /// Page size, 1 to 100.
        #[arg(long)]
        limit: Option<u32>,
        /// Jobs to skip.
        #[arg(long)]
        offset: Option<u32>,
        /// Only jobs in this status.
        #[arg(long)]
        status: Option<String>,
    },
    /// Wait until a job completes or fails.
    Wait {
        /// The job id.
        id: String,
        /// Give up after this many seconds: above 0, at most 31536000 (default 1800).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Download a completed job's output.
    Download {
        /// The job id.
        id: String,
        /// Where to write it.
        path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Usage {
    /// Totals over the last days.
    Summary {
        /// 1 to 90 (default 30).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Recent usage events.
    Events {
        /// 1 to 100 (default 20).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Args)]
#[group(id = "source", required = true, multiple = false, args = ["video_url", "file"])]
pub struct RunArgs {
    /// A video URL the API can fetch.
    #[arg(long)]
    pub video_url: Option<String>,
    /// A local video file, uploaded first.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Where to write the output (no download when absent).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub settings: JobSettings,
    /// Give up after this many seconds for the whole flow: above 0, at most 31536000 (default
    /// 1800).
    #[arg(long)]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

#[derive(Debug, Subcommand)]
pub enum Webhooks {
    /// Verify a captured webhook delivery (signature and timestamp).
    Verify {
        /// The signing secret.
        #[arg(long)]
        secret: String,
        /// The delivery's headers: a JSON object, or "Name: value" lines.
        #[arg(long)]
        headers: PathBuf,
        /// The raw body, byte for byte.
        #[arg(long)]
        body: PathBuf,
        /// Accepted distance between the signing time and now, in seconds.
        #[arg(long, default_value_t = 300)]
        tolerance: u64,
    },
    /// Receive deliveries: print every verified event as a line (JSON with --json), refuse
    /// forged and stale ones (400), and forward each one re-signed. Runs until interrupted.
    Listen(ListenArgs),
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Port on the host (0 lets the OS choose).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// The signing secret.
    #[arg(long, env = "REMOVEBGVIDEO_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Forward every verified delivery here, re-signed with the secret (a new timestamp).
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// Accepted distance between the signing time and now, in seconds.
    #[arg(long, default_value_t = 300)]
    pub tolerance: u64,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 lets the OS choose).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// How many times faster than real time jobs progress: above 0, at most 1000000.
    #[arg(long)]
    pub speed: Option<f64>,
    /// A JSON configuration file (keys, limits, faults); see the README.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlaygroundArgs {
    /// Models to run, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "original,light,pro,human"
    )]
    pub models: Vec<String>,
    /// Runs per model.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Input videos (repeatable; required against a real server). Runs cycle through them.
    #[arg(long = "video-url")]
    pub video_urls: Vec<String>,
    /// The text prompt of the pro scenario.
    #[arg(long, default_value = "person, clothing accessories")]
    pub text_prompt: String,
    /// Skip the rate-limit burst (recommended against a paid server).
    #[arg(long)]
    pub skip_rate_limit: bool,
    /// A key of the same server with no credits left, for the insufficient-credits check
    /// against a real server (the embedded sandbox has its own). Without it that check is
    /// skipped there; it is skipped too if the key reports credits left.
    #[arg(long, env = "REMOVEBGVIDEO_NO_CREDITS_KEY", hide_env_values = true)]
    pub no_credits_key: Option<String>,
    /// Clock speed of the embedded sandbox: above 0, at most 1000000.
    #[arg(long, default_value_t = 100.0)]
    pub speed: f64,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Write the report as Markdown here.
    #[arg(long)]
    pub report_md: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Catches clashing ids and bad attributes before a user does.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
