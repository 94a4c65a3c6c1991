//! Counts and timings for dashboards and alarms. The core records through the `metrics` facade,
//! which does nothing until a recorder is installed; the Lambda entrypoints install the CloudWatch
//! Embedded Metric Format recorder ([`Emf`]) and flush it after each invocation, so CloudWatch
//! turns log lines into metrics without an API call on the hot path.
//!
//! Metrics (namespace `hookcatch`):
//! - `Requests`, by `route` and `outcome` (handshake, refused, too_large, queue_failed), and
//!   `reason` for refusals (bad_signature, stale_timestamp, …). Accepted requests are not
//!   recorded: each route is its own function, so Lambda's `Invocations` counts them (less the
//!   outcomes here), and the consumer's `Events` counts what they became. A document per accepted
//!   webhook cost $0.135 per million, 7% of the whole pipeline (BENCHMARKS.md §6);
//! - `Events`, by `route` and `outcome` (stored, duplicate, replayed, failed, failed_retryable);
//! - `HydrationMs` (one value per route and batch) and `HydrationErrors`, by `route`.

use std::time::Duration;

/// What happened to one request, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Handshake,
    Refused,
    TooLarge,
    QueueFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Handshake => "handshake",
            Outcome::Refused => "refused",
            Outcome::TooLarge => "too_large",
            Outcome::QueueFailed => "queue_failed",
        }
    }
}

pub const NAMESPACE: &str = "hookcatch";

/// One inbound request's outcome, unless it was accepted; `reason` is the refusal's label.
pub fn request(route: &str, outcome: Outcome, reason: Option<&'static str>) {
    if outcome == Outcome::Accepted {
        return;
    }
    let route = route.to_owned();
    match reason {
        Some(reason) => metrics::counter!(
            "Requests", "route" => route, "outcome" => outcome.as_str(), "reason" => reason
        )
        .increment(1),
        None => metrics::counter!("Requests", "route" => route, "outcome" => outcome.as_str())
            .increment(1),
    }
}

/// One queue message's outcome in the consumer.
pub fn event(route: &str, outcome: &'static str) {
    metrics::counter!("Events", "route" => route.to_owned(), "outcome" => outcome).increment(1);
}

/// One hydrator call for a batch: how long it took and how many of its events failed.
pub fn hydration(route: &str, elapsed: Duration, failed: usize) {
    metrics::histogram!("HydrationMs", "route" => route.to_owned())
        .record(elapsed.as_secs_f64() * 1000.0);
    if failed > 0 {
        metrics::counter!("HydrationErrors", "route" => route.to_owned()).increment(failed as u64);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the metrics recorder could not be installed: {0}")]
pub struct MetricsError(String);

/// The EMF recorder of a Lambda process.
#[derive(Clone, Copy)]
pub struct Emf(&'static metrics_cloudwatch_embedded::Collector);

impl Emf {
    /// Installs the process-wide recorder; once per process, at init.
    pub fn install() -> Result<Emf, MetricsError> {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .init()
            .map_err(|error| MetricsError(error.to_string()))?;
        // Lambda's log-level filter treats a JSON line without `level` as INFO; WARN keeps the
        // metrics when the function logs at WARN (the template's LogLevel allows no higher level).
        collector.set_property("level", "WARN");
        metrics::describe_histogram!("HydrationMs", metrics::Unit::Milliseconds, "hydrator call");
        Ok(Emf(collector))
    }

    /// Writes one EMF document per label set with new values to stdout, where Lambda's log
    /// capture picks it up.
    pub fn flush(self) {
        if let Err(error) = self.0.flush(std::io::stdout().lock()) {
            tracing::warn!(%error, "metrics could not be written");
        }
    }

    #[cfg(test)]
    fn flush_to_string(self) -> String {
        let mut out = Vec::new();
        self.0.flush(&mut out).expect("writing to memory");
        String::from_utf8(out).expect("EMF documents are JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_carry_route_outcome_and_reason_dimensions() {
        let emf = Emf::install().unwrap();
        request("orders", Outcome::Accepted, None);
        request("orders", Outcome::Accepted, None);
        request("orders", Outcome::Refused, Some("bad_signature"));
        event("orders", "stored");
        hydration("zoho", Duration::from_millis(120), 2);
        let documents: Vec<serde_json::Value> = emf
            .flush_to_string()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let find = |metric: &str, outcome: Option<&str>| {
            documents
                .iter()
                .find(|d| d.get(metric).is_some() && d["outcome"].as_str() == outcome)
                .unwrap_or_else(|| panic!("{metric} {outcome:?} in {documents:?}"))
        };
        assert!(
            documents.iter().all(|d| d["outcome"] != "accepted"),
            "accepted requests write no document: {documents:?}"
        );
        let refused = find("Requests", Some("refused"));
        assert_eq!(refused["Requests"], 1);
        assert_eq!(refused["reason"], "bad_signature");
        assert_eq!(refused["level"], "WARN", "passes Lambda's log-level filter");
        assert_eq!(refused["route"], "orders");
        let aws = &refused["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(aws["Namespace"], NAMESPACE);
        let mut dimensions: Vec<&str> = aws["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        dimensions.sort_unstable();
        assert_eq!(dimensions, ["outcome", "reason", "route"]);
        assert_eq!(aws["Metrics"][0]["Name"], "Requests");
        assert_eq!(find("Events", Some("stored"))["Events"], 1);
        let hydration = find("HydrationMs", None);
        assert_eq!(hydration["HydrationMs"], serde_json::json!([120.0]));
        assert_eq!(hydration["HydrationErrors"], 2);
        assert_eq!(
            hydration["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["Name"] == "HydrationMs")
                .unwrap()["Unit"],
            "Milliseconds"
        );
        // Counters restart after a flush: the next document holds only new counts, and an
        // invocation that only accepted writes nothing.
        request("orders", Outcome::Accepted, None);
        assert_eq!(emf.flush_to_string(), "");
        request("orders", Outcome::TooLarge, None);
        let next = emf.flush_to_string();
        assert_eq!(next.lines().count(), 1, "{next}");
        assert!(next.contains("\"Requests\":1"), "{next}");
    }
}
