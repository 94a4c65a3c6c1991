//! The webhook edge of `serve`: `/hooks/{route}` through the route's ingestor, with the body cap
//! and its read deadline, the route's rate limit (spent by verified requests only),
//! `X-Forwarded-*` trust and the refusal and handshake records the console shows.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Request, Response};
use hookcatch::Reply;
use hookcatch::clock::{Clock, SystemClock};
use hookcatch::edge::http::{inbound_from_http, response_from_reply};

use super::App;
use super::limits::RouteLimit;
use crate::refusals::{self, Refusal};
use crate::server::BODY_READ;

pub(super) async fn hook(
    State(app): State<Arc<App>>,
    Path(route): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    handle(app, route, String::from("/"), peer, request).await
}

pub(super) async fn hook_with_path(
    State(app): State<Arc<App>>,
    Path((route, rest)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    handle(app, route, format!("/{rest}"), peer, request).await
}

async fn handle(
    app: Arc<App>,
    route: String,
    path: String,
    peer: SocketAddr,
    request: Request<Body>,
) -> Response<Body> {
    let routes = app.routes.load_full();
    let Some(ingestor) = routes.get(&route) else {
        return reply(Reply::error(404, "unknown_route"));
    };
    let (parts, body) = request.into_parts();
    let (source_ip, called_url) = match app.trusted_proxy_hops {
        None => (Some(peer.ip().to_string()), None),
        Some(hops) => (
            forwarded_client(&parts.headers, hops),
            forwarded_url(&parts.headers, parts.uri.path()),
        ),
    };
    // What the console's refusals page keeps of a refused request: never its body.
    let refuse = |answer: Reply, body_len: usize| {
        let config = ingestor.route();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let reason = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|body| body["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        app.refusals.record(Refusal {
            at_ms: SystemClock.now_ms(),
            route: route.clone(),
            status: answer.status,
            reason,
            source_ip: source_ip.as_deref().map(|ip| refusals::bounded(ip, 64)),
            method: refusals::bounded(parts.method.as_str(), 64),
            path: refusals::kept_path(&path),
            query: refusals::masked_query(parts.uri.query().unwrap_or_default()),
            headers: refusals::masked_headers(&headers, config),
            body_len,
        });
        reply(answer)
    };
    let limits = app.limits.load_full();
    let limit = limits.get(&route);
    if let Some(limit) = limit {
        let source = source_ip.clone().unwrap_or_else(|| peer.ip().to_string());
        if let Some(refused) = limit.attempt(&source) {
            return refuse(refused, 0);
        }
    }
    let max = ingestor.route().max_body_bytes();
    let bytes = match tokio::time::timeout(BODY_READ, axum::body::to_bytes(body, max + 1)).await {
        Ok(Ok(bytes)) => bytes,
        // Over the limit (or the connection broke mid-body): nothing was accepted.
        Ok(Err(_)) => return refuse(Reply::error(413, "payload_too_large"), max + 1),
        // A body still arriving after its deadline holds a connection for nothing.
        Err(_) => return refuse(Reply::error(408, "body_too_slow"), 0),
    };
    let body_len = bytes.len();
    let mut inbound = inbound_from_http(&parts, bytes, source_ip.clone());
    inbound.path = path.clone();
    inbound.called_url = called_url;
    let admit = || limit.and_then(RouteLimit::admit);
    let (answer, outcome) = ingestor.handle_admitting(inbound, &admit).await;
    if outcome == hookcatch::metrics::Outcome::Handshake {
        app.handshakes.record(&route, SystemClock.now_ms());
    }
    if refusals::is_refusal(answer.status) {
        return refuse(answer, body_len);
    }
    reply(answer)
}

/// Every entry of a comma-separated header over all its lines, in order.
fn header_entries<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect()
}

/// The client address behind `hops` proxies that each append the address they saw: the entry
/// `hops` from the right. Entries left of it are whatever the client wrote. None (so `allow_ips`
/// refuses) when the request did not pass that many proxies or the entry is no address.
pub(super) fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<String> {
    let entries = header_entries(headers, "x-forwarded-for");
    let entry = entries.len().checked_sub(hops).map(|at| entries[at])?;
    entry.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// The URL the client called through the proxy nearest to us: its `X-Forwarded-Proto` (else
/// https, as tunnels terminate TLS) and `X-Forwarded-Host` (else the Host it passed on), each
/// the right-most entry, the one that proxy wrote.
pub(super) fn forwarded_url(headers: &HeaderMap, path: &str) -> Option<String> {
    let last = |name: &str| header_entries(headers, name).last().copied();
    let scheme = last("x-forwarded-proto").unwrap_or("https");
    let host = last("x-forwarded-host").or_else(|| last("host"))?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    (matches!(scheme, "http" | "https") && host_ok).then(|| format!("{scheme}://{host}{path}"))
}

pub(super) fn reply(reply: Reply) -> Response<Body> {
    response_from_reply(reply).map(Body::from)
}
