//! `removebgvideo`: the command-line client, sandbox and playground.

mod args;
mod commands;
mod output;
mod playground;
mod run;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use removebgvideo::{CancelToken, Error};
use removebgvideo_sandbox::{Sandbox, SandboxConfig};

use crate::args::{Cli, Command, SandboxArgs, Webhooks};
use crate::output::{exit, exit_code, print_error, print_result};

/// Ctrl-C cancels the running call (a download removes its part file); a second one exits.
fn cancel_on_interrupt() -> CancelToken {
    let cancel = CancelToken::new();
    let handle = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if handle.is_cancelled() {
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
        handle.cancel();
    });
    cancel
}

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

fn run(cli: &Cli, cancel: &CancelToken) -> Result<u8, Error> {
    let global = &cli.global;
    match &cli.command {
        Command::Sandbox(args) => serve_sandbox(args, cancel).map(|_| exit::OK),
        Command::Playground(args) => {
            let (report, code) = playground::run(global, args)?;
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
        command => {
            let client = commands::client(global, None, None)?;
            match command {
                Command::Upload {
                    file,
                    idempotency_key,
                } => commands::upload(&client, file, idempotency_key.clone(), cancel, global.json),
                Command::Jobs(jobs) => commands::jobs(&client, jobs, cancel, global.json),
                Command::Usage(usage) => commands::usage(&client, usage, cancel, global.json),
                Command::Run(args) => run::run(&client, args, cancel, global.json),
                Command::Sandbox(_) | Command::Playground(_) | Command::Webhooks(_) => {
                    unreachable!("handled above")
                }
            }
            .map(|_| exit::OK)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.global.verbose {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::new("removebgvideo=info"))
            .init();
    }
    let cancel = cancel_on_interrupt();
    match run(&cli, &cancel) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_error(&error, cli.global.json);
            ExitCode::from(exit_code(&error))
        }
    }
}
