#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookcatch_ingest::testing::fuzz_function_url(data));
