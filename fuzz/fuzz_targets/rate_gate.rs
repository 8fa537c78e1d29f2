#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "rate_gate".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("rate_gate", data));
