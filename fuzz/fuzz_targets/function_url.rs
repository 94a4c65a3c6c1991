#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookcatch_ingest::fuzz_function_url(data));
