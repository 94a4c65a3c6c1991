//! The handshakes `serve` answered (Slack's URL check, Zoom's endpoint validation, the challenges
//! of Meta, X and Graph), counted by route and minute for the last hour. They are answered, never
//! stored, so without these counts the routes page could not say that a provider's check arrived.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Minutes kept per route: the routes page's last hour.
const MINUTES: usize = 60;

/// One route's last hour: (minute since the epoch, handshakes in it), oldest first.
type Minutes = VecDeque<(i64, u32)>;

/// Shared by `serve` (which counts) and the console (which reads). Bounded: one entry per
/// configured route (unknown routes are refused before any handshake) and minute.
#[derive(Debug, Clone, Default)]
pub struct Handshakes(Arc<Mutex<HashMap<String, Minutes>>>);

impl Handshakes {
    pub fn record(&self, route: &str, at_ms: i64) {
        let minute = at_ms.div_euclid(60_000);
        let mut routes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let minutes = routes.entry(route.to_owned()).or_default();
        match minutes.back_mut() {
            Some((last, count)) if *last == minute => *count += 1,
            _ => {
                minutes.push_back((minute, 1));
                if minutes.len() > MINUTES {
                    minutes.pop_front();
                }
            }
        }
    }

    /// Each route's handshakes in the hour up to `now_ms`.
    pub fn last_hour(&self, now_ms: i64) -> HashMap<String, u32> {
        let first = now_ms.div_euclid(60_000) - (MINUTES as i64 - 1);
        let routes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .map(|(route, minutes)| {
                let count = minutes
                    .iter()
                    .filter(|(minute, _)| *minute >= first)
                    .map(|(_, count)| count)
                    .sum();
                (route.clone(), count)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_minute_and_forgets_what_is_over_an_hour_old() {
        let handshakes = Handshakes::default();
        let minute = 60_000;
        handshakes.record("slack", 0);
        handshakes.record("slack", 10);
        handshakes.record("slack", 5 * minute);
        handshakes.record("zoom", 59 * minute);
        assert_eq!(handshakes.last_hour(59 * minute)["slack"], 3);
        assert_eq!(
            handshakes.last_hour(60 * minute)["slack"],
            1,
            "minute 0 is gone"
        );
        assert_eq!(handshakes.last_hour(60 * minute)["zoom"], 1);
        for m in 0..200 {
            handshakes.record("slack", m * minute);
        }
        let kept = handshakes.0.lock().unwrap()["slack"].len();
        assert_eq!(kept, MINUTES, "one entry a minute, an hour of them");
        assert_eq!(handshakes.last_hour(199 * minute)["slack"], 60);
    }
}
