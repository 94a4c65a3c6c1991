//! Test support for the other crates (feature `testing`), never in a bootstrap: in-memory fakes
//! of the ports, the fuzz entry points, and a request builder.

pub mod conformance;
pub mod fakes;
pub mod fuzzing;

use crate::model::request::InboundRequest;

/// A request built by hand, for tests of verifiers and signers.
pub fn request(method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> InboundRequest {
    InboundRequest {
        method: method.to_owned(),
        path: "/".to_owned(),
        raw_query: query.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: bytes::Bytes::copy_from_slice(body),
        source_ip: None,
        called_url: None,
    }
}
