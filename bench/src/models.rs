//! The models file (TOML): which models a benchmark runs, where, and at what price.
//!
//! ```toml
//! [[model]]
//! name = "gpt-5-mini"                # label in the report (letters, digits, . _ -)
//! endpoint = "https://api.openai.com/v1"
//! model = "gpt-5-mini"               # the id the endpoint knows
//! api_key_env = "OPENAI_API_KEY"     # optional for local endpoints
//! price = [0.25, 2.0]                # USD per million prompt, completion tokens; optional
//! # optional: cached_price (USD per million cached prompt tokens), supervisor = "other-name",
//! # temperature (default 0), top_p, seed, max_tokens, requests_per_minute, max_concurrent,
//! # timeout_s (the idle timeout, default 300), max_retries
//! ```
//!
//! [`ModelsFile::parse`] checks everything it can before any cell starts: unknown fields,
//! missing ones, names, prices, supervisors, and API-key variables that are not set for a
//! remote endpoint; every error names the model and the line.

use llm::LlmConfig;
use serde::{Deserialize, Serialize};

/// One model of the file (secrets never: only the name of the key's variable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Label in the report and in folder names (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// OpenAI-compatible base URL, including the version path.
    pub endpoint: String,
    /// The model id the endpoint knows.
    pub model: String,
    /// Environment variable holding the API key (optional for local endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// USD per million prompt and completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<[f64; 2]>,
    /// USD per million cached prompt tokens (default: the prompt price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_price: Option<f64>,
    /// Another model of the file as the supervisor (as in the paper); default: this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<String>,
    /// Sampling temperature; default 0, as in the paper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus-sampling `top_p` (default: the endpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sampling seed (default: none sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Most completion tokens per call, sent as `max_completion_tokens` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Requests per minute to this endpoint (shared by every model on it; the strictest wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<f64>,
    /// Requests in flight to this endpoint at once (as above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Idle timeout of a request, seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Retries after the first request (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    model: Vec<toml::Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Typed {
    #[allow(dead_code)] // read for its errors
    model: Vec<ModelSpec>,
}

/// A checked models file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelsFile {
    /// The models, in the file's order.
    pub models: Vec<ModelSpec>,
}

impl ModelsFile {
    /// Reads and checks `path`. `need_keys`: whether remote endpoints need their key variable
    /// set now (not when replaying from cassettes).
    pub fn load(path: &std::path::Path, need_keys: bool) -> Result<Self, super::BenchError> {
        let text = std::fs::read_to_string(path).map_err(|e| super::BenchError::io(path, e))?;
        Self::parse(&text, need_keys)
            .map_err(|e| super::BenchError::Request(format!("models file {}: {e}", path.display())))
    }

    /// Parses and checks a models file's text.
    pub fn parse(text: &str, need_keys: bool) -> Result<Self, String> {
        let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
        if raw.model.is_empty() {
            return Err("no [[model]] entries".into());
        }
        let label = |entry: &toml::Spanned<toml::Table>| {
            let at = line(entry.span().start);
            entry
                .get_ref()
                .get("name")
                .and_then(|n| n.as_str())
                .map_or(format!("the [[model]] at line {at}"), |n| {
                    format!("model '{n}' (line {at})")
                })
        };
        // Typed, from the text, so that an error has its own span: named by its entry.
        if let Err(e) = toml::from_str::<Typed>(text) {
            let start = e.span().map_or(0, |s| s.start);
            let owner = raw
                .model
                .iter()
                .rfind(|m| m.span().start <= start)
                .map_or("models file".to_string(), label);
            return Err(format!(
                "{owner}, line {}: {}",
                line(start),
                e.message().trim()
            ));
        }
        let mut models = Vec::new();
        for entry in raw.model {
            let label = label(&entry);
            let spec = ModelSpec::deserialize(entry.into_inner())
                .map_err(|e| format!("{label}: {}", e.message()))?;
            spec.check().map_err(|e| format!("{label}: {e}"))?;
            if models.iter().any(|m: &ModelSpec| m.name == spec.name) {
                return Err(format!("{label}: the name is used twice"));
            }
            if need_keys && !is_local(&spec.endpoint) {
                match &spec.api_key_env {
                    None => {
                        return Err(format!(
                            "{label}: the endpoint {} is remote and no api_key_env names its key",
                            spec.endpoint
                        ))
                    }
                    Some(v) if std::env::var_os(v).is_none() => {
                        return Err(format!(
                            "{label}: the environment variable {v} (api_key_env) is not set"
                        ))
                    }
                    Some(_) => {}
                }
            }
            models.push(spec);
        }
        for m in &models {
            if let Some(s) = &m.supervisor {
                if !models.iter().any(|o| &o.name == s) {
                    return Err(format!(
                        "model '{}': supervisor '{s}' is not a model of this file",
                        m.name
                    ));
                }
            }
        }
        Ok(Self { models })
    }

    /// The model named `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }
}

impl ModelSpec {
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err("name must be letters, digits, '.', '_' or '-' (it names a folder)".into());
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!(
                "endpoint {:?} is not an http(s) URL",
                self.endpoint
            ));
        }
        let prices = self.price.iter().flatten().chain(&self.cached_price);
        if prices.clone().any(|p| !p.is_finite() || *p < 0.0) {
            return Err("prices must be finite and not negative".into());
        }
        if self.cached_price.is_some() && self.price.is_none() {
            return Err("cached_price without price".into());
        }
        if self
            .requests_per_minute
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            return Err("requests_per_minute must be positive".into());
        }
        if self.max_concurrent == Some(0) {
            return Err("max_concurrent must be at least 1".into());
        }
        Ok(())
    }

    /// The client configuration. The key's variable is dropped when it is unset and the
    /// endpoint is local (local servers want no key).
    pub fn config(&self) -> LlmConfig {
        let mut c = LlmConfig::new(&self.endpoint, &self.model);
        c.api_key_env = self
            .api_key_env
            .clone()
            .filter(|v| std::env::var_os(v).is_some() || !is_local(&self.endpoint));
        c.temperature = Some(self.temperature.unwrap_or(0.0));
        c.top_p = self.top_p;
        c.seed = self.seed;
        c.max_tokens = self.max_tokens;
        if let Some(t) = self.timeout_s {
            c.timeout_s = t;
        }
        if let Some(r) = self.max_retries {
            c.max_retries = r;
        }
        c.price_per_mtok = self.price.map(|[p, c]| (p, c));
        c.cached_price_per_mtok = self.cached_price;
        c
    }
}

/// Whether a URL's host is this machine.
pub fn is_local(url: &str) -> bool {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod tests {
    use super::ModelsFile;

    const GOOD: &str = r#"
[[model]]
name = "a"
endpoint = "http://127.0.0.1:9/v1"
model = "m-a"
price = [1.0, 2.0]

[[model]]
name = "b"
endpoint = "http://localhost:9/v1"
model = "m-b"
supervisor = "a"
"#;

    #[test]
    fn a_good_file_parses() {
        let f = ModelsFile::parse(GOOD, true).unwrap();
        assert_eq!(f.models.len(), 2);
        assert_eq!(f.get("b").unwrap().config().temperature, Some(0.0));
        assert_eq!(
            f.get("a").unwrap().config().price_per_mtok,
            Some((1.0, 2.0))
        );
    }

    #[test]
    fn every_mistake_names_the_model_or_the_line() {
        let cases = [
            (
                GOOD.replace("price =", "prise ="),
                "model 'a' (line 2)",
                "prise",
            ),
            (
                GOOD.replace("endpoint = \"http://localhost:9/v1\"\n", ""),
                "model 'b' (line 8)",
                "endpoint",
            ),
            (
                GOOD.replace("supervisor = \"a\"", "supervisor = \"z\""),
                "model 'b'",
                "'z'",
            ),
            (
                GOOD.replace("name = \"b\"", "name = \"a\""),
                "model 'a' (line 8)",
                "twice",
            ),
            (
                GOOD.replace("name = \"b\"", "name = \"b/c\""),
                "model 'b/c'",
                "folder",
            ),
            (
                GOOD.replace("[1.0, 2.0]", "[1.0, -2.0]"),
                "model 'a'",
                "negative",
            ),
            (
                GOOD.replace("http://127.0.0.1:9/v1", "https://api.example.com/v1"),
                "model 'a'",
                "no api_key_env",
            ),
            (
                GOOD.replace(
                    "http://127.0.0.1:9/v1\"",
                    "https://api.example.com/v1\"\napi_key_env = \"HEP_BENCH_UNSET_KEY_VAR\"",
                ),
                "model 'a'",
                "HEP_BENCH_UNSET_KEY_VAR",
            ),
            (
                "[[model]]\nname = \"x\"\nendpoint = 3\n".to_string(),
                "model 'x' (line 1), line 3",
                "string",
            ),
        ];
        for (text, who, what) in cases {
            let e = ModelsFile::parse(&text, true).unwrap_err();
            assert!(
                e.contains(who) && e.contains(what),
                "{e:?} lacks {who:?} / {what:?}"
            );
        }
        // Replaying needs no keys.
        let remote = GOOD.replace("http://127.0.0.1:9/v1", "https://api.example.com/v1");
        assert!(ModelsFile::parse(&remote, false).is_ok());
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_example_models_file_parses() {
        let text = include_str!("../../templates/bench/models.example.toml");
        let f = super::ModelsFile::parse(text, false).unwrap();
        assert_eq!(f.models.len(), 5);
        assert_eq!(
            f.get("gpt-oss-with-supervisor")
                .unwrap()
                .supervisor
                .as_deref(),
            Some("gpt-5-mini")
        );
    }
}
