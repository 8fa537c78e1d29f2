//! Fuzz targets for the parsers and decisions that meet hostile input. Each target takes raw
//! bytes, turns them into structured input with `arbitrary`, and asserts what must hold for
//! every input (beyond "no panic"). `fuzz/` runs them under libFuzzer on nightly; the test
//! `tests/corpus.rs` replays the committed corpus through the same functions on stable.

mod download;
mod http;
mod machines;
mod manifest;
mod poll;
mod retry;
mod sandbox;
mod webhook;

/// A target's body: bytes in, assertions inside.
pub type Target = fn(&[u8]);

/// Every target by name: the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("responses", http::responses),
    ("retry_decisions", retry::decisions),
    ("webhook_verify", webhook::verify),
    ("webhook_roundtrip", webhook::roundtrip),
    ("poller", poll::poller),
    ("resume", download::resume),
    ("call_machine", machines::call_machine),
    ("rate_gate", machines::rate_gate),
    ("sandbox_range", sandbox::range),
    ("sandbox_fault_header", sandbox::fault_header),
    ("sandbox_mp4", sandbox::mp4),
    ("manifest", manifest::manifest),
];

/// Headers from arbitrary pairs, biased towards the names the code looks for.
pub(crate) fn headers(
    u: &mut arbitrary::Unstructured<'_>,
    names: &[&str],
) -> arbitrary::Result<removebgvideo_core::Headers> {
    let mut headers = removebgvideo_core::Headers::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let name = if u.ratio(3, 4)? {
            (*u.choose(names)?).to_owned()
        } else {
            u.arbitrary::<String>()?
        };
        headers.push(name, u.arbitrary::<String>()?);
    }
    Ok(headers)
}

/// Runs the target `name` on `data` (the fuzz binaries' one call).
pub fn run(name: &str, data: &[u8]) {
    let (_, target) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name:?}"));
    target(data);
}
