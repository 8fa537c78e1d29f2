//! `removebgvideo`: the command-line client, sandbox and playground.

mod args;
mod batch;
mod commands;
mod output;
mod playground;
mod run;
mod signals;
mod webhooks;

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use clap::Parser;
use removebgvideo::{CancelToken, Client, Error, ErrorCode, ErrorKind};
use removebgvideo_sandbox::{Sandbox, SandboxConfig};

use crate::args::{Cli, Command, SandboxArgs, Webhooks};
use crate::output::{exit, exit_code, print_error, print_result};
use crate::signals::Signal;

/// The exit status of a panic, as Rust's own runtime gives it.
const PANICKED: u8 = 101;

fn serve_sandbox(args: &SandboxArgs, cancel: &CancelToken) -> Result<(), Error> {
    let mut config = match &args.config {
        Some(path) => SandboxConfig::from_json_file(path).map_err(|e| {
            commands::usage_error("/config", removebgvideo::core::ProblemCode::InvalidType, e)
        })?,
        None => SandboxConfig::default(),
    };
    config.port = args.port;
    if let Some(speed) = args.speed {
        config.speed = commands::speed(speed)?;
    }
    config.log_to_stderr = true;
    let sandbox = Sandbox::start(config).map_err(|e| {
        Error::new(
            "connection_error".into(),
            format!("cannot start the sandbox: {e}"),
        )
    })?;
    // A server must not die because whoever read its banner went away: write errors are
    // ignored here, unlike println!, which panics on a closed pipe.
    let banner = format!(
        "RemoveBGVideo sandbox at {base}\ndemo key: {demo}  (no credits: {poor}, rate limited: {limited})\nwebhook secret: {secret}\n\
         try: REMOVEBGVIDEO_API_KEY={demo} removebgvideo --base-url {base} run --video-url 'https://example.com/a.mp4?duration=5' --output out.webm\n",
        base = sandbox.base_url(),
        demo = sandbox.demo_key(),
        poor = sandbox.no_credits_key(),
        limited = sandbox.rate_limited_key(),
        secret = sandbox.webhook_secret(),
    );
    let mut stdout = std::io::stdout();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|_| stdout.flush());
    while !cancel.sleep(Duration::from_secs(3600)) {}
    sandbox.shutdown();
    Ok(())
}

fn run(cli: &Cli, cancel: &CancelToken, in_use: &OnceLock<Client>) -> Result<u8, Error> {
    let global = &cli.global;
    match &cli.command {
        Command::Sandbox(args) => serve_sandbox(args, cancel).map(|_| exit::OK),
        Command::Playground(args) => {
            let (report, code) = playground::run(global, args, cancel)?;
            let json = serde_json::to_value(&report).expect("JSON");
            let write = |path: &std::path::Path, text: String| {
                std::fs::write(path, text).map_err(|e| {
                    Error::new(
                        "download_failed".into(),
                        format!("cannot write {}: {e}", path.display()),
                    )
                })
            };
            if let Some(path) = &args.report_json {
                write(path, serde_json::to_string_pretty(&json).expect("JSON"))?;
            }
            if let Some(path) = &args.report_md {
                write(path, report.markdown())?;
            }
            print_result(&json, &report.human(), global.json);
            Ok(code)
        }
        Command::Webhooks(Webhooks::Verify {
            secret,
            headers,
            body,
            tolerance,
        }) => commands::verify_webhook(secret, headers, body, *tolerance, global.json)
            .map(|_| exit::OK),
        Command::Webhooks(Webhooks::Listen(args)) => {
            webhooks::listen(args, cancel, global.json).map(|_| exit::OK)
        }
        Command::Batch(batch) => batch::batch(
            batch,
            || {
                let client = commands::client(global, None, None)?;
                Ok(in_use.get_or_init(|| client).clone())
            },
            cancel,
            global.json,
        ),
        command => {
            let client = commands::client(global, None, None)?;
            // The main thread can then close its connections on a second signal.
            let client = in_use.get_or_init(|| client);
            match command {
                Command::Upload {
                    file,
                    idempotency_key,
                } => commands::upload(client, file, idempotency_key.clone(), cancel, global.json),
                Command::Jobs(jobs) => commands::jobs(client, jobs, cancel, global.json),
                Command::Usage(usage) => commands::usage(client, usage, cancel, global.json),
                Command::Run(args) => run::run(client, args, cancel, global.json),
                Command::Sandbox(_)
                | Command::Playground(_)
                | Command::Webhooks(_)
                | Command::Batch(_) => {
                    unreachable!("handled above")
                }
            }
            .map(|_| exit::OK)
        }
    }
}

/// What the main thread hears about: a signal, or the command's end.
enum Message {
    Signal(Signal),
    Finished(Result<u8, Error>),
    Panicked,
}

/// How long the command may still take after a second signal: it was cancelled at the first,
/// and every pause of the client wakes at once; the second closes the client's connections,
/// so a request blocked in the network fails at once too. This bounds whatever is left (a
/// playground's own clients, a file system that hangs).
const SECOND_SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// The exit status of the command's result, told on the main thread.
fn finish(result: Result<u8, Error>, signal: Option<Signal>, json: bool) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_error(&error, json);
            match signal {
                Some(signal) if error.kind() == ErrorKind::Cancelled => {
                    ExitCode::from(signal.exit_status())
                }
                _ => ExitCode::from(exit_code(&error)),
            }
        }
    }
}

/// Runs the command on a worker thread and stays free for signals. The first SIGINT or SIGTERM
/// cancels the command, which ends through its normal path (a download removes its part
/// file) with 130 or 143; a second one waits at most `SECOND_SIGNAL_GRACE` more for that.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.global.verbose {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::new("removebgvideo=info"))
            .init();
    }
    let json = cli.global.json;
    let cancel = CancelToken::new();
    let (tx, rx) = mpsc::channel();
    let to_main = tx.clone();
    if let Err(message) = signals::forward(move |signal| {
        let _ = to_main.send(Message::Signal(signal));
    }) {
        eprintln!("warning: {message}; Ctrl-C will stop the command without cleaning up");
    }
    let worker_cancel = cancel.clone();
    let in_use: Arc<OnceLock<Client>> = Arc::default();
    let worker_client = in_use.clone();
    let worker = std::thread::Builder::new()
        .name("command".into())
        .spawn(move || {
            // A panic is a bug, already printed by the panic hook; the main thread still has
            // to hear that the command ended.
            let message = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&cli, &worker_cancel, &worker_client)
            })) {
                Ok(result) => Message::Finished(result),
                Err(_) => Message::Panicked,
            };
            let _ = tx.send(message);
        });
    if let Err(e) = worker {
        eprintln!("error: cannot start the command's thread: {e}");
        return ExitCode::from(exit::OTHER);
    }
    let mut signal = None;
    let mut give_up_at: Option<Instant> = None;
    loop {
        let message = match give_up_at {
            None => rx.recv().ok(),
            Some(at) => rx
                .recv_timeout(at.saturating_duration_since(Instant::now()))
                .ok(),
        };
        match message {
            Some(Message::Finished(result)) => return finish(result, signal, json),
            Some(Message::Signal(received)) => {
                cancel.cancel();
                // SIGTERM comes once, with SIGKILL a few seconds behind it (Docker,
                // Kubernetes, systemd): it closes the connections at once, as a second Ctrl-C
                // does. A request blocked in the network then fails now, and the command still
                // ends through its normal path (a download removes its part file).
                let hard = received == Signal::Terminate || signal.is_some();
                if signal.is_none() {
                    signal = Some(received);
                    if !hard {
                        eprintln!(
                            "{}: stopping (again to stop waiting for the current request)",
                            received.name()
                        );
                    }
                }
                if hard {
                    if let Some(client) = in_use.get() {
                        client.shutdown();
                    }
                    give_up_at.get_or_insert_with(|| Instant::now() + SECOND_SIGNAL_GRACE);
                }
            }
            // The grace ran out: the command is still blocked in a request that ignores
            // cancellation until its read returns. Leave without it.
            None if give_up_at.is_some() => {
                let first = signal.unwrap_or(Signal::Interrupt);
                let error = Error::new(
                    ErrorCode::Cancelled,
                    format!(
                        "{} twice: stopped without waiting for the current request to end",
                        first.name()
                    ),
                );
                print_error(&error, json);
                return ExitCode::from(first.exit_status());
            }
            Some(Message::Panicked) | None => return ExitCode::from(PANICKED),
        }
    }
}
