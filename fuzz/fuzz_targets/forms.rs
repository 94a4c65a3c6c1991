#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookcatch::testing::fuzzing::forms(data));
