//! Floor 5: the front doors' translations, one per door, shared by every caller.

pub mod function_url;
pub mod http;
