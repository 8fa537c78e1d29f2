#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "call_machine".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("call_machine", data));
