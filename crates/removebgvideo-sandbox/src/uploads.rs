//! `POST /v1/uploads`: the multipart `file` is streamed to disk, never held in memory.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path as FsPath, PathBuf};

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use removebgvideo_core::requests::{UPLOAD_MIME_TYPES, guess_video_mime};
use removebgvideo_core::{ErrorCode, Problem, ProblemCode, UploadResult};
use tokio::io::AsyncWriteExt;

use crate::app::{ApiKeyOf, AppState};
use crate::store::{Failure, Upload};

fn problem(status: u16, path: &str, code: ProblemCode, message: String) -> Failure {
    let mut failure = Failure::new(status, ErrorCode::InvalidRequest, message.clone());
    failure.problems.push(Problem::error(path, code, message));
    failure
}

/// The duration in seconds of an MP4/MOV file read from `reader` (`size` bytes long), from
/// the `mvhd` box of its `moov` box; `None` when it has no `ftyp` and `moov` at the top level,
/// no readable `mvhd`, or no positive duration.
///
/// Never panics and never loops, whatever the bytes (it runs on every upload and is fuzzed):
/// every step moves forward by at least one box header. (The `mp4` crate it replaces divided
/// by a zero timescale, overflowed on a large duration and never returned on some 152-byte
/// inputs, each a way for one upload to crash or spin a thread forever.)
pub fn mp4_duration<R: Read + Seek>(mut reader: R, size: u64) -> Option<f64> {
    let mut seen_ftyp = false;
    let mut duration = None;
    let mut position = 0;
    while let Some((kind, body, end)) = next_box(&mut reader, position, size) {
        match &kind {
            b"ftyp" => seen_ftyp = true,
            b"moov" if duration.is_none() => duration = Some(moov_duration(&mut reader, body, end)),
            _ => {}
        }
        position = end;
    }
    let seconds = duration.flatten().filter(|_| seen_ftyp)?;
    (seconds.is_finite() && seconds > 0.0).then_some(seconds)
}

/// The box at `position` in a region ending at `limit`: its type, where its body starts and
/// where it ends. `None` at the end or when the header is unreadable or inconsistent.
fn next_box<R: Read + Seek>(
    reader: &mut R,
    position: u64,
    limit: u64,
) -> Option<([u8; 4], u64, u64)> {
    if limit.checked_sub(position)? < 8 {
        return None;
    }
    reader.seek(SeekFrom::Start(position)).ok()?;
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).ok()?;
    let declared = u64::from(u32::from_be_bytes([
        header[0], header[1], header[2], header[3],
    ]));
    let kind = [header[4], header[5], header[6], header[7]];
    let (length, header_length) = match declared {
        // Extends to the end of its region.
        0 => (limit - position, 8),
        // A 64-bit size follows the type.
        1 => {
            let mut large = [0u8; 8];
            reader.read_exact(&mut large).ok()?;
            (u64::from_be_bytes(large), 16)
        }
        n => (n, 8),
    };
    let end = position.checked_add(length)?;
    if length < header_length || end > limit {
        return None;
    }
    Some((kind, position + header_length, end))
}

/// The duration of the first `mvhd` among the children of a `moov` box.
fn moov_duration<R: Read + Seek>(reader: &mut R, mut position: u64, end: u64) -> Option<f64> {
    while let Some((kind, body, next)) = next_box(reader, position, end) {
        if &kind == b"mvhd" {
            return mvhd_duration(reader, body, next);
        }
        position = next;
    }
    None
}

/// Duration / timescale from an `mvhd` body (version 0: 32-bit times; version 1: 64-bit).
fn mvhd_duration<R: Read + Seek>(reader: &mut R, body: u64, end: u64) -> Option<f64> {
    let mut fields = [0u8; 32];
    let available = usize::try_from(end - body).ok()?.min(fields.len());
    reader.seek(SeekFrom::Start(body)).ok()?;
    reader.read_exact(&mut fields[..available]).ok()?;
    let at = |offset: usize, width: usize| -> Option<u64> {
        let bytes = fields
            .get(offset..offset + width)
            .filter(|_| offset + width <= available)?;
        Some(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    };
    let (timescale, duration) = match fields[0] {
        0 if available >= 20 => (at(12, 4)?, at(16, 4)?),
        1 if available >= 32 => (at(20, 4)?, at(24, 8)?),
        _ => return None,
    };
    (timescale > 0).then(|| duration as f64 / timescale as f64)
}

/// The duration of a stored upload, when it is an MP4/MOV file with one.
fn mp4_file_duration(path: &FsPath) -> Option<f64> {
    let file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    mp4_duration(BufReader::new(file), size)
}

/// A file name safe to store and to put in a URL path.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "video".into()
    } else {
        cleaned
    }
}

/// Streams the `file` field to `path`, enforcing the size limit as bytes arrive.
async fn store(
    field: &mut axum::extract::multipart::Field<'_>,
    path: &FsPath,
    limit: u64,
) -> Result<u64, Failure> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| {
        Failure::new(
            500,
            ErrorCode::InternalError,
            format!("cannot store the upload: {e}"),
        )
    })?;
    let mut written: u64 = 0;
    loop {
        let chunk = field.chunk().await.map_err(|e| {
            Failure::new(
                400,
                ErrorCode::InvalidRequest,
                format!("The upload broke off: {e}"),
            )
        })?;
        let Some(chunk) = chunk else { break };
        written += chunk.len() as u64;
        if written > limit {
            return Err(problem(
                413,
                "/size",
                ProblemCode::FileTooLarge,
                format!("The file is larger than {limit} bytes"),
            ));
        }
        file.write_all(&chunk).await.map_err(|e| {
            Failure::new(
                500,
                ErrorCode::InternalError,
                format!("cannot store the upload: {e}"),
            )
        })?;
    }
    file.flush()
        .await
        .map_err(|e| Failure::new(500, ErrorCode::InternalError, e.to_string()))?;
    Ok(written)
}

fn malformed(error: impl std::fmt::Display) -> Failure {
    Failure::new(
        400,
        ErrorCode::InvalidRequest,
        format!("The multipart body is malformed: {error}"),
    )
}

async fn rest_is_well_formed(multipart: &mut Multipart) -> Result<(), Failure> {
    while multipart.next_field().await.map_err(malformed)?.is_some() {}
    Ok(())
}

pub async fn upload(
    State(app): State<AppState>,
    Extension(ApiKeyOf(key)): Extension<ApiKeyOf>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<UploadResult>, Failure> {
    let mut multipart = multipart.map_err(|e| {
        problem(
            400,
            "/file",
            ProblemCode::Required,
            format!("The body must be multipart/form-data with a field named file ({e})"),
        )
    })?;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = safe_name(field.file_name().unwrap_or("video"));
        let content_type = field
            .content_type()
            .map(str::to_owned)
            .filter(|t| t != "application/octet-stream")
            .or_else(|| guess_video_mime(&filename).map(str::to_owned))
            .unwrap_or_default();
        if !UPLOAD_MIME_TYPES.contains(&content_type.as_str()) {
            return Err(problem(
                415,
                "/content_type",
                ProblemCode::UnsupportedMediaType,
                format!(
                    "The file type {content_type:?} is not accepted: use {}",
                    UPLOAD_MIME_TYPES.join(", ")
                ),
            ));
        }
        let folder = app
            .upload_dir
            .path()
            .join(format!("{:016x}", fastrand::u64(..)));
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(|e| Failure::new(500, ErrorCode::InternalError, e.to_string()))?;
        let path = folder.join(&filename);
        let size = match store(&mut field, &path, app.config.max_upload_bytes).await {
            Ok(size) => size,
            Err(failure) => {
                // Nothing half-written stays behind.
                let _ = tokio::fs::remove_dir_all(&folder).await;
                return Err(failure);
            }
        };
        if size == 0 {
            let _ = tokio::fs::remove_dir_all(&folder).await;
            return Err(problem(
                400,
                "/size",
                ProblemCode::EmptyFile,
                "The file is empty".into(),
            ));
        }
        // The rest of the form must be well formed too, so that a body is refused or accepted
        // whatever the order of its parts (the fields after `file` are read, not kept). The
        // parser reads on only once this field is gone.
        drop(field);
        if let Err(failure) = rest_is_well_formed(&mut multipart).await {
            let _ = tokio::fs::remove_dir_all(&folder).await;
            return Err(failure);
        }
        let probe = path.clone();
        let duration_secs = tokio::task::spawn_blocking(move || mp4_file_duration(&probe))
            .await
            .ok()
            .flatten();
        let upload = Upload {
            key,
            path,
            filename: filename.clone(),
            content_type,
            duration_secs,
        };
        let video_id = app.store().add_upload(upload);
        return Ok(Json(UploadResult {
            success: true,
            video_url: app.url(&format!("/sandbox/uploads/{video_id}/{filename}")),
            video_id,
            filename,
            size,
        }));
    }
    Err(problem(
        400,
        "/file",
        ProblemCode::Required,
        "The multipart body has no field named file".into(),
    ))
}

pub async fn serve_upload(
    State(app): State<AppState>,
    Path((video_id, filename)): Path<(String, String)>,
) -> Response {
    let found: Option<(PathBuf, String)> = app
        .store()
        .upload(&video_id)
        .filter(|u| u.filename == filename)
        .map(|u| (u.path.clone(), u.content_type.clone()));
    let Some((path, content_type)) = found else {
        return Failure::new(404, ErrorCode::NotFound, "No such upload").into_response();
    };
    match tokio::fs::File::open(&path).await {
        Ok(file) => {
            let length = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONTENT_LENGTH, length.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Err(_) => Failure::new(404, ErrorCode::NotFound, "No such upload").into_response(),
    }
}

/// The smallest MP4 header the sandbox reads as `duration / timescale` seconds (`ftyp`, then
/// `moov` with a version 1 `mvhd`): for tests of uploads, whose processing time follows the
/// video's duration.
pub fn minimal_mp4(timescale: u32, duration: u64) -> Vec<u8> {
    let mut ftyp = Vec::new();
    ftyp.extend(24u32.to_be_bytes());
    ftyp.extend(b"ftypisom");
    ftyp.extend(0x200u32.to_be_bytes());
    ftyp.extend(b"isommp41");
    let mut mvhd = Vec::new();
    mvhd.extend(120u32.to_be_bytes());
    mvhd.extend(b"mvhd");
    mvhd.extend([1u8, 0, 0, 0]); // version 1, flags
    mvhd.extend([0u8; 16]); // creation, modification
    mvhd.extend(timescale.to_be_bytes());
    mvhd.extend(duration.to_be_bytes());
    mvhd.extend(0x0001_0000u32.to_be_bytes()); // rate 1.0
    mvhd.extend(0x0100u16.to_be_bytes()); // volume 1.0
    mvhd.extend([0u8; 10]);
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        mvhd.extend(value.to_be_bytes()); // the identity matrix
    }
    mvhd.extend([0u8; 24]);
    mvhd.extend(2u32.to_be_bytes()); // next track id
    let mut moov = Vec::new();
    moov.extend((8 + mvhd.len() as u32).to_be_bytes());
    moov.extend(b"moov");
    moov.extend(mvhd);
    [ftyp, moov].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_mp4(timescale: u32, duration: u64) -> Vec<u8> {
        minimal_mp4(timescale, duration)
    }

    fn duration_of(bytes: &[u8]) -> Option<f64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        std::fs::write(&path, bytes).unwrap();
        mp4_file_duration(&path)
    }

    #[test]
    fn the_duration_comes_from_the_mvhd_box() {
        assert_eq!(duration_of(&tiny_mp4(1000, 12_500)), Some(12.5));
        assert_eq!(duration_of(&tiny_mp4(1000, 0)), None);
        assert_eq!(duration_of(b"not an mp4"), None);
    }

    #[test]
    fn a_zero_timescale_or_a_huge_duration_is_no_duration_not_a_panic() {
        assert_eq!(duration_of(&tiny_mp4(0, 12_500)), None);
        // duration * 1000 overflows u64 inside the mp4 crate.
        let huge = duration_of(&tiny_mp4(1, u64::MAX)).expect("a duration");
        assert!((huge - u64::MAX as f64).abs() < 1e6, "{huge}");
    }

    /// An input on which `mp4` 0.14's header reader never returned.
    const HANG: &str = "000000186674797069736f6d0000020069736f6d6d703431000000806d6f6f76000000536d766864\
        01000000002d0000000000000000000000000000000003e800000000000030d40001000001000000\
        0000000000000000000100000000000000000000000000dd00010000000000000000000000000000\
        40000000000000000000000000000000000000000000000000000000000000e6";

    #[test]
    fn malformed_headers_end_promptly_without_a_duration() {
        let hang = hex::decode(HANG.replace(char::is_whitespace, "")).unwrap();
        let started = std::time::Instant::now();
        let _ = mp4_duration(std::io::Cursor::new(&hang), hang.len() as u64);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Every truncation and every single-byte change of a valid header, at both widths.
        for seed in [tiny_mp4(1000, 12_500), tiny_mp4_v0(1000, 12_500)] {
            for cut in 0..seed.len() {
                let bytes = &seed[..cut];
                let _ = mp4_duration(std::io::Cursor::new(bytes), bytes.len() as u64);
            }
            for i in 0..seed.len() {
                for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bytes = seed.clone();
                    bytes[i] = value;
                    let _ = mp4_duration(std::io::Cursor::new(&bytes), bytes.len() as u64);
                }
            }
            // A size larger than the data: nothing read past the end.
            assert_eq!(
                mp4_duration(std::io::Cursor::new(&seed), seed.len() as u64 + 1000),
                Some(12.5)
            );
        }
    }

    #[test]
    fn both_mvhd_versions_large_sizes_and_boxes_to_the_end_are_read() {
        assert_eq!(duration_of(&tiny_mp4_v0(1000, 12_500)), Some(12.5));
        assert_eq!(duration_of(&tiny_mp4_v0(600, 1_800)), Some(3.0));
        // No ftyp: not an MP4 file, as before.
        let no_ftyp = tiny_mp4(1000, 12_500)[24..].to_vec();
        assert_eq!(duration_of(&no_ftyp), None);
        // moov with a 64-bit size, then an mdat whose size 0 means "to the end".
        let v1 = tiny_mp4(1000, 2_000);
        let (ftyp, moov) = v1.split_at(24);
        let mut large = ftyp.to_vec();
        large.extend(1u32.to_be_bytes());
        large.extend(b"moov");
        large.extend((moov.len() as u64 + 8).to_be_bytes());
        large.extend(&moov[8..]);
        large.extend(0u32.to_be_bytes());
        large.extend(b"mdat");
        large.extend([0u8; 100]);
        assert_eq!(duration_of(&large), Some(2.0));
    }

    /// The same header with a version 0 mvhd (32-bit times).
    fn tiny_mp4_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut ftyp = Vec::new();
        ftyp.extend(24u32.to_be_bytes());
        ftyp.extend(b"ftypisom");
        ftyp.extend(0x200u32.to_be_bytes());
        ftyp.extend(b"isommp41");
        let mut mvhd = Vec::new();
        mvhd.extend(108u32.to_be_bytes());
        mvhd.extend(b"mvhd");
        mvhd.extend([0u8; 4]);
        mvhd.extend([0u8; 8]);
        mvhd.extend(timescale.to_be_bytes());
        mvhd.extend(duration.to_be_bytes());
        mvhd.extend([0u8; 80]);
        let mut moov = Vec::new();
        moov.extend((8 + mvhd.len() as u32).to_be_bytes());
        moov.extend(b"moov");
        moov.extend(mvhd);
        [ftyp, moov].concat()
    }
}
