//! A real PostgreSQL server for tests: `initdb` into a temp folder, `postgres` on a free
//! loopback port, trust authentication for one database user, and `pg_ctl stop` (fast, then
//! immediate) when the handle drops. The server binaries (`initdb`, `pg_ctl`) are taken from
//! PATH, or else from the newest `/usr/lib/postgresql/*/bin`, where Debian's `postgresql`
//! package puts them; `.ci/run` installs that package when neither has them.
//!
//! `initdb` refuses to run as root, so as root the cluster is made and run by the `postgres`
//! user (`runuser`), in a folder it owns.
//!
//! A test process killed with SIGKILL drops nothing, so its server would run on for ever:
//! each folder names the process that made it (`owner`: its pid and start time), and every
//! `start` first stops the servers, and removes the folders, of owners that are gone.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The temp folders' name prefix.
const FOLDER_PREFIX: &str = "removebgvideo-pg-";

/// The file in a folder that names its owner.
const OWNER_FILE: &str = "owner";

/// A running server (see the crate doc).
#[derive(Debug)]
pub struct TestPostgres {
    folder: tempfile::TempDir,
    port: u16,
    /// Run the binaries as this user (`None`: as ourselves).
    run_as: Option<&'static str>,
}

impl TestPostgres {
    /// Makes a cluster and starts it. Errors say which step failed and what it printed.
    pub fn start() -> Result<TestPostgres, String> {
        let run_as = if running_as_root() {
            Some("postgres")
        } else {
            None
        };
        sweep_orphans();
        let folder = tempfile::Builder::new()
            .prefix(FOLDER_PREFIX)
            .tempdir()
            .map_err(|e| format!("temp folder: {e}"))?;
        let owner = process_identity(std::process::id())
            .ok_or("this process's start time is not readable from /proc")?;
        std::fs::write(folder.path().join(OWNER_FILE), owner)
            .map_err(|e| format!("temp folder: {e}"))?;
        if let Some(user) = run_as {
            // The folder is the cluster's: its user must own it.
            run(Command::new("chown").arg(user).arg(folder.path()))?;
        }
        let server = TestPostgres {
            port: free_port()?,
            folder,
            run_as,
        };
        server.tool(&[
            "initdb",
            "--auth=trust",
            "--username=removebgvideo",
            "--encoding=UTF8",
            "--no-sync",
            "-D",
            server.data().to_str().ok_or("temp path is not UTF-8")?,
        ])?;
        server.launch()?;
        Ok(server)
    }

    /// A connection URL for the `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// A connection URL for `database` (made with `CREATE DATABASE`).
    pub fn url_of(&self, database: &str) -> String {
        format!(
            "postgresql://removebgvideo@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn kill(&self) -> Result<(), String> {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]).map(drop)
    }

    /// Stops the server cleanly (`-m fast`).
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]).map(drop)
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&self) -> Result<(), String> {
        let _ = self.stop();
        self.launch()
    }

    fn launch(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' -c fsync=off \
             -c max_connections=200",
            self.port,
            self.folder.path().display()
        );
        let log = self.folder.path().join("server.log");
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            &START_TIMEOUT.as_secs().to_string(),
            "-o",
            &options,
            "-l",
            log.to_str().ok_or("temp path is not UTF-8")?,
        ])
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })?;
        // `pg_ctl -w` waits for the socket; a TCP connect proves the port too.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if started.elapsed() > START_TIMEOUT {
                return Err(format!("PostgreSQL is not listening on {}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.folder.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<Output, String> {
        let data = self.data();
        let data = data.to_str().ok_or("temp path is not UTF-8")?;
        let mut all = vec!["pg_ctl", "-D", data];
        all.extend_from_slice(args);
        self.tool(&all)
    }

    /// Runs a server tool, as the cluster's user.
    fn tool(&self, args: &[&str]) -> Result<Output, String> {
        run_tool(self.run_as, self.folder.path(), args)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self
            .pg_ctl(&["stop", "-m", "fast", "-w", "-t", "20"])
            .is_err()
        {
            let _ = self.kill();
        }
    }
}

/// Runs a server tool in `folder`, as `run_as` if given.
fn run_tool(run_as: Option<&str>, folder: &Path, args: &[&str]) -> Result<Output, String> {
    let program = server_binary(args[0]);
    let mut command = match run_as {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(&program);
            command
        }
        None => Command::new(&program),
    };
    command.args(&args[1..]);
    run(command.current_dir(folder))
}

/// Whether a folder's cluster has a server running (or left its pid file behind).
fn data_has_server(folder: &Path) -> bool {
    folder.join("data").join("postmaster.pid").is_file()
}

/// A process as `pid start-time` (its start time in clock ticks since boot, from
/// `/proc/<pid>/stat`): a pid the kernel gave to another process since does not match.
fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count after its end.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let start_time = after_name.split_whitespace().nth(19)?;
    Some(format!("{pid} {start_time}"))
}

/// Stops the servers of folders whose owner is gone, and removes the folders. A folder
/// without an owner file (being made, or made before owners were written) is left alone.
fn sweep_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let folder = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(FOLDER_PREFIX));
        let Ok(owner) = std::fs::read_to_string(folder.join(OWNER_FILE)) else {
            continue;
        };
        let alive = owner
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .and_then(process_identity)
            .is_some_and(|now| now == owner.trim());
        if !is_ours || alive {
            continue;
        }
        let run_as = running_as_root().then_some("postgres");
        let data = folder.join("data");
        if let Some(data) = data.to_str()
            && data_has_server(&folder)
        {
            let stop = |mode: &str| {
                let args = ["pg_ctl", "-D", data, "stop", "-m", mode, "-w", "-t", "20"];
                run_tool(run_as, &folder, &args)
            };
            if stop("fast").is_err() {
                let _ = stop("immediate");
            }
        }
        let _ = std::fs::remove_dir_all(&folder);
    }
}

/// Where a server binary is: on PATH, or else in the newest `/usr/lib/postgresql/*/bin`.
fn server_binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| {
            let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    Some((version, entry.path().join("bin").join(name)))
                })
                .filter(|(_, binary)| binary.is_file())
                .collect();
            versions.sort();
            versions.pop().map(|(_, binary)| binary)
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Whether the server binaries can be found.
pub fn available() -> bool {
    Command::new(server_binary("pg_ctl"))
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn run(command: &mut Command) -> Result<Output, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e} (are the PostgreSQL server binaries on PATH?)"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| format!("free port: {e}"))
}

/// Whether this process runs as root (then the cluster is run by the `postgres` user, and
/// a package is installed without sudo).
pub fn running_as_root() -> bool {
    // The effective uid from /proc: no libc call needed (and `unsafe` is forbidden here).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
