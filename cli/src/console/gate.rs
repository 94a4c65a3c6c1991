//! Who may use a console: every request must name the console's own address (`Host`, against DNS
//! rebinding), carry the console's token (on loopback too: another local user, or a page in the
//! owner's browser, is a stranger), come from no other site (`Sec-Fetch-Site`), and post only from
//! the console's own pages (`Origin` and the forms' CSRF token); every answer carries headers that
//! keep the pages from being framed, sniffed or made to run anything but their own script.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::render::refusal;

/// Wrong tokens a console takes in a minute before it refuses every token, the right one too,
/// until the minute is over (a made token cannot be guessed; one a user chose might).
const WRONG_TOKENS_PER_MINUTE: u32 = 10;

/// Who may use a console: its address (the `Host` every request must name) and its token.
pub(super) struct Gate {
    addr: SocketAddr,
    token: String,
    /// Cookies are scoped by host, not port: each console's cookie carries its port in its name,
    /// so that two consoles (or `serve`'s webhook listener) on one host never receive each other's.
    cookie: String,
    wrong: Mutex<WrongTokens>,
}

/// The wrong tokens given in the current minute.
struct WrongTokens {
    since: Instant,
    count: u32,
}

impl Gate {
    pub fn new(addr: SocketAddr, token: String) -> Gate {
        Gate {
            cookie: format!("hookcatch_console_{}", addr.port()),
            addr,
            token,
            wrong: Mutex::new(WrongTokens {
                since: Instant::now(),
                count: 0,
            }),
        }
    }

    /// Counts a wrong token; false once this minute has had too many (every guess is refused then).
    fn may_guess(&self, wrong: bool) -> bool {
        let mut tally = self.wrong.lock().unwrap_or_else(|e| e.into_inner());
        if tally.since.elapsed() >= Duration::from_secs(60) {
            tally.since = Instant::now();
            tally.count = 0;
        }
        if tally.count >= WRONG_TOKENS_PER_MINUTE {
            return false;
        }
        tally.count += u32::from(wrong);
        true
    }
}

/// Whether `host` (a `Host` header) names this console: its own address, `localhost` on
/// loopback, or any IP address on its port when it listens on all of them. Never a DNS name
/// it was not started with, which is what a DNS-rebinding page would send.
fn host_allowed(host: &str, addr: SocketAddr) -> bool {
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(addr.port()) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    match name.parse::<IpAddr>() {
        Ok(ip) => ip == addr.ip() || addr.ip().is_unspecified(),
        Err(_) => {
            name.eq_ignore_ascii_case("localhost")
                && (addr.ip().is_loopback() || addr.ip().is_unspecified())
        }
    }
}

fn cookie_token<'a>(headers: &'a HeaderMap, cookie: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value)
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

pub(super) fn matches_token(expected: &str, given: &str) -> bool {
    hookcatch::secrets::Secret::new(expected).matches(given.as_bytes())
}

/// Every request: its own `Host`, the token off loopback (from the cookie, or once from
/// `?token=`, which sets the cookie), a POST only from the console's own pages (`Origin`; the
/// handlers check the form's CSRF token), and headers that keep the pages from being framed,
/// sniffed or made to run anything but their own script.
pub(super) async fn guard(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let mut response = match check(&gate, &request) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with the
    // console's own forms, which the Origin check would refuse.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A refusal for `request`, or `None` when it may pass.
fn check(console: &Gate, request: &Request) -> Option<Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let method = request.method();
    if method == Method::POST {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if origin != Some(format!("http://{host}").as_str()) {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                "Refused: a change must come from the console's own pages (Origin).",
            ));
        }
    } else if method != Method::GET && method != Method::HEAD {
        return Some(refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "The console reads with GET and acts with its own forms' POSTs.",
        ));
    }
    if !host_allowed(host, console.addr) {
        return Some(refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "Refused: this console answers only to its own address, http://{}/ (a page on \
                 another site may not reach it through your browser).",
                console.addr
            ),
        ));
    }
    if let Some(refused) = from_another_site(request.headers()) {
        return Some(refused);
    }
    let expected = console.token.as_str();
    let from_cookie = cookie_token(request.headers(), &console.cookie);
    let from_query = query_token(request.uri().query());
    if from_cookie.is_none() && from_query.is_none() {
        return Some(refusal(
            StatusCode::UNAUTHORIZED,
            "This console needs its token: open the URL `hookcatch serve` (or `hookcatch console \
             --aws`) printed at start (…/?token=…); `serve` keeps it in its data directory, in \
             `console-token`.",
        ));
    }
    let right = from_cookie.is_some_and(|given| matches_token(expected, given))
        || from_query
            .as_deref()
            .is_some_and(|given| matches_token(expected, given));
    if !console.may_guess(!right) {
        return Some(refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong tokens in the last minute: this console accepts none for now. Try \
             again in a minute with the URL it printed at start.",
        ));
    }
    if !right {
        return Some(refusal(
            StatusCode::UNAUTHORIZED,
            "This console's token is wrong or stale: open the URL it printed at start \
             (…/?token=…).",
        ));
    }
    if from_query.is_some() {
        // Once: the token moves into a cookie this site alone sends, and out of the address bar;
        // the redirect stays on this console (`//host/` would be another site).
        let path = format!("/{}", request.uri().path().trim_start_matches('/'));
        let mut response = Redirect::to(&path).into_response();
        let cookie = format!(
            "{}={expected}; Path=/; HttpOnly; SameSite=Strict",
            console.cookie
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return Some(response);
    }
    None
}

/// A refusal for a request another site's page made through the owner's browser (an `<img>`, a
/// `fetch`, a form): only the owner's own navigations and the console's own pages pass. Browsers
/// too old to send `Sec-Fetch-Site` are still held by the token's `SameSite=Strict` cookie.
fn from_another_site(headers: &HeaderMap) -> Option<Response> {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    matches!(site, "cross-site" | "same-site").then(|| {
        refusal(
            StatusCode::FORBIDDEN,
            "Refused: a page on another site may not reach this console through your browser \
             (Sec-Fetch-Site). Open the console's own URL.",
        )
    })
}

/// A form's fields: the CSRF token, and the queue entry a replay names.
#[derive(Debug, Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub seq: Option<i64>,
}

/// A refusal for a form that does not carry the console's CSRF token `csrf`.
pub(super) fn forged(csrf: &str, form: &ActionForm) -> Option<Response> {
    (!matches_token(csrf, &form.csrf)).then(|| {
        refusal(
            StatusCode::FORBIDDEN,
            "Refused: the form's CSRF token is missing or stale; reload the page.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_host_is_answered() {
        let loopback: SocketAddr = "127.0.0.1:3001".parse().unwrap();
        assert!(host_allowed("127.0.0.1:3001", loopback));
        assert!(host_allowed("localhost:3001", loopback));
        assert!(!host_allowed("attacker.example:3001", loopback));
        assert!(!host_allowed("127.0.0.1:3002", loopback));
        assert!(!host_allowed("127.0.0.1", loopback));
        assert!(!host_allowed("", loopback));
        let everywhere: SocketAddr = "0.0.0.0:3001".parse().unwrap();
        assert!(host_allowed("192.168.1.20:3001", everywhere));
        assert!(!host_allowed("rebound.example:3001", everywhere));
        let v6: SocketAddr = "[::1]:3001".parse().unwrap();
        assert!(host_allowed("[::1]:3001", v6));
    }

    #[test]
    fn tokens_come_from_the_cookie_or_the_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; hookcatch_console=t0k; c=d"),
        );
        assert_eq!(cookie_token(&headers, "hookcatch_console"), Some("t0k"));
        assert_eq!(cookie_token(&headers, "hookcatch_console_3001"), None);
        assert_eq!(query_token(Some("x=1&token=t%2F1")).as_deref(), Some("t/1"));
        assert_eq!(query_token(None), None);
    }
}

#[cfg(test)]
mod guesses {
    use super::*;

    #[test]
    fn wrong_tokens_are_counted_and_then_nothing_is_compared() {
        let gate = Gate::new("127.0.0.1:3001".parse().unwrap(), "t".repeat(64));
        for _ in 0..WRONG_TOKENS_PER_MINUTE {
            assert!(gate.may_guess(true));
        }
        assert!(
            !gate.may_guess(false),
            "the right token after ten wrong ones"
        );
        gate.wrong.lock().unwrap().since -= Duration::from_secs(61);
        assert!(gate.may_guess(false), "a minute later");
    }
}
