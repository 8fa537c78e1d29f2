//! Job outputs: deterministic bytes whose size grows with the video, served with HTTP Range,
//! behind time-bound links.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use removebgvideo_core::{ErrorCode, OutputFormat};

use crate::app::AppState;
use crate::faults::FaultPlan;
use crate::store::Failure;

const CHUNK: u64 = 64 * 1024;

/// The seed of a job's output bytes.
fn seed(job_id: &str) -> u64 {
    job_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Fills `buffer` with the output bytes of `job_id` starting at `offset`. Public so tests can
/// check a download byte for byte without storing the expected file.
pub fn output_bytes(job_id: &str, offset: u64, buffer: &mut [u8]) {
    let seed = seed(job_id);
    for (i, byte) in buffer.iter_mut().enumerate() {
        let x = ((offset + i as u64) ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *byte = (x >> 56) as u8;
    }
}

fn content_type(format: &OutputFormat) -> &'static str {
    match format {
        OutputFormat::Webm => "video/webm",
        OutputFormat::Mov => "video/quicktime",
        OutputFormat::Mp4 => "video/mp4",
        OutputFormat::Gif => "image/gif",
        OutputFormat::Webp => "image/webp",
        OutputFormat::PngSequence => "application/zip",
        OutputFormat::Unknown(_) => "application/octet-stream",
    }
}

/// Reads an HTTP `Range` header value for a file of `size` bytes: `None` when it is not a
/// single `bytes=` range the sandbox understands (the whole file is then sent, as RFC 9110
/// allows for multiple ranges or other units), `Some(Err(()))` when the range cannot be
/// satisfied (answered 416), else `Some(Ok((first, last)))`, both inclusive and within the file.
///
/// Never panics, whatever the value and size (it is fuzzed).
pub fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let last = size.checked_sub(1);
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            // An empty file has no last byte: no suffix of it can be sent.
            let Some(last) = last.filter(|_| n > 0) else {
                return Some(Err(()));
            };
            (size.saturating_sub(n), last)
        }
        (start, "") => (start.parse().ok()?, last.unwrap_or(0)),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(last.unwrap_or(0)),
        ),
    };
    if range.0 >= size || range.0 > range.1 {
        return Some(Err(()));
    }
    Some(Ok(range))
}

pub async fn serve_output(
    State(app): State<AppState>,
    Path((job_id, file)): Path<(String, String)>,
    headers: HeaderMap,
    plan: Option<axum::Extension<FaultPlan>>,
) -> Response {
    let token = file.split('.').next().unwrap_or("");
    let found = app.store().output(&job_id, token, Instant::now());
    let (size, format) = match found {
        None => return Failure::new(404, ErrorCode::NotFound, "No such output").into_response(),
        Some(Err(())) => {
            return Failure::new(
                403,
                ErrorCode::from("output_url_expired"),
                "This output URL has expired: fetch the job again for a fresh one",
            )
            .into_response();
        }
        Some(Ok(found)) => found,
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, size));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size - 1),
        Some(Ok((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Some(Err(())) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return response;
        }
    };
    let length = end - start + 1;
    // A truncating fault sends half, then breaks the connection mid-body.
    let cut_at = plan.filter(|p| p.truncate).map(|_| start + length / 2);
    let stream = futures_util::stream::unfold(start, move |offset| {
        let job_id = job_id.clone();
        async move {
            if offset > end {
                return None;
            }
            if cut_at.is_some_and(|cut| offset >= cut) {
                let broken = std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "sandbox fault: truncated download",
                );
                return Some((Err(broken), end + 1));
            }
            let limit = cut_at.map_or(end + 1, |cut| cut.min(end + 1));
            let n = CHUNK.min(limit - offset);
            let mut buffer = vec![0u8; n as usize];
            output_bytes(&job_id, offset, &mut buffer);
            Some((Ok(Bytes::from(buffer)), offset + n))
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&format)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}-{size}\"", seed(&file))).expect("ascii"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).expect("ascii"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_before() {
        assert_eq!(parse_range("bytes=100-199", 1000), Some(Ok((100, 199))));
        assert_eq!(parse_range("bytes=-10", 1000), Some(Ok((990, 999))));
        assert_eq!(parse_range("bytes=-5000", 1000), Some(Ok((0, 999))));
        assert_eq!(parse_range("bytes=990-", 1000), Some(Ok((990, 999))));
        assert_eq!(parse_range("bytes=900-5000", 1000), Some(Ok((900, 999))));
        assert_eq!(parse_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=5-4", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }

    #[test]
    fn an_empty_file_has_no_satisfiable_range_and_no_panic() {
        for value in ["bytes=-1", "bytes=0-", "bytes=0-0", "bytes=-0", "bytes=5-"] {
            assert_eq!(parse_range(value, 0), Some(Err(())), "{value}");
        }
    }
}
