#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "retry_decisions".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("retry_decisions", data));
