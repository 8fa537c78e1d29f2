//! Keeps `removebgvideo-core` sans-IO: no I/O crate among its dependencies, and no clock,
//! socket, file, thread or environment call in its source.

use std::path::Path;
use std::process::Command;

/// Crates that do network or async I/O; none may be a normal dependency of the core.
const IO_CRATES: &[&str] = &[
    "ureq",
    "reqwest",
    "hyper",
    "tokio",
    "async-std",
    "mio",
    "socket2",
    "axum",
    "tower",
    "rustls",
    "native-tls",
    "curl",
];

/// Calls that read the world; the core takes their results as inputs instead.
const IO_CALLS: &[&str] = &[
    "std::net",
    "TcpStream",
    "UdpSocket",
    "Instant::now",
    "SystemTime::now",
    "std::fs",
    "File::open",
    "std::env",
    "env::var",
    "std::thread",
    "thread::spawn",
    "std::process",
];

pub fn check(root: &Path) -> Result<(), String> {
    let output = Command::new("cargo")
        .args([
            "tree",
            "--package",
            "removebgvideo-core",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let mut problems: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| IO_CRATES.contains(name))
        .map(|name| format!("removebgvideo-core depends on the I/O crate {name}"))
        .collect();

    let src = root.join("crates/removebgvideo-core/src");
    // Every file, the machines' folder included.
    for path in crate::layout::rust_files(&src)? {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for call in IO_CALLS.iter().filter(|call| code.contains(*call)) {
                problems.push(format!(
                    "{}:{}: {call} does I/O; take it as an input",
                    path.display(),
                    number + 1
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        println!("removebgvideo-core is sans-IO");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
