//! Resuming a download: which bytes an answer holds, whether they continue the part file, and
//! when the file is whole. Pure decisions over statuses, headers and byte counts; the client
//! moves the bytes.
//!
//! The rules, each a way a resumed file could otherwise end up wrong:
//! - A resume asks for `Range: bytes=N-` with `If-Range` (the first answer's strong ETag, else
//!   its Last-Modified), so a changed object comes back whole (200) instead of as a tail.
//! - A 206 continues the file only if its `Content-Range` starts exactly at N, its total agrees
//!   with what was announced before, its validator is the one the bytes were read under, and its
//!   `Content-Length` matches the range. Anything else starts over from byte 0: never a splice.
//! - A body whose end nothing proves (no length, no chunked framing) is not taken as complete:
//!   the next request asks for the rest, and only a 416 naming the same total confirms it.

use crate::http::Headers;

/// The version of the object the part file's bytes belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// A strong `ETag` (weak ones cannot be used with `If-Range`).
    ETag(String),
    /// `Last-Modified`, when there is no strong ETag.
    LastModified(String),
}

impl Validator {
    /// The validator an answer carries: its strong ETag, else its Last-Modified.
    pub fn of(headers: &Headers) -> Option<Validator> {
        let etag = headers
            .get("etag")
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with("W/"));
        match etag {
            Some(etag) => Some(Validator::ETag(etag.to_owned())),
            None => headers
                .get("last-modified")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| Validator::LastModified(v.to_owned())),
        }
    }

    /// The `If-Range` value.
    pub fn header_value(&self) -> &str {
        match self {
            Validator::ETag(value) | Validator::LastModified(value) => value,
        }
    }

    /// Whether an answer shows another version: it carries a validator of the same kind
    /// that differs from this one.
    fn contradicted_by(&self, headers: &Headers) -> bool {
        match (self, Validator::of(headers)) {
            (Validator::ETag(ours), Some(Validator::ETag(theirs))) => ours != &theirs,
            (Validator::LastModified(ours), Some(Validator::LastModified(theirs))) => {
                ours != &theirs
            }
            // An answer with a strong ETag where we had only a date: compare dates if it has one.
            (Validator::LastModified(ours), Some(Validator::ETag(_))) => headers
                .get("last-modified")
                .is_some_and(|theirs| theirs.trim() != ours),
            _ => false,
        }
    }
}

/// What an answer means for the part file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Cut the part file to `offset` and write the body from there.
    Write {
        /// Where the body's first byte belongs.
        offset: u64,
    },
    /// The part file already holds the whole object.
    Complete,
    /// The answer cannot continue the part file: discard it, empty the part file and ask
    /// again from byte 0.
    Restart {
        /// Why, for logs and the final error.
        reason: String,
    },
    /// Nothing can tell a complete download from a cut one: the output has no length, and
    /// its server ignores `Range`.
    Unverifiable {
        /// Why.
        reason: String,
    },
    /// Not an answer with a body to write (an error status): the caller's retry and URL
    /// refresh rules apply.
    NotBody,
}

/// What the end of a body means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// The part file holds the whole object.
    Complete,
    /// More is due: the body stopped before its announced end, or it was a sub-range. Ask for
    /// the rest (the body may have broken: the caller counts it as a failed attempt unless
    /// bytes came).
    Short {
        /// Why.
        reason: String,
    },
    /// The body ended and nothing proves it was all: ask for the rest; a 416 confirms.
    Unproven,
}

/// The state of one download's part file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    written: u64,
    total: Option<u64>,
    validator: Option<Validator>,
    /// Where the body being received ends (exclusive), when its answer said.
    body_end: Option<u64>,
    /// The body being received proves its own end (chunked framing).
    framed: bool,
    /// A body ended without proof: the next answer must confirm the end or continue.
    verifying: bool,
    /// The least length answers have promised (a 206's last byte + 1): a 416 confirming less
    /// contradicts them.
    promised: u64,
}

/// `bytes first-last/total` (total may be `*`), or `bytes */total` for a 416.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// First and last byte, inclusive; `None` for `bytes */total`.
    pub span: Option<(u64, u64)>,
    /// The whole length, when stated.
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses a `Content-Range` value strictly; `None` when it is malformed or inconsistent.
    pub fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (span, total) = rest.split_once('/')?;
        let digits = |s: &str| {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        let total = match total.trim() {
            "*" => None,
            t => Some(digits(t)?),
        };
        let span = match span.trim() {
            "*" => {
                total?;
                None
            }
            span => {
                let (first, last) = span.split_once('-')?;
                let (first, last) = (digits(first)?, digits(last)?);
                if first > last || total.is_some_and(|t| last >= t) {
                    return None;
                }
                Some((first, last))
            }
        };
        Some(ContentRange { span, total })
    }
}

fn content_length(headers: &Headers) -> Option<u64> {
    headers.get("content-length")?.trim().parse().ok()
}

fn chunked(headers: &Headers) -> bool {
    headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

impl Resume {
    /// A download not yet begun.
    pub fn new() -> Self {
        Resume::default()
    }

    /// Bytes in the part file, all of one version of the object.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The object's length, once an answer said (or the end was confirmed).
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The version the part file's bytes belong to.
    pub fn validator(&self) -> Option<&Validator> {
        self.validator.as_ref()
    }

    /// How many more bytes the current body may bring, when its end is known: the caller
    /// reads no further, so a body longer than announced cannot overrun the file.
    pub fn room(&self) -> Option<u64> {
        self.body_end.map(|end| end.saturating_sub(self.written))
    }

    /// The headers of the next request: none for a fresh start; `Range` (and `If-Range` when
    /// there is a validator) to continue.
    pub fn request_headers(&self) -> Vec<(&'static str, String)> {
        if self.written == 0 && !self.verifying {
            return Vec::new();
        }
        let mut headers = vec![("Range", format!("bytes={}-", self.written))];
        if let Some(validator) = &self.validator {
            headers.push(("If-Range", validator.header_value().to_owned()));
        }
        headers
    }

    fn restart(&mut self, reason: String) -> Answer {
        *self = Resume::default();
        Answer::Restart { reason }
    }

    /// Decides what an answer's status and headers mean, before its body is read.
    pub fn on_answer(&mut self, status: u16, headers: &Headers) -> Answer {
        match status {
            200 => self.on_whole(headers),
            206 => self.on_partial(headers),
            416 => self.on_unsatisfiable(headers),
            _ => Answer::NotBody,
        }
    }

    /// A 200: the whole object from byte 0, whatever was asked (the server ignored `Range`, or
    /// `If-Range` saw a new version).
    fn on_whole(&mut self, headers: &Headers) -> Answer {
        let length = content_length(headers);
        let framed = chunked(headers);
        if self.verifying && length.is_none() && !framed {
            return Answer::Unverifiable {
                reason: "the output URL gives no length and ignores Range, so a complete \
                         download cannot be told from a cut one"
                    .into(),
            };
        }
        *self = Resume {
            written: 0,
            total: length,
            validator: Validator::of(headers),
            body_end: length,
            framed,
            verifying: false,
            // A whole body answers for itself.
            promised: 0,
        };
        Answer::Write { offset: 0 }
    }

    fn on_partial(&mut self, headers: &Headers) -> Answer {
        let Some(range) = headers.get("content-range").and_then(ContentRange::parse) else {
            return self.restart(
                "a partial answer (206) without a valid Content-Range cannot be placed".into(),
            );
        };
        let Some((first, last)) = range.span else {
            return self.restart("a partial answer (206) named no byte range".into());
        };
        if first != self.written {
            return self.restart(format!(
                "a partial answer starting at byte {first} cannot continue a file of {} bytes",
                self.written
            ));
        }
        if let (Some(ours), Some(theirs)) = (self.total, range.total)
            && ours != theirs
        {
            return self.restart(format!(
                "the output's length changed from {ours} to {theirs} bytes"
            ));
        }
        if self
            .validator
            .as_ref()
            .is_some_and(|v| v.contradicted_by(headers))
        {
            return self.restart("the output changed since the download began".into());
        }
        let span_length = last - first + 1;
        if content_length(headers).is_some_and(|length| length != span_length) {
            return self.restart(format!(
                "a partial answer's Content-Length does not match its range of {span_length} bytes"
            ));
        }
        if self.written == 0 && self.validator.is_none() {
            self.validator = Validator::of(headers);
        }
        self.total = range.total.or(self.total);
        self.promised = self.promised.max(last + 1);
        self.body_end = Some(last + 1);
        self.framed = true;
        self.verifying = false;
        Answer::Write { offset: first }
    }

    fn on_unsatisfiable(&mut self, headers: &Headers) -> Answer {
        if self
            .validator
            .as_ref()
            .is_some_and(|v| v.contradicted_by(headers))
        {
            // A length confirmed for another version says nothing of ours.
            return self.restart("the output changed since the download began".into());
        }
        let range = headers.get("content-range").and_then(ContentRange::parse);
        let confirmed = match range {
            Some(ContentRange {
                span: None,
                total: Some(total),
            }) => {
                total == self.written
                    && total >= self.promised
                    && self.total.is_none_or(|ours| ours == total)
            }
            _ => false,
        };
        if confirmed && (self.written > 0 || self.verifying) {
            self.total = Some(self.written);
            self.verifying = false;
            Answer::Complete
        } else {
            self.restart(format!(
                "the output URL refused the range from byte {} without confirming the length",
                self.written
            ))
        }
    }

    /// Counts `n` bytes written at the end of the part file. The caller never writes more
    /// than [`Resume::room`] allows.
    pub fn on_bytes(&mut self, n: u64) {
        self.written = self.written.saturating_add(n);
    }

    /// Decides what the end of the current body means; `clean` says whether it ended as its
    /// framing says (not cut by an error), which alone lets chunked framing prove the end.
    pub fn on_body_end(&mut self, clean: bool) -> BodyEnd {
        let end = self.body_end.take();
        let framed = std::mem::take(&mut self.framed) && clean;
        match (end, self.total) {
            (Some(end), _) if self.written < end => BodyEnd::Short {
                reason: format!("the body ended at byte {} of {end}", self.written),
            },
            (_, Some(total)) if self.written == total => BodyEnd::Complete,
            (_, Some(total)) if self.written < total => BodyEnd::Short {
                reason: format!("{} of {total} bytes so far", self.written),
            },
            (_, Some(total)) => {
                // More than the total: only a server contradicting itself gets here.
                let reason = format!(
                    "the output brought {} bytes, more than the {total} it announced",
                    self.written
                );
                *self = Resume::default();
                BodyEnd::Short { reason }
            }
            (None, None) if framed => {
                // Chunked framing proves the end: the transport fails a body cut before
                // its last chunk.
                self.total = Some(self.written);
                BodyEnd::Complete
            }
            _ if !clean => {
                // Broken with no length known: the rest is asked for, and only a 416 naming
                // this length (or a body that proves its own end) completes it.
                self.verifying = true;
                BodyEnd::Short {
                    reason: format!("the body broke after {} bytes", self.written),
                }
            }
            _ => {
                self.verifying = true;
                BodyEnd::Unproven
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (*n, *v)).collect()
    }

    /// A download that received `n` bytes of a 100-byte object with ETag "v1" and broke.
    fn broken_at(n: u64) -> Resume {
        let mut resume = Resume::new();
        let first = headers(&[("Content-Length", "100"), ("ETag", "\"v1\"")]);
        assert_eq!(resume.on_answer(200, &first), Answer::Write { offset: 0 });
        resume.on_bytes(n);
        assert!(matches!(resume.on_body_end(true), BodyEnd::Short { .. }));
        resume
    }

    #[test]
    fn a_resume_asks_for_the_rest_of_the_same_version() {
        assert!(Resume::new().request_headers().is_empty());
        assert_eq!(
            broken_at(40).request_headers(),
            vec![
                ("Range", "bytes=40-".to_owned()),
                ("If-Range", "\"v1\"".to_owned())
            ]
        );
    }

    #[test]
    fn a_partial_answer_without_content_range_is_never_taken_as_the_start() {
        let mut resume = broken_at(40);
        let answer = resume.on_answer(206, &headers(&[("Content-Length", "60")]));
        assert!(matches!(answer, Answer::Restart { .. }), "{answer:?}");
        assert_eq!(resume.written(), 0);
        assert!(
            resume.request_headers().is_empty(),
            "starts over from byte 0"
        );
    }

    #[test]
    fn a_partial_answer_must_start_where_the_file_ends_with_the_same_total() {
        for range in [
            "bytes 0-99/100",
            "bytes 41-99/100",
            "bytes 40-119/120",
            "bytes 40-99/*x",
            "bytes 40-30/100",
            "bytes 40-100/100",
            "bytes */100",
        ] {
            let mut resume = broken_at(40);
            let answer = resume.on_answer(206, &headers(&[("Content-Range", range)]));
            assert!(
                matches!(answer, Answer::Restart { .. }),
                "{range}: {answer:?}"
            );
        }
        let mut resume = broken_at(40);
        let answer = resume.on_answer(
            206,
            &headers(&[("Content-Range", "bytes 40-99/100"), ("ETag", "\"v1\"")]),
        );
        assert_eq!(answer, Answer::Write { offset: 40 });
        assert_eq!(resume.room(), Some(60));
        resume.on_bytes(60);
        assert_eq!(resume.on_body_end(true), BodyEnd::Complete);
    }

    #[test]
    fn a_changed_object_is_never_spliced() {
        let mut resume = broken_at(40);
        let answer = resume.on_answer(
            206,
            &headers(&[("Content-Range", "bytes 40-99/100"), ("ETag", "\"v2\"")]),
        );
        assert!(matches!(answer, Answer::Restart { .. }), "{answer:?}");
        // If-Range did its job: the new version comes whole, from byte 0.
        let mut resume = broken_at(40);
        let answer = resume.on_answer(
            200,
            &headers(&[("Content-Length", "90"), ("ETag", "\"v2\"")]),
        );
        assert_eq!(answer, Answer::Write { offset: 0 });
        assert_eq!(resume.total(), Some(90));
        assert_eq!(resume.validator(), Some(&Validator::ETag("\"v2\"".into())));
    }

    #[test]
    fn a_weak_etag_falls_back_to_last_modified() {
        let answer = headers(&[
            ("ETag", "W/\"v1\""),
            ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT"),
        ]);
        assert_eq!(
            Validator::of(&answer),
            Some(Validator::LastModified(
                "Tue, 01 Dec 2026 10:00:00 GMT".into()
            ))
        );
        assert_eq!(Validator::of(&headers(&[("ETag", "W/\"v1\"")])), None);
    }

    #[test]
    fn a_body_without_a_length_is_complete_only_when_something_proves_it() {
        // Chunked framing proves the end.
        let mut resume = Resume::new();
        resume.on_answer(200, &headers(&[("Transfer-Encoding", "chunked")]));
        resume.on_bytes(70);
        assert_eq!(resume.on_body_end(true), BodyEnd::Complete);
        assert_eq!(resume.total(), Some(70));

        // A chunked body cut by an error proves nothing.
        let mut resume = Resume::new();
        resume.on_answer(200, &headers(&[("Transfer-Encoding", "chunked")]));
        resume.on_bytes(30);
        assert!(matches!(resume.on_body_end(false), BodyEnd::Short { .. }));
        assert_eq!(
            resume.request_headers(),
            vec![("Range", "bytes=30-".to_owned())]
        );

        // A close-delimited body: ask for the rest; a 416 naming the same length confirms.
        let mut resume = Resume::new();
        resume.on_answer(200, &Headers::new());
        resume.on_bytes(70);
        assert_eq!(resume.on_body_end(true), BodyEnd::Unproven);
        assert_eq!(
            resume.request_headers(),
            vec![("Range", "bytes=70-".to_owned())]
        );
        let mut confirmed = resume.clone();
        assert_eq!(
            confirmed.on_answer(416, &headers(&[("Content-Range", "bytes */70")])),
            Answer::Complete
        );
        // The body was cut early: the rest comes as a 206.
        let mut cut = resume.clone();
        assert_eq!(
            cut.on_answer(206, &headers(&[("Content-Range", "bytes 70-99/100")])),
            Answer::Write { offset: 70 }
        );
        // A 416 confirming less than a 206 promised proves nothing.
        let mut promised = Resume::new();
        promised.on_answer(206, &headers(&[("Content-Range", "bytes 0-99/*")]));
        promised.on_bytes(40);
        assert!(matches!(promised.on_body_end(true), BodyEnd::Short { .. }));
        assert!(matches!(
            promised.on_answer(416, &headers(&[("Content-Range", "bytes */40")])),
            Answer::Restart { .. }
        ));

        // A 416 naming another length, or none, or for another version, proves nothing.
        let mut tagged = Resume::new();
        tagged.on_answer(200, &headers(&[("ETag", "\"v1\"")]));
        tagged.on_bytes(70);
        assert_eq!(tagged.on_body_end(true), BodyEnd::Unproven);
        let other_version = headers(&[("Content-Range", "bytes */70"), ("ETag", "\"v2\"")]);
        assert!(matches!(
            tagged.on_answer(416, &other_version),
            Answer::Restart { .. }
        ));
        for answer in [headers(&[("Content-Range", "bytes */100")]), Headers::new()] {
            let mut other = resume.clone();
            assert!(matches!(
                other.on_answer(416, &answer),
                Answer::Restart { .. }
            ));
        }
        // A server that ignores Range and gives no length again cannot be verified.
        let mut ignored = resume.clone();
        assert!(matches!(
            ignored.on_answer(200, &Headers::new()),
            Answer::Unverifiable { .. }
        ));
    }

    #[test]
    fn content_range_parsing_is_strict() {
        assert_eq!(
            ContentRange::parse("bytes 0-9/10"),
            Some(ContentRange {
                span: Some((0, 9)),
                total: Some(10)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes 5-9/*"),
            Some(ContentRange {
                span: Some((5, 9)),
                total: None
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes 0-9",
            "bytes -9/10",
            "bytes 0-/10",
            "bytes 0-10/10",
            "bytes */*",
            "bytes +1-9/10",
            "items 0-9/10",
            "bytes 0-99999999999999999999/*",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad:?}");
        }
    }
}
