//! Floor 0: plain data and pure functions over it — the request as received, values read out of
//! it, the rules and envelope that travel on the queue. Imports nothing outside `model/`.

pub mod document;
pub mod envelope;
pub mod multipart;
pub mod request;
pub mod rules;
pub mod template;
pub mod value;
