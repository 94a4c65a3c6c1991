//! Floor 6: process wiring — the Lambdas' composition roots and their logging.

pub mod lambda;
pub mod logging;
