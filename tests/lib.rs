//! Integration tests live in `it/`; this library is empty on purpose so the crate has one test binary.
