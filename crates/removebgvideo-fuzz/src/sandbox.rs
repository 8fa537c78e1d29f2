//! The sandbox's parsers of untrusted input: the `Range` header, the fault header and MP4
//! uploads. None panics or spins; what each accepts is within its input.

use std::io::Cursor;

use arbitrary::Unstructured;
use removebgvideo_sandbox::parsers::{mp4_duration, parse_fault_header, parse_range};

pub fn range(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(size) = u
        .arbitrary::<u64>()
        .map(|s| if s % 3 == 0 { s % 1000 } else { s })
    else {
        return;
    };
    let value = String::from_utf8_lossy(u.take_rest());
    if let Some(Ok((first, last))) = parse_range(&value, size) {
        assert!(
            first <= last && last < size,
            "{value:?} of {size}: {first}-{last}"
        );
    }
}

pub fn fault_header(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    if let Ok((plan, _)) = parse_fault_header(&value) {
        // What the request log says of a plan reads back as the same plan.
        if let Some(described) = plan.describe() {
            let (again, _) = parse_fault_header(&described).expect("a described plan parses");
            assert_eq!(again, plan, "{described:?}");
        }
    }
}

pub fn mp4(data: &[u8]) {
    let size = data.len() as u64;
    if let Some(seconds) = mp4_duration(Cursor::new(data), size) {
        assert!(seconds.is_finite() && seconds > 0.0, "{seconds}");
    }
}
