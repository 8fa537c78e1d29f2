//! `removebgvideo-sandbox [--port N] [--speed X] [--config FILE] [--quiet]`: serves the
//! sandbox until SIGINT or SIGTERM, then stops and removes its uploads folder (exit 0);
//! every request is logged on stderr unless `--quiet`. (The CLI's `removebgvideo sandbox` will take over this job.)

use std::io::Write;
use std::process::ExitCode;

use removebgvideo_sandbox::{Sandbox, SandboxConfig};

const USAGE: &str = "usage: removebgvideo-sandbox [--port N] [--speed X] [--config FILE] [--quiet]";

fn parse_args() -> Result<SandboxConfig, String> {
    let mut args = std::env::args().skip(1);
    let mut config = SandboxConfig::default();
    let mut port = None;
    let mut speed = None;
    let mut quiet = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--port" => {
                port = Some(
                    value("--port")?
                        .parse::<u16>()
                        .map_err(|e| format!("--port: {e}"))?,
                )
            }
            "--speed" => {
                speed = Some(
                    value("--speed")?
                        .parse::<f64>()
                        .map_err(|e| format!("--speed: {e}"))?,
                )
            }
            "--config" => {
                config = SandboxConfig::from_json_file(std::path::Path::new(&value("--config")?))?
            }
            "--quiet" => quiet = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    config.port = port.unwrap_or(config.port);
    config.speed = speed.unwrap_or(config.speed);
    config.log_to_stderr = !quiet;
    // The same check as Sandbox::start, made here so a bad flag is a usage error (exit 2).
    config.check().map_err(|error| error.message)?;
    Ok(config)
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), listened for from before the address is printed,
/// so whoever started the sandbox can stop it as soon as it has read the address.
struct StopSignals {
    runtime: tokio::runtime::Runtime,
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        #[cfg(unix)]
        let signals = {
            use tokio::signal::unix::{SignalKind, signal};
            let _entered = runtime.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(StopSignals {
            runtime,
            #[cfg(unix)]
            signals,
        })
    }

    /// Blocks until one arrives; its name.
    fn wait(self) -> std::io::Result<&'static str> {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = self.signals;
            Ok(self.runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                }
            }))
        }
        #[cfg(not(unix))]
        {
            self.runtime.block_on(tokio::signal::ctrl_c())?;
            Ok("Ctrl-C")
        }
    }
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let signals = match StopSignals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("cannot listen for stop signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    let sandbox = match Sandbox::start(config) {
        Ok(sandbox) => sandbox,
        Err(error) => {
            eprintln!("cannot start the sandbox: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Whoever started us may stop reading after the address: a closed stdout must not stop
    // the server (println! would panic on it).
    let mut out = std::io::stdout();
    let _ = writeln!(out, "RemoveBGVideo sandbox at {}", sandbox.base_url());
    let _ = writeln!(
        out,
        "demo key: {}  (no credits: {}, rate limited: {})",
        sandbox.demo_key(),
        sandbox.no_credits_key(),
        sandbox.rate_limited_key()
    );
    let _ = writeln!(out, "webhook secret: {}", sandbox.webhook_secret());
    let _ = writeln!(out, "uploads folder: {}", sandbox.upload_dir().display());
    let _ = out.flush();
    let stopped = signals.wait();
    // Stops the server and removes the uploads folder, however the wait ended.
    sandbox.shutdown();
    match stopped {
        Ok(signal) => {
            let _ = writeln!(out, "stopped by {signal}; uploads removed");
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot wait for stop signals: {error}");
            ExitCode::FAILURE
        }
    }
}
