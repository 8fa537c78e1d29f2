//! `removebgvideo-testpg`: a PostgreSQL server for tests in other languages (the Python and
//! Node suites). Prints `{"url": "postgresql://..."}` on one line once the server accepts
//! connections, and stops it when its standard input closes (the test ended, or died).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let server = match removebgvideo_testpg::TestPostgres::start() {
        Ok(server) => server,
        Err(error) => {
            eprintln!("removebgvideo-testpg: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let line = format!("{{\"url\": \"{}\"}}\n", server.url());
    if stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Blocks until the parent closes the pipe; what it writes is ignored.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    drop(server);
    ExitCode::SUCCESS
}
