#![no_main]
//! libFuzzer entry point; the body is `removebgvideo_fuzz`'s target "sandbox_fault_header".

libfuzzer_sys::fuzz_target!(|data: &[u8]| removebgvideo_fuzz::run("sandbox_fault_header", data));
