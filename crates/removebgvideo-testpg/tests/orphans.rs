//! A test process killed with SIGKILL leaves its server running; the next server a test starts
//! stops it and removes its folder.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use removebgvideo_testpg::TestPostgres;

/// The folders whose owner file names `pid`.
fn folders_of(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            std::fs::read_to_string(path.join("owner"))
                .is_ok_and(|owner| owner.split_whitespace().next() == Some(&pid.to_string()))
        })
        .collect()
}

#[test]
fn the_server_of_a_killed_test_is_stopped_and_its_folder_removed_by_the_next_start() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_removebgvideo-testpg"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .rsplit_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("a URL with a port: {line}"));
    let pid = child.id();
    assert_eq!(folders_of(pid).len(), 1, "its folder names it");
    child.kill().unwrap(); // SIGKILL: nothing is dropped.
    child.wait().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the orphan server runs on"
    );

    let _next = TestPostgres::start().unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the orphan server still listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(folders_of(pid).is_empty(), "and its folder is gone");
}
