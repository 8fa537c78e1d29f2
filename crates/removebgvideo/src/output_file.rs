//! The part file of a download: created beside the target, cut where a resume says, synced
//! early and at the end, and put in place atomically without ever replacing a file the
//! caller did not ask to replace.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use removebgvideo_core::{Error, ErrorCode};

use crate::writeback::Writeback;

/// The most of the target's name a part file's name repeats: with the dot, the random suffix
/// and `.part` it stays within the 255 bytes file systems allow, however long the target's.
const PART_NAME_STEM: usize = 200;

fn failed(message: String) -> Error {
    Error::new(ErrorCode::DownloadFailed, message)
}

/// Where a download goes: the target, and its part file once the first byte is due.
pub(crate) struct OutputFile {
    target: PathBuf,
    overwrite: bool,
    part: Option<(PartFile, Writeback)>,
    /// Bytes in the part file.
    written: u64,
}

impl OutputFile {
    /// A download to `target`; refused at once if it exists and `overwrite` is off, so no
    /// request is made for an output that could not be placed.
    pub(crate) fn new(target: &Path, overwrite: bool) -> Result<OutputFile, Error> {
        if target.exists() && !overwrite {
            return Err(exists(target));
        }
        Ok(OutputFile {
            target: target.to_owned(),
            overwrite,
            part: None,
            written: 0,
        })
    }

    /// Makes the part file, if it is not there yet: before the first request for the output,
    /// so that a folder that cannot be written fails before any byte is fetched, and a
    /// download under way always has its part file (which a cancel removes).
    pub(crate) fn open(&mut self) -> Result<(), Error> {
        if self.part.is_none() {
            let part = PartFile::beside(&self.target)?;
            let writeback = Writeback::new(&part.file);
            self.part = Some((part, writeback));
        }
        Ok(())
    }

    /// Cuts the part file to `offset`, where the next byte goes.
    pub(crate) fn cut(&mut self, offset: u64) -> Result<(), Error> {
        self.open()?;
        let Some((part, _)) = &mut self.part else {
            return Err(failed("the part file could not be made".into()));
        };
        part.cut(offset)?;
        self.written = offset;
        Ok(())
    }

    /// Appends bytes where the last cut or append ended.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let Some((part, writeback)) = &mut self.part else {
            return Err(failed(
                "bytes of the output came before its part file was made".into(),
            ));
        };
        part.file
            .write_all(bytes)
            .map_err(|e| failed(format!("cannot write {}: {e}", part.path.display())))?;
        self.written += bytes.len() as u64;
        writeback.wrote(self.written);
        Ok(())
    }

    /// Makes the part file durable and puts it at the target.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        let (mut part, mut writeback) = match self.part.take() {
            Some(part) => part,
            // An empty output: nothing was ever written, but the file must exist.
            None => {
                let part = PartFile::beside(&self.target)?;
                let writeback = Writeback::new(&part.file);
                (part, writeback)
            }
        };
        writeback.finish();
        part.file
            .flush()
            .and_then(|_| part.file.sync_all())
            .map_err(|e| failed(format!("cannot write {}: {e}", part.path.display())))?;
        place(&mut part, &self.target, self.overwrite, |from, to| {
            std::fs::hard_link(from, to)
        })
    }
}

fn exists(target: &Path) -> Error {
    failed(format!(
        "{} exists; set overwrite to replace it",
        target.display()
    ))
}

/// The temporary file; removed unless it was renamed into place.
struct PartFile {
    path: PathBuf,
    file: File,
    kept: bool,
}

impl PartFile {
    /// A new hidden file beside `target`, named after it.
    fn beside(target: &Path) -> Result<PartFile, Error> {
        let directory = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let path = directory.join(format!(
            ".{}.{:08x}.part",
            stem(&name, PART_NAME_STEM),
            fastrand::u32(..)
        ));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(PartFile {
            path,
            file,
            kept: false,
        })
    }

    /// Cuts the file to `offset`, where the next byte goes.
    fn cut(&mut self, offset: u64) -> Result<(), Error> {
        self.file
            .set_len(offset)
            .and_then(|_| self.file.seek(SeekFrom::Start(offset)).map(|_| ()))
            .map_err(|e| failed(format!("cannot write {}: {e}", self.path.display())))
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// At most `max` bytes of `name`, cut at a character boundary.
fn stem(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Puts the finished part file at `target`. Without `overwrite`, a hard link places it only
/// if the target does not exist at that moment (another download or program may have made
/// one meanwhile). File systems without hard links (FAT, exFAT, some FUSE mounts) get the
/// same guarantee from an exclusively created placeholder that the rename then replaces.
fn place(
    part: &mut PartFile,
    target: &Path,
    overwrite: bool,
    link: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<(), Error> {
    let exists = || {
        failed(format!(
            "{} exists; set overwrite to replace it",
            target.display()
        ))
    };
    let cannot = |e: std::io::Error| {
        failed(format!(
            "cannot move the output to {}: {e}",
            target.display()
        ))
    };
    if !overwrite {
        match link(&part.path, target) {
            // The part file is removed by its guard.
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e) => {
                tracing::debug!(target: "removebgvideo", "no hard link at {} ({e}); placing with a placeholder", target.display());
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(target)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => exists(),
                        _ => cannot(e),
                    })?;
            }
        }
    }
    if let Err(e) = std::fs::rename(&part.path, target) {
        // Never leave the empty placeholder behind: it would read as a finished output, and
        // every later download would refuse to replace it.
        if !overwrite {
            let _ = std::fs::remove_file(target);
        }
        return Err(cannot(e));
    }
    part.kept = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part_in(dir: &Path, content: &[u8]) -> PartFile {
        let mut part = PartFile::beside(&dir.join("out.webm")).unwrap();
        part.file.write_all(content).unwrap();
        part
    }

    #[test]
    fn a_file_system_without_hard_links_still_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.webm");
        let no_links = |_: &Path, _: &Path| -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
        };
        let mut part = part_in(dir.path(), b"video");
        place(&mut part, &target, false, no_links).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"video");
        drop(part);

        let mut part = part_in(dir.path(), b"other");
        let error = place(&mut part, &target, false, no_links).unwrap_err();
        assert!(error.message.contains("exists"), "{error}");
        drop(part);
        assert_eq!(std::fs::read(&target).unwrap(), b"video", "untouched");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no part file left");
    }

    #[test]
    fn a_failed_placement_leaves_no_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.webm");
        let mut part = part_in(dir.path(), b"video");
        // The part file vanishes before the rename (another program, a flaky mount).
        std::fs::remove_file(&part.path).unwrap();
        let no_links = |_: &Path, _: &Path| -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
        };
        assert!(place(&mut part, &target, false, no_links).is_err());
        assert!(!target.exists(), "no empty file at the target");
    }

    #[test]
    fn a_long_target_name_gets_a_part_file_within_the_name_limit() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a".repeat(250), "é".repeat(125)] {
            let part = PartFile::beside(&dir.path().join(&name)).unwrap();
            let part_name = part.path.file_name().unwrap().len();
            assert!(part_name <= 255, "{part_name} bytes");
        }
    }
}
