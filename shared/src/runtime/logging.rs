//! Logging for the Lambda functions, configured by Lambda's advanced logging controls.
//!
//! `lambda_runtime`'s `init_default_subscriber` does the same with an `EnvFilter`, which links
//! `regex-automata` and `regex-syntax`'s Unicode tables into every bootstrap for `RUST_LOG`
//! directives a deployed function never gets (BENCHMARKS.md §3). Here the level is one level.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// What the function logs and how, from its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaLogging {
    pub level: LevelFilter,
    pub json: bool,
}

impl LambdaLogging {
    /// `AWS_LAMBDA_LOG_LEVEL` (the template's `LogLevel`, set by Lambda from `ApplicationLogLevel`),
    /// else `RUST_LOG` as a single level, else INFO; JSON lines when `AWS_LAMBDA_LOG_FORMAT` is JSON.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let level = env("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|| env("RUST_LOG"))
            .map_or(LevelFilter::INFO, |text| parse_level(&text));
        let json = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        LambdaLogging { level, json }
    }

    /// Installs the global subscriber: stdout, no timestamps (CloudWatch stamps each line) and no
    /// module targets, as `lambda_runtime`'s default does.
    pub fn init(self) {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let builder = tracing_subscriber::fmt()
            .with_target(false)
            .without_time()
            .with_max_level(self.level)
            .with_writer(std::io::stdout);
        if self.json {
            builder.json().finish().with(self.targets()).init();
        } else {
            builder.finish().with(self.targets()).init();
        }
    }

    /// hookcatch's own lines at the configured level; its dependencies' at INFO at most, because at
    /// DEBUG and TRACE they print what hookcatch keeps out of logs: `lambda_runtime` the raw
    /// invocation (query keys, `Authorization`, bodies), the AWS SDK request bodies.
    pub fn targets(self) -> Targets {
        Targets::new()
            .with_target("hookcatch", self.level)
            .with_default(self.level.min(LevelFilter::INFO))
    }
}

/// Lambda's levels are TRACE, DEBUG, INFO, WARN, ERROR and FATAL; tracing has no FATAL, so it keeps
/// errors. Anything unreadable keeps the default, INFO, rather than silencing the function.
fn parse_level(text: &str) -> LevelFilter {
    let text = text.trim();
    if text.eq_ignore_ascii_case("fatal") {
        return LevelFilter::ERROR;
    }
    text.parse().unwrap_or(LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logging(vars: &[(&str, &str)]) -> LambdaLogging {
        LambdaLogging::from_env(&|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn lambda_level_wins_then_rust_log_then_info() {
        assert_eq!(logging(&[]).level, LevelFilter::INFO);
        assert_eq!(logging(&[("RUST_LOG", "debug")]).level, LevelFilter::DEBUG);
        let both = [("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "trace")];
        assert_eq!(logging(&both).level, LevelFilter::WARN);
        assert_eq!(
            logging(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).level,
            LevelFilter::ERROR
        );
        assert_eq!(
            logging(&[("AWS_LAMBDA_LOG_LEVEL", "error")]).level,
            LevelFilter::ERROR
        );
        // A directive list is not a level: the default holds rather than silence.
        assert_eq!(
            logging(&[("RUST_LOG", "hookcatch=debug,warn")]).level,
            LevelFilter::INFO
        );
    }

    #[test]
    fn dependencies_never_log_below_info() {
        let targets = logging(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]).targets();
        for dependency in [
            "lambda_runtime::layers::api_response",
            "aws_smithy_runtime",
            "hyper",
        ] {
            assert!(
                !targets.would_enable(dependency, &tracing::Level::DEBUG),
                "{dependency}"
            );
            assert!(
                targets.would_enable(dependency, &tracing::Level::INFO),
                "{dependency}"
            );
        }
        for own in [
            "hookcatch::consume",
            "hookcatch_consumer",
            "hookcatch_ingest",
        ] {
            assert!(targets.would_enable(own, &tracing::Level::TRACE), "{own}");
        }
        let quiet = logging(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")]).targets();
        assert!(!quiet.would_enable("hookcatch::consume", &tracing::Level::INFO));
        assert!(!quiet.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
        assert!(quiet.would_enable("aws_smithy_runtime", &tracing::Level::WARN));
    }

    #[test]
    fn json_only_when_lambda_says_so() {
        assert!(logging(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
        assert!(logging(&[("AWS_LAMBDA_LOG_FORMAT", "json")]).json);
        assert!(!logging(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
        assert!(!logging(&[]).json);
    }
}
