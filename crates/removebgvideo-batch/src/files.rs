//! The batch's files: where each output goes, what a finished output weighs (size and
//! SHA-256), the part files a crash left, and `results.jsonl` / `errors.jsonl`.

use std::borrow::Borrow;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use removebgvideo_ledger::{Item, ItemPhase};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The output file of `item`: the manifest's `output` (a relative one inside `out_dir`), or
/// `out_dir/<key>.<extension of the format>`. A key with characters a file name cannot safely
/// hold is spelt with `_` and a hash of the key, so two keys never share a file.
pub fn output_path(out_dir: &Path, item: &Item) -> PathBuf {
    if let Some(target) = &item.input.output_target {
        let target = Path::new(target);
        return if target.is_absolute() {
            target.to_owned()
        } else {
            out_dir.join(target)
        };
    }
    let format = item.input.output_format.as_deref().unwrap_or("webm");
    let extension = match format {
        "png_sequence" => "zip",
        other => other,
    };
    out_dir.join(format!("{}.{extension}", file_stem(&item.key)))
}

fn file_stem(key: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    if safe == key && !key.starts_with('.') {
        return safe;
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", safe.trim_start_matches('.'))
}

/// The size and SHA-256 (hex) of a file.
pub fn digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
        size += read as u64;
    }
    let hex = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

/// Whether the output recorded for `item` is still in place with its recorded size. A resume
/// checks every finished item, so it reads the size, not the bytes: hashing each output of a
/// 10,000-item batch at every resume would hold up the polls for minutes. The SHA-256 is
/// computed when an output is recorded, including one renamed into place before a crash.
pub fn output_intact(item: &Item) -> bool {
    let (Some(path), Some(size)) = (&item.output_path, item.output_size) else {
        return false;
    };
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == size)
}

/// Removes the part files a killed download left beside `target` (`.<name>.<hex>.part`).
pub fn remove_stale_parts(target: &Path) -> io::Result<usize> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Ok(0);
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut removed = 0;
    let entries = match fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".part") {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Where an item ended, as `results.jsonl` and `errors.jsonl` say it.
pub fn outcome(item: &Item) -> &'static str {
    match item.phase {
        ItemPhase::Done => "completed",
        ItemPhase::Failed => "failed",
        ItemPhase::Unknown => "unknown",
        ItemPhase::Error => "error",
        ItemPhase::Created if crate::plan::is_draft(item) => "held",
        _ => "in_progress",
    }
}

/// One line of the results: the item's key, input, job, credits, output and last error.
pub fn result_line(item: &Item) -> Value {
    let error = item.last_error_code.as_ref().map(|code| {
        json!({
            "code": code,
            "message": item.last_error_message,
            "request_id": item.last_error_request_id,
        })
    });
    json!({
        "key": item.key,
        "outcome": outcome(item),
        "phase": item.phase,
        "job_id": item.job_id,
        "job_status": item.job_status,
        "video_url": item.input.video_url,
        "file": item.input.file_path,
        "model": item.input.model.as_deref().unwrap_or("original"),
        "output_format": item.input.output_format.as_deref().unwrap_or("webm"),
        "context": item.context,
        "generation": item.generation,
        "credits_estimated": item.credits_estimated,
        "credits_charged": item.credits_charged,
        "output": item.output_path.as_ref().map(|path| json!({
            "path": path,
            "size": item.output_size,
            "sha256": item.output_sha256,
        })),
        "error": error,
    })
}

/// Writes `results.jsonl` (completed items) and `errors.jsonl` (every other item) in `dir`,
/// one line per item in manifest order. Each file is written beside and renamed into place,
/// so a reader never sees half of one; both are derived from the ledger, so a crash before
/// they are written loses nothing (the next run writes them).
pub fn write_results(dir: &Path, items: &[impl Borrow<Item>]) -> io::Result<(PathBuf, PathBuf)> {
    let results = dir.join("results.jsonl");
    let errors = dir.join("errors.jsonl");
    let (done, other): (Vec<&Item>, Vec<&Item>) = items
        .iter()
        .map(Borrow::borrow)
        .partition(|item| item.phase == ItemPhase::Done);
    write_lines(&results, &done)?;
    write_lines(&errors, &other)?;
    Ok((results, errors))
}

fn write_lines(path: &Path, items: &[&Item]) -> io::Result<()> {
    // A part file of this writer's own: workers of one shared batch may share an out folder
    // (a Dask cluster's tasks, hosts on one network drive), and each writes the whole file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let part = path.with_extension(format!("jsonl.{}-{n}.part", std::process::id()));
    let mut out = BufWriter::new(File::create(&part)?);
    for item in items {
        serde_json::to_writer(&mut out, &result_line(item))?;
        out.write_all(b"\n")?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&part, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_sharing_an_out_folder_never_trip_over_each_others_part_files() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<Item> = Vec::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        write_results(dir.path(), &items).expect("no writer loses its part file");
                    }
                });
            }
        });
        assert!(dir.path().join("results.jsonl").exists());
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn keys_that_are_not_safe_file_names_get_a_hash_and_never_collide() {
        assert_eq!(file_stem("clip-01"), "clip-01");
        let a = file_stem("a/b");
        let b = file_stem("a_b");
        assert_ne!(a, b);
        assert!(a.starts_with("a_b-"));
        assert!(!file_stem("../x").contains('/'));
        assert!(!file_stem(".hidden").starts_with('.'));
    }
}
