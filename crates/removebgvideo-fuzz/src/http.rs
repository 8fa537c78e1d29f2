//! Response and error parsing: any status, headers and body give a typed result or a typed
//! error that keeps the status, never a panic.

use arbitrary::Unstructured;
use removebgvideo_core::http::{ResponseBody, parse_error, parse_response};
use removebgvideo_core::{
    Headers, Health, Job, JobAccepted, JobList, LegacyDownload, Timestamp, UploadResult,
    UsageEvents, UsageSummary,
};

const NAMES: &[&str] = &[
    "content-type",
    "x-request-id",
    "retry-after",
    "retry-after-ms",
    "idempotency-key",
    "idempotent-replayed",
];

fn parse<T: ResponseBody>(status: u16, headers: &Headers, body: &[u8], now: Timestamp) {
    match parse_response::<T>(status, headers, body, now) {
        Ok(_) => assert!(
            (200..300).contains(&status),
            "a {status} parsed as a result"
        ),
        Err(error) => {
            assert_eq!(error.status, Some(status), "the error keeps its status");
            assert!(!error.message.is_empty());
        }
    }
}

pub fn responses(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((status, headers, now)) = (|| {
        Ok::<_, arbitrary::Error>((
            u.int_in_range(100..=599)?,
            crate::headers(&mut u, NAMES)?,
            Timestamp::from_unix_millis(u.arbitrary()?),
        ))
    })() else {
        return;
    };
    let body = u.take_rest();
    parse::<Job>(status, &headers, body, now);
    parse::<JobAccepted>(status, &headers, body, now);
    parse::<JobList>(status, &headers, body, now);
    parse::<UploadResult>(status, &headers, body, now);
    parse::<UsageSummary>(status, &headers, body, now);
    parse::<UsageEvents>(status, &headers, body, now);
    parse::<LegacyDownload>(status, &headers, body, now);
    parse::<Health>(status, &headers, body, now);
    let error = parse_error(status, &headers, body, now);
    assert_eq!(error.status, Some(status));
    // The kind is always one a binding has a class for.
    let _ = error.kind();
}
