//! `POST /v1/uploads`: the multipart `file` is streamed to disk, never held in memory.

use std::io::BufReader;
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

/// Reads the duration from an MP4/MOV header, when the file has one.
fn mp4_duration(path: &FsPath) -> Option<f64> {
    let file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let reader = mp4::Mp4Reader::read_header(BufReader::new(file), size).ok()?;
    let seconds = reader.duration().as_secs_f64();
    (seconds > 0.0).then_some(seconds)
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
        let duration_secs = tokio::task::spawn_blocking(move || mp4_duration(&probe))
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
