//! Floor 0: plain data and pure functions over it — the request as received, values read out of
//! it, the rules and envelope that travel on the queue. Imports nothing outside `model/`.

pub mod document;
pub mod envelope;
pub mod multipart;
pub mod request;
pub mod rules;
pub mod template;
pub mod value;

/// A route's id: its name without the characters a CloudFormation logical id cannot hold (route
/// names are `a-z 0-9 - _`, so `slack-a` is `slacka`). Names must stay distinct as ids. The
/// deployed stack names a route's function, SSM path and body prefix by it.
pub fn route_id(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).collect()
}
