//! `cargo xtask ci`: the one test command. Runs every check a change must pass, in order,
//! and stops at the first failure.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One step: a name and the command line it runs from the repository root.
struct Step {
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        name: "formatting",
        program: "cargo",
        args: &["fmt", "--all", "--check"],
    },
    Step {
        name: "lints",
        program: "cargo",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "generated files",
        program: "cargo",
        args: &[
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "codegen",
            "--check",
        ],
    },
    Step {
        name: "sans-IO core",
        program: "cargo",
        args: &["run", "--quiet", "--package", "xtask", "--", "sans-io"],
    },
    Step {
        name: "Rust tests",
        program: "cargo",
        args: &["test", "--workspace", "--all-targets"],
    },
    Step {
        name: "Rust doc tests",
        program: "cargo",
        args: &["test", "--workspace", "--doc"],
    },
];

pub fn run(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    for step in STEPS {
        let step_started = Instant::now();
        println!(
            "==> {}: {} {}",
            step.name,
            step.program,
            step.args.join(" ")
        );
        let status = Command::new(step.program)
            .args(step.args)
            .current_dir(root)
            // Snapshots are reviewed by people; CI only compares.
            .env("INSTA_UPDATE", "no")
            .status()
            .map_err(|e| format!("{}: could not run {}: {e}", step.name, step.program))?;
        if !status.success() {
            return Err(format!("ci failed at step \"{}\" ({status})", step.name));
        }
        println!(
            "<== {} passed in {:.1} s",
            step.name,
            step_started.elapsed().as_secs_f64()
        );
    }
    println!("ci passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
