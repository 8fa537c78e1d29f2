//! `cargo xtask ci`: the one test command. Runs every check a change must pass, in order,
//! stops at the first failure, and installs what the checks need (Python tools into venvs
//! under cargo's target directory).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::process::{
    build_node_addon, build_wheel, cargo, fresh_venv, npm, pip_install, run_command, target_dir,
};

type StepFn = fn(&Path) -> Result<(), String>;

const STEPS: &[(&str, StepFn)] = &[
    ("formatting", |root| {
        cargo(root, &["fmt", "--all", "--check"])
    }),
    ("lints", |root| {
        cargo(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
    }),
    ("generated files", |root| {
        cargo(
            root,
            &[
                "run",
                "--quiet",
                "--package",
                "xtask",
                "--",
                "codegen",
                "--check",
            ],
        )
    }),
    ("sans-IO core", |root| {
        cargo(
            root,
            &["run", "--quiet", "--package", "xtask", "--", "sans-io"],
        )
    }),
    (
        "Layout (short client functions, decisions in the core's machines)",
        |root| {
            cargo(
                root,
                &["run", "--quiet", "--package", "xtask", "--", "layout"],
            )
        },
    ),
    // The PostgreSQL ledger's tests start a real server of their own.
    ("PostgreSQL server binaries", |_| postgres_binaries()),
    ("Rust tests", |root| rust_tests(root, "--all-targets")),
    ("Rust doc tests", |root| rust_tests(root, "--doc")),
    // The published contract against tools that are not ours: validators, a linter, and
    // schemathesis's generated requests against a running sandbox.
    (
        "Contract (OpenAPI validators, schemathesis)",
        crate::contract::run,
    ),
    ("Python package", python_package),
    ("Node package", node_package),
    // Tiny counts on the debug builds above: the harness must keep working; speed is not
    // judged here (`cargo xtask bench` is).
    ("Benchmark harness (smoke)", |root| {
        crate::bench::run(root, true, &[])
    }),
];

/// `cargo test` over the workspace, the PostgreSQL ledger included. The Python binding crate
/// is built by maturin, which links it against Python; `cargo test` cannot.
fn rust_tests(root: &Path, targets: &str) -> Result<(), String> {
    cargo(
        root,
        &[
            "test",
            "--workspace",
            "--exclude",
            "removebgvideo-python",
            "--features",
            "removebgvideo-ledger/postgres",
            targets,
        ],
    )
}

/// Installs Debian's `postgresql` package when the server binaries are neither on PATH nor
/// in `/usr/lib/postgresql/*/bin` (where that package puts them).
fn postgres_binaries() -> Result<(), String> {
    if removebgvideo_testpg::available() {
        println!("    found pg_ctl");
        return Ok(());
    }
    let root = removebgvideo_testpg::running_as_root();
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        run_command(command.args(args).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-q"])?;
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "postgresql",
    ])?;
    if removebgvideo_testpg::available() {
        Ok(())
    } else {
        Err("installed postgresql, and still no pg_ctl".into())
    }
}

pub fn run(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    for (name, step) in STEPS {
        let step_started = Instant::now();
        println!("==> {name}");
        step(root).map_err(|e| format!("ci failed at step \"{name}\": {e}"))?;
        println!(
            "<== {name} passed in {:.1} s",
            step_started.elapsed().as_secs_f64()
        );
    }
    println!("ci passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Builds the wheel with maturin, proves it imports in an empty venv (and how fast), then runs
/// the pytest suite in another fresh venv.
fn python_package(root: &Path) -> Result<(), String> {
    let target = target_dir(root)?;
    let wheel = build_wheel(root, "ci", false)?;
    let wheel = wheel.to_str().ok_or("wheel path is not UTF-8")?.to_owned();

    // Nothing but the wheel: the import must work on its own.
    let bare = fresh_venv(&target.join("py-bare"))?;
    pip_install(&bare, &[&wheel])?;
    run_command(Command::new(&bare).args([
        "-c",
        "import time; t = time.perf_counter(); import removebgvideo; \
         print(f'    import removebgvideo {removebgvideo.__version__}: {(time.perf_counter() - t) * 1000:.1f} ms')",
    ]))?;

    let python = fresh_venv(&target.join("py-test"))?;
    // dask[distributed]: the Dask example runs in the suite (on a PostgreSQL server that the
    // tests start with removebgvideo-testpg).
    pip_install(
        &python,
        &[&wheel, "pytest", "mypy", "jsonschema", "dask[distributed]"],
    )?;
    cargo(
        root,
        &["build", "--quiet", "--package", "removebgvideo-testpg"],
    )?;
    run_command(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
            .env(
                "REMOVEBGVIDEO_TESTPG",
                target.join("debug").join("removebgvideo-testpg"),
            )
            .current_dir(root.join("bindings/python")),
    )
}

/// Installs the locked dev tools, builds the addon, runs `node --test`, then packs the package,
/// installs the tarball into an empty folder and runs the README example there.
fn node_package(root: &Path) -> Result<(), String> {
    let package = root.join("bindings/node");
    npm(
        &package,
        &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
    )?;
    build_node_addon(&package, false)?;
    cargo(
        root,
        &["build", "--quiet", "--package", "removebgvideo-testpg"],
    )?;
    let target = target_dir(root)?;
    run_command(
        Command::new("node")
            .args(["--test", "test/"])
            .env(
                "REMOVEBGVIDEO_TESTPG",
                target.join("debug").join("removebgvideo-testpg"),
            )
            .current_dir(&package),
    )?;

    let packs = target.join("npm");
    let smoke = target.join("npm-smoke");
    let _ = std::fs::remove_dir_all(&packs);
    let _ = std::fs::remove_dir_all(&smoke);
    std::fs::create_dir_all(&packs).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&smoke).map_err(|e| e.to_string())?;
    npm(
        &package,
        &[
            "pack",
            "--silent",
            "--pack-destination",
            packs.to_str().ok_or("path")?,
        ],
    )?;
    let tarball = std::fs::read_dir(&packs)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or("npm pack wrote no tarball")?;
    std::fs::write(
        smoke.join("package.json"),
        "{\"name\": \"smoke\", \"private\": true}\n",
    )
    .map_err(|e| e.to_string())?;
    npm(
        &smoke,
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            tarball.to_str().ok_or("path")?,
        ],
    )?;
    std::fs::copy(
        package.join("examples/quickstart.ts"),
        smoke.join("quickstart.ts"),
    )
    .map_err(|e| e.to_string())?;
    let tsc = package.join("node_modules/typescript/bin/tsc");
    run_command(
        Command::new("node")
            .arg(&tsc)
            .args([
                "--strict",
                "--target",
                "es2022",
                "--module",
                "commonjs",
                "--moduleResolution",
                "node",
                "--skipLibCheck",
                "--types",
                "node",
                "--typeRoots",
            ])
            .arg(package.join("node_modules/@types"))
            .arg("quickstart.ts")
            .current_dir(&smoke),
    )?;
    run_command(
        Command::new("node")
            .arg("quickstart.js")
            .current_dir(&smoke),
    )
}
