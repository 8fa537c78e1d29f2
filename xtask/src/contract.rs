//! `cargo xtask contract`: the published OpenAPI checked by tools that are not ours.
//!
//! 1. openapi-spec-validator (PyPI) and Redocly CLI's `lint` with its recommended rules as
//!    errors (npm) on the committed schema/openapi.json, and on the document a running
//!    sandbox serves.
//! 2. schemathesis (PyPI) against a sandbox started on an OS-chosen port: every check, every
//!    phase (the stateful one follows the document's links), a fixed seed and a bounded number
//!    of examples. Then start_job alone against a fresh sandbox with no jobs, where a valid body
//!    must be answered 404 (see schema/tools/schemathesis*.toml for why).
//!
//! The tools are pinned in schema/tools (requirements.txt, package-lock.json) and installed
//! into cargo's target directory and schema/tools/node_modules. `cargo xtask ci` runs this as
//! one step; it runs alone as `cargo xtask contract`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::sandbox::SandboxProcess;
use crate::process::{cargo, fresh_venv, npm, pip_install, run_command, target_dir};

/// The seed of every schemathesis run, so a failure can be replayed as it happened.
const SEED: &str = "20261201";
/// Examples per operation in the main run: all nine operations, the three phases, in about
/// 20 s on two cores.
const MAIN_EXAMPLES: &str = "100";
/// Examples for start_job alone, whose body has the most rules: a few seconds.
const START_JOB_EXAMPLES: &str = "300";
/// The sandbox's clock speed: jobs complete within the run, so links reach every state.
const SANDBOX_SPEED: f64 = 1000.0;

pub fn run(root: &Path) -> Result<(), String> {
    let tools_dir = root.join("schema/tools");
    let work = target_dir(root)?.join("contract");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let python = python_tools(root, &tools_dir)?;
    let bin = python.parent().ok_or("venv without bin")?.to_path_buf();
    npm(
        &tools_dir,
        &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
    )?;

    println!("    validators on the committed schema/openapi.json");
    let committed = root.join("schema/openapi.json");
    validate(&bin, &tools_dir, &committed)?;

    cargo(
        root,
        &[
            "build",
            "--quiet",
            "--package",
            "removebgvideo-sandbox",
            "--bin",
            "removebgvideo-sandbox",
        ],
    )?;
    let binary = target_dir(root)?.join("debug").join(format!(
        "removebgvideo-sandbox{}",
        std::env::consts::EXE_SUFFIX
    ));

    let sandbox = SandboxProcess::start(&binary, SANDBOX_SPEED)?;
    let served = work.join("served-openapi.json");
    std::fs::write(&served, sandbox.get("/openapi.json")?)
        .map_err(|e| format!("{}: {e}", served.display()))?;
    println!(
        "    validators on the document the sandbox serves ({})",
        served.display()
    );
    validate(&bin, &tools_dir, &served)?;

    println!("    schemathesis: every operation, check and phase");
    schemathesis(
        &bin,
        &tools_dir,
        &work,
        &sandbox,
        "schemathesis.toml",
        &["--max-examples", MAIN_EXAMPLES],
    )?;
    drop(sandbox);

    println!("    schemathesis: start_job alone, no job exists");
    let fresh = SandboxProcess::start(&binary, SANDBOX_SPEED)?;
    schemathesis(
        &bin,
        &tools_dir,
        &work,
        &fresh,
        "schemathesis-start-job.toml",
        &[
            "--include-operation-id",
            "start_job",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            START_JOB_EXAMPLES,
        ],
    )
}

/// The venv with the pinned Python tools (kept between runs; pip makes it match the pins).
fn python_tools(root: &Path, tools_dir: &Path) -> Result<PathBuf, String> {
    let venv = target_dir(root)?.join("contract-tools");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        fresh_venv(&venv)?;
    }
    let requirements = tools_dir.join("requirements.txt");
    pip_install(
        &python,
        &["-r", requirements.to_str().ok_or("path is not UTF-8")?],
    )?;
    Ok(python)
}

/// openapi-spec-validator, then Redocly's lint with every recommended rule an error.
fn validate(bin: &Path, tools_dir: &Path, document: &Path) -> Result<(), String> {
    run_command(Command::new(bin.join("openapi-spec-validator")).arg(document))?;
    run_command(
        Command::new("node")
            .arg(tools_dir.join("node_modules/@redocly/cli/bin/cli.js"))
            .args(["lint", "--config"])
            .arg(tools_dir.join("redocly.yaml"))
            .arg(document)
            // Nothing leaves this machine, and no notice is wanted in CI's log.
            .env("REDOCLY_TELEMETRY", "off")
            .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true"),
    )
}

fn schemathesis(
    bin: &Path,
    tools_dir: &Path,
    work: &Path,
    sandbox: &SandboxProcess,
    config: &str,
    extra: &[&str],
) -> Result<(), String> {
    let key = format!("X-Api-Key: {}", sandbox.demo_key);
    run_command(
        Command::new(bin.join("st"))
            .arg("--config-file")
            .arg(tools_dir.join(config))
            .args(["run", &format!("{}/openapi.json", sandbox.base_url)])
            .args(["--header", &key, "--checks", "all", "--seed", SEED])
            .args(["--generation-database", "none", "--no-color"])
            .args(extra)
            // Its caches (.hypothesis, .schemathesis) go to the target directory.
            .current_dir(work)
            .env("SCHEMA_TOOLS", tools_dir),
    )
}
