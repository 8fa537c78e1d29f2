//! Running the tools the tasks need: commands, cargo, Python venvs and pip, npm.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn run_command(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

pub fn cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    println!("    cargo {}", args.join(" "));
    // Snapshots are reviewed by people; CI only compares.
    run_command(
        Command::new("cargo")
            .args(args)
            .current_dir(root)
            .env("INSTA_UPDATE", "no"),
    )
}

/// A fresh virtual environment (removed first) and its python.
pub fn fresh_venv(path: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(path);
    run_command(Command::new("python3").args(["-m", "venv"]).arg(path))?;
    Ok(path.join("bin").join("python"))
}

pub fn pip_install(python: &Path, args: &[&str]) -> Result<(), String> {
    run_command(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args),
    )
}

pub fn npm(dir: &Path, args: &[&str]) -> Result<(), String> {
    println!("    npm {}", args.join(" "));
    run_command(Command::new("npm").args(args).current_dir(dir))
}

/// Runs a command that prints one JSON object on stdout (its stderr passes through), and
/// parses it.
pub fn capture_json(command: &mut Command) -> Result<serde_json::Value, String> {
    let shown = format!("{command:?}");
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{shown} failed ({})", output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{shown} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
