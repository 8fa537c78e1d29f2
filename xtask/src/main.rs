//! Project tasks, run as `cargo xtask <task>`: `codegen [--check]`, `sans-io`, `layout`,
//! `contract`, `ci`, `bench [--smoke]`.

mod bench;
mod ci;
mod codegen;
mod contract;
mod layout;
mod node_types;
mod params;
mod process;
mod python_models;
mod python_params;
mod sans_io;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  codegen           write the generated files (schema/, OpenAPI, the packages' types)
  codegen --check   fail if a committed generated file is stale
  sans-io           fail if removebgvideo-core gains an I/O dependency or call
  layout            fail if a client function passes 80 lines or takes a protocol decision
                    the core's machines should
  contract          OpenAPI validators and linter, and schemathesis against a sandbox
  ci                the one test command: formatting, lints, codegen --check, sans-io, every test
  bench             benchmarks next to the alternatives: bench/results, docs/benchmarks.md
  bench --smoke     the same with tiny counts on debug builds, into <target dir>/bench-smoke
  bench [--smoke] --only STEP[,STEP]
                    only those steps (percall, coldstart, polling, batch, download, many);
                    the others keep their last results";

/// `[--smoke] [--only STEP,...]` of `bench`.
fn bench_flags(flags: &[&str]) -> Result<(bool, Vec<String>), String> {
    let mut smoke = false;
    let mut only = Vec::new();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match *flag {
            "--smoke" => smoke = true,
            "--only" => {
                let steps = flags.next().ok_or("--only needs a step name")?;
                only.extend(
                    steps
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
                if only.is_empty() {
                    return Err("--only needs a step name".into());
                }
            }
            other => return Err(format!("bench: unknown flag {other:?}\n{USAGE}")),
        }
    }
    Ok((smoke, only))
}

/// The repository root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the repository")
        .to_path_buf()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["codegen"] => codegen::write(&repo_root()),
        ["codegen", "--check"] => {
            let problems = codegen::check(&repo_root());
            if problems.is_empty() {
                println!("generated files are up to date");
                Ok(())
            } else {
                Err(format!(
                    "{}\n\ngenerated files are stale: run `{}` and commit the result",
                    problems.join("\n"),
                    codegen::REGENERATE
                ))
            }
        }
        ["ci"] => ci::run(&repo_root()),
        ["contract"] => contract::run(&repo_root()),
        ["bench", flags @ ..] => {
            bench_flags(flags).and_then(|(smoke, only)| bench::run(&repo_root(), smoke, &only))
        }
        ["sans-io"] => sans_io::check(&repo_root()),
        ["layout"] => layout::check(&repo_root()),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_flags_take_smoke_and_a_list_of_steps() {
        assert_eq!(bench_flags(&[]).unwrap(), (false, vec![]));
        assert_eq!(
            bench_flags(&["--smoke", "--only", "many,batch"]).unwrap(),
            (true, vec!["many".to_owned(), "batch".to_owned()])
        );
        assert!(bench_flags(&["--only"]).is_err());
        assert!(bench_flags(&["--only", ","]).is_err());
        assert!(bench_flags(&["--fast"]).unwrap_err().contains("--fast"));
    }
}
