//! Everything a run needs, built and installed by the run itself: the sandbox and bench
//! binaries, the wheel in a venv with the Python contenders, the Node addon, undici.

use std::path::{Path, PathBuf};

use crate::process::{
    build_node_addon, build_wheel, cargo, fresh_venv, npm, pip_install, target_dir,
};

pub struct Tools {
    pub sandbox: PathBuf,
    pub bench: PathBuf,
    pub python: PathBuf,
    /// The `removebgvideo` npm package directory (addon built in it).
    pub node_sdk: PathBuf,
    /// The compiler profile measured: `release`, or `debug` for the smoke run.
    pub profile: &'static str,
}

impl Tools {
    pub fn prepare(root: &Path, release: bool) -> Result<Tools, String> {
        let profile = if release { "release" } else { "debug" };
        let mut build = vec![
            "build",
            "--package",
            "removebgvideo-sandbox",
            "--package",
            "removebgvideo-bench",
        ];
        if release {
            build.push("--release");
        }
        cargo(root, &build)?;
        let binaries = target_dir(root)?.join(profile);

        let python = python_with_wheel(root, release)?;
        let node_sdk = node_addon(root, release)?;
        let bench_node = root.join("bench/node");
        if !bench_node.join("node_modules").exists() {
            npm(
                &bench_node,
                &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
            )?;
        }
        Ok(Tools {
            sandbox: binaries.join("removebgvideo-sandbox"),
            bench: binaries.join("removebgvideo-bench"),
            python,
            node_sdk,
            profile,
        })
    }
}

/// The bench venv (kept between runs) with the pinned contenders and a freshly built wheel.
fn python_with_wheel(root: &Path, release: bool) -> Result<PathBuf, String> {
    let target = target_dir(root)?;
    let wheel = build_wheel(root, "bench", release)?;

    let venv = target.join("py-bench");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        fresh_venv(&venv)?;
    }
    let requirements = root.join("bench/python/requirements.txt");
    pip_install(
        &python,
        &["-r", requirements.to_str().ok_or("path is not UTF-8")?],
    )?;
    pip_install(
        &python,
        &[
            "--force-reinstall",
            "--no-deps",
            wheel.to_str().ok_or("path is not UTF-8")?,
        ],
    )?;
    Ok(python)
}

/// Builds the addon into the package directory, which the scripts load with `--sdk`.
fn node_addon(root: &Path, release: bool) -> Result<PathBuf, String> {
    let package = root.join("bindings/node");
    if !package.join("node_modules").exists() {
        npm(
            &package,
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        )?;
    }
    build_node_addon(&package, release)?;
    Ok(package)
}
