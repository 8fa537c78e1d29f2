#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "webhook_roundtrip".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("webhook_roundtrip", data));
