#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "responses".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("responses", data));
