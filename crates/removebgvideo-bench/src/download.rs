//! One download of a job's output through the client, in a process of its own so its peak
//! memory is the download's.

use std::path::Path;
use std::time::Instant;

use removebgvideo::{Client, DownloadOptions};
use serde_json::{Value, json};

use crate::stats::{peak_rss_mib, round};

pub fn run(base_url: &str, key: &str, job_id: &str, out: &Path) -> Result<Value, String> {
    let client = Client::builder()
        .api_key(key)
        .base_url(base_url)
        .build()
        .map_err(|e| e.to_string())?;
    let options = DownloadOptions {
        overwrite: true,
        ..DownloadOptions::default()
    };
    let started = Instant::now();
    let download = client
        .download(job_id, out, &options)
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let on_disk = std::fs::metadata(out).map_err(|e| e.to_string())?.len();
    if on_disk != download.bytes {
        return Err(format!(
            "{on_disk} bytes on disk, {} reported",
            download.bytes
        ));
    }
    Ok(json!({
        "bytes": download.bytes,
        "seconds": round(seconds, 3),
        "throughput_mib_s": round(download.bytes as f64 / seconds / 1048576.0, 1),
        "peak_rss_mib": peak_rss_mib().map(|m| round(m, 1)),
    }))
}
