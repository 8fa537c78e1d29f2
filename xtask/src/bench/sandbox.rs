//! The sandbox binary as a separate process, so its CPU time is not charged to the clients
//! measured against it; killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

pub struct SandboxProcess {
    child: Child,
    // Kept open for the process's life, so nothing it prints later meets a closed pipe.
    _stdout: BufReader<ChildStdout>,
    pub base_url: String,
    pub demo_key: String,
    pub rate_limited_key: String,
}

/// The sandbox's request counters (`GET /sandbox/stats`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Requests answered, the stats requests before this one included.
    pub requests: u64,
    /// Those answered 429.
    pub rate_limited: u64,
}

impl Stats {
    /// The counters of a `/sandbox/stats` body.
    pub fn parse(body: &str) -> Result<Stats, String> {
        let stats: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("stats: {e}: {body}"))?;
        let count = |name: &str| {
            stats[name]
                .as_u64()
                .ok_or_else(|| format!("stats without a {name} count: {body}"))
        };
        Ok(Stats {
            requests: count("requests")?,
            rate_limited: count("rate_limited")?,
        })
    }

    /// What a client sent between `before` and `self` (both read by the harness), the one
    /// stats request in between (`before`'s own) not counted.
    pub fn since(self, before: Stats) -> Stats {
        Stats {
            requests: self.requests.saturating_sub(before.requests + 1),
            rate_limited: self.rate_limited.saturating_sub(before.rate_limited),
        }
    }
}

impl SandboxProcess {
    /// Starts `removebgvideo-sandbox --quiet` on a port the OS picks, its clock `speed`
    /// times faster than real time.
    pub fn start(binary: &Path, speed: f64) -> Result<SandboxProcess, String> {
        SandboxProcess::start_with(binary, speed, None)
    }

    /// The same, with a `--config` file (its speed overridden by `speed`).
    pub fn start_with(
        binary: &Path,
        speed: f64,
        config: Option<&Path>,
    ) -> Result<SandboxProcess, String> {
        let mut command = Command::new(binary);
        command.args(["--port", "0", "--quiet", "--speed", &speed.to_string()]);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        // The guard exists before anything can fail, so a bad start never leaves the process.
        let mut sandbox = SandboxProcess {
            child,
            _stdout: stdout,
            base_url: String::new(),
            demo_key: String::new(),
            rate_limited_key: String::new(),
        };
        let mut line = |what: &str| {
            let mut text = String::new();
            match sandbox._stdout.read_line(&mut text) {
                Ok(n) if n > 0 => Ok(text),
                _ => Err(format!("the sandbox printed no {what}")),
            }
        };
        // "RemoveBGVideo sandbox at URL", then "demo key: KEY  (no credits: K, rate limited: K)".
        let address = line("address")?;
        let key = line("demo key")?;
        sandbox.base_url = address
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        sandbox.demo_key = key.split_whitespace().nth(2).unwrap_or_default().to_owned();
        sandbox.rate_limited_key = key
            .split("rate limited: ")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .trim_end_matches(')')
            .to_owned();
        if !sandbox.base_url.starts_with("http://127.0.0.1:")
            || sandbox.demo_key.is_empty()
            || sandbox.rate_limited_key.is_empty()
        {
            return Err("the sandbox's first lines are not its address and key".into());
        }
        Ok(sandbox)
    }

    /// `--base-url URL --key KEY`: how every contender is pointed at this sandbox.
    pub fn client_args(&self) -> [&str; 4] {
        ["--base-url", &self.base_url, "--key", &self.demo_key]
    }

    /// The body of `GET path` (the sandbox answers it whole, with a length).
    pub fn get(&self, path: &str) -> Result<String, String> {
        let address = self.base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .map_err(|e| e.to_string())?;
        let (head, body) = reply.split_once("\r\n\r\n").ok_or("no HTTP body")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!(
                "GET {path}: {}",
                head.lines().next().unwrap_or(head)
            ));
        }
        Ok(body.to_owned())
    }

    /// Requests the sandbox has answered so far (`GET /sandbox/stats`, not counting itself).
    pub fn requests_answered(&self) -> Result<u64, String> {
        Ok(self.stats()?.requests)
    }

    /// The sandbox's counters now (this request not counted).
    pub fn stats(&self) -> Result<Stats, String> {
        Stats::parse(&self.get("/sandbox/stats")?)
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_between_two_reads_leave_out_the_first_read() {
        let before = Stats::parse(r#"{"rate_limited":3,"requests":10}"#).unwrap();
        let after = Stats::parse(r#"{"rate_limited":5,"requests":21}"#).unwrap();
        assert_eq!(
            after.since(before),
            Stats {
                requests: 10,
                rate_limited: 2
            }
        );
        assert!(
            Stats::parse(r#"{"requests":1}"#)
                .unwrap_err()
                .contains("rate_limited")
        );
    }
}
