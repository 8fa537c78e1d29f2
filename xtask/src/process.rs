//! Running the tools the tasks need: commands, cargo, Python venvs and pip, npm.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

/// Cargo's target directory for this workspace, asked of cargo once per run: it honours
/// `CARGO_TARGET_DIR` and `build.target-dir`, which a fixed `target/` would not (a developer who
/// sets either would find nothing where xtask looks). Every path xtask builds under the target
/// directory starts here.
pub fn target_dir(root: &Path) -> Result<PathBuf, String> {
    static TARGET: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TARGET
        .get_or_init(|| ask_cargo_for_target_dir(root, &[]))
        .clone()
}

/// `cargo metadata`'s `target_directory`, with `env` added to cargo's environment.
pub fn ask_cargo_for_target_dir(root: &Path, env: &[(&str, &str)]) -> Result<PathBuf, String> {
    let mut command = Command::new("cargo");
    command
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let metadata = capture_json(&mut command)?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| format!("cargo metadata named no target_directory: {metadata}"))
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

/// Builds the Python wheel with maturin (installed into `<target>/py-tools` when missing) into
/// `<target>/wheels/<name>`, emptied first; returns the wheel's path.
pub fn build_wheel(root: &Path, name: &str, release: bool) -> Result<PathBuf, String> {
    let target = target_dir(root)?;
    let tools = target.join("py-tools");
    let tools_python = tools.join("bin").join("python");
    if !tools_python.exists() {
        fresh_venv(&tools)?;
    }
    pip_install(&tools_python, &["maturin>=1.16,<2"])?;
    let wheels = target.join("wheels").join(name);
    let _ = std::fs::remove_dir_all(&wheels);
    let mut maturin = Command::new(tools.join("bin").join("maturin"));
    maturin.args(["build", "--quiet", "--out"]).arg(&wheels);
    if release {
        maturin.arg("--release");
    }
    run_command(maturin.current_dir(root.join("bindings/python")))?;
    std::fs::read_dir(&wheels)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| "maturin built no wheel".to_owned())
}

/// Builds the Node addon (and its JS loader) into the package directory with napi-rs's CLI,
/// from the package's locked dev tools.
pub fn build_node_addon(package: &Path, release: bool) -> Result<(), String> {
    let mut args = vec![
        "exec",
        "--",
        "napi",
        "build",
        "--platform",
        "--js",
        "native.js",
        "--dts",
        "native.d.ts",
    ];
    if release {
        args.push("--release");
    }
    npm(package, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_directory_is_the_one_cargo_uses() {
        let root = crate::repo_root();
        let elsewhere = std::env::temp_dir().join("xtask-target-dir-test");
        let elsewhere = elsewhere.to_str().expect("a UTF-8 temp dir");
        assert_eq!(
            ask_cargo_for_target_dir(&root, &[("CARGO_TARGET_DIR", elsewhere)]).unwrap(),
            PathBuf::from(elsewhere)
        );
        // Without an override: the directory this very test binary was built into, however
        // this machine configures it.
        let exe = std::env::current_exe().unwrap();
        let target = target_dir(&root).unwrap();
        assert!(
            exe.starts_with(&target),
            "{} is not under {}",
            exe.display(),
            target.display()
        );
    }
}
