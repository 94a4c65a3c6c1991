//! Secret references and their resolution, done once at start and cached for the process lifetime.
//!
//! `ssm:/name` reads an SSM Parameter Store SecureString, `env:NAME` an environment variable (local
//! mode), anything else is the literal secret (local development only; refused on Lambda).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Ssm(String),
    Env(String),
    /// `local:NAME`: the route's secret NAME in the secrets file beside `hookcatch.toml`, which
    /// only `hookcatch` on your machine reads.
    Local(String),
    Literal(String),
}

impl SecretRef {
    pub fn parse(text: &str) -> Self {
        if let Some(name) = text.strip_prefix("ssm:") {
            SecretRef::Ssm(name.to_owned())
        } else if let Some(name) = text.strip_prefix("env:") {
            SecretRef::Env(name.to_owned())
        } else if let Some(name) = text.strip_prefix("local:") {
            SecretRef::Local(name.to_owned())
        } else {
            SecretRef::Literal(text.to_owned())
        }
    }

    /// Whether the value lives outside the configuration itself (a store, not the text).
    pub fn is_external(&self) -> bool {
        matches!(self, SecretRef::Ssm(_))
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            SecretRef::Ssm(_) => "an SSM parameter",
            SecretRef::Env(_) => "an environment variable",
            SecretRef::Local(_) => "the local secrets file",
            SecretRef::Literal(_) => "a literal value",
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Ssm(name) => write!(f, "ssm:{name}"),
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::Local(name) => write!(f, "local:{name}"),
            SecretRef::Literal(_) => f.write_str("<literal redacted>"),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SecretRef::Ssm(name) => serializer.serialize_str(&format!("ssm:{name}")),
            SecretRef::Env(name) => serializer.serialize_str(&format!("env:{name}")),
            SecretRef::Local(name) => serializer.serialize_str(&format!("local:{name}")),
            SecretRef::Literal(value) => serializer.serialize_str(value),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(SecretRef::parse(&text))
    }
}

/// A resolved secret. Its Debug output never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality that also hides the length: both sides are hashed first.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        let expected = Sha256::digest(self.0.as_bytes());
        let given = Sha256::digest(candidate);
        expected.ct_eq(&given).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{0}` named as a secret is not set")]
    MissingEnv(String),
    #[error("SSM parameter `{0}` was not found")]
    MissingParameter(String),
    #[error("reading SSM parameters failed: {0}")]
    Store(String),
    #[error("secret reference `ssm:{0}` needs a parameter store, and none is configured")]
    NoStore(String),
    #[error(
        "`local:{0}` names a secret in the local secrets file, which only `hookcatch` on your \
         machine reads; on AWS use `ssm:/name`"
    )]
    LocalOnly(String),
}

/// Where `ssm:` references are read from: SSM Parameter Store on AWS, a fake in unit tests.
#[async_trait]
pub trait ParameterStore: Send + Sync {
    /// Decrypted values in the order of `names`.
    async fn get_decrypted(&self, names: &[String]) -> Result<Vec<String>, SecretError>;

    /// Every parameter under `path` (recursively), decrypted, as (full name, value).
    async fn get_by_path(&self, path: &str) -> Result<Vec<(String, String)>, SecretError>;
}

/// Resolves every reference, in order. SSM references are fetched in one call.
pub async fn resolve(
    refs: &[SecretRef],
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    store: Option<&dyn ParameterStore>,
) -> Result<Vec<Secret>, SecretError> {
    let ssm_names: Vec<String> = refs
        .iter()
        .filter_map(|r| match r {
            SecretRef::Ssm(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    let mut ssm_values = if ssm_names.is_empty() {
        Vec::new()
    } else {
        let store = store.ok_or_else(|| SecretError::NoStore(ssm_names[0].clone()))?;
        store.get_decrypted(&ssm_names).await?
    }
    .into_iter();
    refs.iter()
        .map(|r| match r {
            SecretRef::Literal(value) => Ok(Secret::new(value.clone())),
            SecretRef::Env(name) => env(name)
                .map(Secret::new)
                .ok_or_else(|| SecretError::MissingEnv(name.clone())),
            SecretRef::Local(name) => Err(SecretError::LocalOnly(name.clone())),
            SecretRef::Ssm(name) => ssm_values
                .next()
                .map(Secret::new)
                .ok_or_else(|| SecretError::MissingParameter(name.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FixedStore;

    #[async_trait]
    impl ParameterStore for FixedStore {
        async fn get_decrypted(&self, names: &[String]) -> Result<Vec<String>, SecretError> {
            Ok(names.iter().map(|n| format!("value-of-{n}")).collect())
        }

        async fn get_by_path(&self, path: &str) -> Result<Vec<(String, String)>, SecretError> {
            Ok(vec![(format!("{path}/x"), "value-of-x".into())])
        }
    }

    #[tokio::test]
    async fn resolves_each_kind_in_order() {
        let refs = vec![
            SecretRef::parse("ssm:/a"),
            SecretRef::parse("env:HC_TEST"),
            SecretRef::parse("plain"),
            SecretRef::parse("ssm:/b"),
        ];
        let env = |name: &str| (name == "HC_TEST").then(|| "from-env".to_owned());
        let secrets = resolve(&refs, &env, Some(&FixedStore)).await.unwrap();
        let values: Vec<&str> = secrets.iter().map(Secret::expose).collect();
        assert_eq!(values, ["value-of-/a", "from-env", "plain", "value-of-/b"]);
    }

    #[tokio::test]
    async fn missing_env_and_missing_store_are_errors() {
        let none = |_: &str| None;
        let err = resolve(&[SecretRef::parse("env:NOPE")], &none, None).await;
        assert!(matches!(err, Err(SecretError::MissingEnv(n)) if n == "NOPE"));
        let err = resolve(&[SecretRef::parse("ssm:/x")], &none, None).await;
        assert!(matches!(err, Err(SecretError::NoStore(_))));
    }

    #[test]
    fn debug_never_shows_values() {
        let shown = format!(
            "{:?} {:?}",
            Secret::new("s3cr3t"),
            SecretRef::parse("s3cr3t")
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(Secret::new("abc").matches(b"abc"));
        assert!(!Secret::new("abc").matches(b"abd"));
        assert!(!Secret::new("abc").matches(b"ab"));
    }
}
