//! The resume decision against a simulated output server that omits headers, answers ranges it
//! was not asked for, cuts bodies short and changes the object between requests. What the
//! server says is true when it says it (a Content-Range names the bytes it sends, an ETag the
//! version they come from); what it leaves out, the client must not assume. Then the part file
//! is always a prefix of the version just written, and a finished file is a whole version.

use arbitrary::Unstructured;
use removebgvideo_core::Headers;
use removebgvideo_core::download::{Answer, BodyEnd, Resume};

fn version(seed: u8, length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(97))
                ^ seed
        })
        .collect()
}

fn etag(index: usize) -> String {
    format!("\"v{index}\"")
}

/// One answer: status, headers, the body bytes sent and whether the body ended as framed.
struct Reply {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
    clean: bool,
}

fn requested_from(request: &[(&'static str, String)]) -> (Option<u64>, Option<String>) {
    let header = |name: &str| request.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let range =
        header("Range").and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok());
    (range, header("If-Range").cloned())
}

fn reply(
    u: &mut Unstructured<'_>,
    object: &[u8],
    index: usize,
    always_tagged: bool,
    request: &[(&'static str, String)],
) -> arbitrary::Result<Reply> {
    let length = object.len();
    let (range, if_range) = requested_from(request);
    let mut headers = Headers::new();
    if always_tagged || u.arbitrary()? {
        headers.push("ETag", etag(index));
    }
    let honest = u.ratio(1, 2)?;
    let status = if honest {
        match range {
            Some(_) if if_range.is_some_and(|v| v != etag(index)) => 200,
            Some(start) if start as usize >= length => 416,
            Some(_) => 206,
            None => 200,
        }
    } else {
        *u.choose(&[200u16, 206, 416])?
    };
    let (start, end) = match status {
        200 => (0, length),
        206 if honest => (range.unwrap_or(0) as usize, length),
        206 => {
            let start = u.int_in_range(0..=length)?;
            (start, u.int_in_range(start..=length)?)
        }
        _ => (0, 0),
    };
    match status {
        200 => {
            if honest || u.arbitrary()? {
                headers.push("Content-Length", length.to_string());
            } else if u.arbitrary()? {
                headers.push("Transfer-Encoding", "chunked");
            }
        }
        206 if start < end => {
            if honest || u.arbitrary()? {
                let total = if u.ratio(1, 4)? {
                    "*".to_owned()
                } else {
                    length.to_string()
                };
                headers.push(
                    "Content-Range",
                    format!("bytes {start}-{}/{total}", end - 1),
                );
            }
            if honest || u.arbitrary()? {
                headers.push("Content-Length", (end - start).to_string());
            }
        }
        416 if honest || u.arbitrary()? => {
            headers.push("Content-Range", format!("bytes */{length}"));
        }
        _ => {}
    }
    let mut body = object[start..end].to_vec();
    let mut clean = true;
    if u.ratio(1, 3)? {
        body.truncate(u.int_in_range(0..=body.len())?);
        // A cut is an error when the framing said more was coming; a close-delimited body
        // just ends.
        let framed =
            headers.get("content-length").is_some() || headers.get("transfer-encoding").is_some();
        clean = !framed || body.len() == end - start;
    }
    Ok(Reply {
        status,
        headers,
        body,
        clean,
    })
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let versions = [
        version(1, u.int_in_range(0..=300)?),
        version(2, u.int_in_range(0..=300)?),
    ];
    // The object changes between requests only where every answer names its version: where
    // nothing does, no client could tell two versions apart.
    let changes = u.arbitrary::<bool>()?;
    let mut current = 0;
    let mut resume = Resume::new();
    let mut file: Vec<u8> = Vec::new();
    for _ in 0..48 {
        if changes && u.ratio(1, 5)? {
            current = 1 - current;
        }
        let object = &versions[current];
        let request = resume.request_headers();
        let Reply {
            status,
            headers,
            body,
            clean,
        } = reply(u, object, current, changes, &request)?;
        match resume.on_answer(status, &headers) {
            Answer::Complete => {
                assert!(
                    versions.contains(&file),
                    "a finished file that is no whole version ({} bytes)",
                    file.len()
                );
                assert_eq!(resume.total(), Some(file.len() as u64));
                return Ok(());
            }
            Answer::Unverifiable { .. } => return Ok(()),
            Answer::Restart { .. } => file.clear(),
            Answer::NotBody => panic!("200, 206 and 416 always have a meaning"),
            Answer::Write { offset } => {
                assert_eq!(
                    offset,
                    resume.written(),
                    "the write goes where the file ends"
                );
                assert!(
                    offset as usize <= file.len(),
                    "a write past the end of the file"
                );
                file.truncate(offset as usize);
                let room = resume
                    .room()
                    .map_or(body.len(), |r| (r as usize).min(body.len()));
                file.extend_from_slice(&body[..room]);
                resume.on_bytes(room as u64);
                assert!(
                    object.starts_with(&file),
                    "the part file spliced bytes that are not a prefix of the version"
                );
                if resume.on_body_end(clean) == BodyEnd::Complete {
                    assert_eq!(file, *object, "a finished file that is not the version");
                    assert_eq!(resume.total(), Some(file.len() as u64));
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

pub fn resume(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
