#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "manifest".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("manifest", data));
