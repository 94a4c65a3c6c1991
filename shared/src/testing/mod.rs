//! Test support for the other crates (feature `testing`), never in a bootstrap: in-memory fakes
//! of the ports and the fuzz entry points.

pub mod fakes;
pub mod fuzzing;
