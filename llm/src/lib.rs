//! Talking to a language model: one [`Llm`] trait, three implementations.
//!
//! * [`http::HttpLlm`]: any OpenAI-compatible `/chat/completions` endpoint (OpenAI, the Gemini
//!   and Anthropic compatibility endpoints, vLLM, Ollama, llama.cpp's server), with retries;
//! * [`cassette::Recorder`]: wraps another `Llm` and appends every call to a JSONL cassette;
//! * [`cassette::Replayer`]: answers from a cassette, never touching the network.
//!
//! The loop only sees `Llm`, so a run can be recorded once and replayed exactly. Beside them:
//! [`gate`] (rate limits and concurrency shared by many clients) and, with the `mock` feature,
//! `mock` (a scripted server on 127.0.0.1 for tests).

pub mod cassette;
pub mod gate;
pub mod http;
#[cfg(feature = "mock")]
pub mod mock;

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation (the system prompt).
    System,
    /// The caller's turn.
    User,
    /// The model's turn.
    Assistant,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The text of the message.
    pub content: String,
}

impl Message {
    /// A system message with `content`.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message with `content`.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message with `content`.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Where and how to ask. The API key itself is never stored here: only the name of the
/// environment variable that holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL including the version path, e.g. `https://api.openai.com/v1`,
    /// `http://127.0.0.1:8000/v1` (vLLM), `http://localhost:11434/v1` (Ollama).
    pub base_url: String,
    /// Model name as the endpoint knows it.
    pub model: String,
    /// Environment variable holding the API key (`None`: send no key, as local servers want).
    pub api_key_env: Option<String>,
    /// Sampling temperature (`None`: not sent, the endpoint's default).
    pub temperature: Option<f32>,
    /// Nucleus sampling's `top_p` (`None`: not sent).
    pub top_p: Option<f32>,
    /// Sampling seed, for endpoints that honour it (`None`: not sent).
    pub seed: Option<i64>,
    /// Sent as `max_completion_tokens`.
    pub max_tokens: Option<u32>,
    /// The longest silence from the server, seconds (an idle timeout, not a whole-answer
    /// one: answers are streamed, so a long answer is never cut while it arrives; connecting
    /// gets at most 30 s). A request that times out after it was sent may have been billed:
    /// it is retried, and counted in [`Reply::abandoned`].
    pub timeout_s: f64,
    /// Retries after the first request (429, 5xx, timeouts, connection errors, bad bodies).
    pub max_retries: u32,
    /// First backoff delay, seconds; doubles per retry, with jitter, capped at `max_backoff_s`.
    pub backoff_s: f64,
    /// Longest wait between retries, seconds (also caps a server's `Retry-After`).
    pub max_backoff_s: f64,
    /// USD per million prompt and completion tokens, for the cost column (`None`: unknown).
    pub price_per_mtok: Option<(f64, f64)>,
    /// USD per million cached prompt tokens, where the provider bills them apart (`None`:
    /// at the prompt price).
    #[serde(default)]
    pub cached_price_per_mtok: Option<f64>,
}

impl LlmConfig {
    /// Defaults for `model` at `base_url`: temperature 0 (as the paper), 300 s idle timeout,
    /// 5 retries from 1 s.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: model.into(),
            api_key_env: None,
            temperature: Some(0.0),
            top_p: None,
            seed: None,
            max_tokens: None,
            timeout_s: 300.0,
            max_retries: 5,
            backoff_s: 1.0,
            max_backoff_s: 60.0,
            price_per_mtok: None,
            cached_price_per_mtok: None,
        }
    }

    /// The base URL with any query string (some endpoints take `?key=`) cut off: what
    /// cassettes and trajectories record.
    pub fn public_url(&self) -> String {
        self.base_url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .to_string()
    }

    /// Cost of a call in USD, when prices are known: what providers bill. Cached prompt
    /// tokens (a part of the prompt tokens) at their own price; reasoning tokens are a part of
    /// the completion tokens (as OpenAI-compatible endpoints report them), so billed with them.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        self.price_per_mtok.map(|(p, c)| {
            let cached = usage.cached_prompt_tokens.min(usage.prompt_tokens);
            let pc = self.cached_price_per_mtok.unwrap_or(p);
            ((usage.prompt_tokens - cached) as f64 * p
                + cached as f64 * pc
                + usage.completion_tokens as f64 * c)
                / 1e6
        })
    }
}

/// Tokens the endpoint says a call used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt (cached ones included).
    pub prompt_tokens: u64,
    /// Tokens in the completion (reasoning ones included).
    pub completion_tokens: u64,
    /// Of the prompt tokens, those served from the provider's prompt cache (0 when the
    /// endpoint does not say).
    #[serde(default)]
    pub cached_prompt_tokens: u64,
    /// Of the completion tokens, those spent reasoning (0 when the endpoint does not say).
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cached_prompt_tokens += o.cached_prompt_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
    }
}

/// The model's answer to one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The answer's text.
    pub content: String,
    /// `None` when the endpoint did not report usage.
    pub usage: Option<Usage>,
    /// Seconds from the first request to the answer, retries and waits included.
    pub latency_s: f64,
    /// HTTP requests made (1 + retries).
    pub requests: u32,
    /// Cost in USD ([`LlmConfig::cost`]; `None`: prices or usage unknown).
    pub cost_usd: Option<f64>,
    /// Requests that got no usable answer after they were sent (the server went silent past
    /// the idle timeout, the stream broke, the answer did not parse): the provider may have
    /// billed them, and they are not in `usage`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub abandoned: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a call failed after any retries.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The endpoint answered with an HTTP error status.
    #[error("{endpoint}: HTTP {status} after {requests} request(s): {body}")]
    Status {
        /// The endpoint's public URL (no query string).
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// HTTP requests made, retries included.
        requests: u32,
        /// The start of the response body (at most 300 characters).
        body: String,
    },
    /// No HTTP response: a DNS, connection or timeout error.
    #[error("{endpoint}: {message} after {requests} request(s)")]
    Transport {
        /// The endpoint's public URL (no query string).
        endpoint: String,
        /// The transport error (secrets redacted).
        message: String,
        /// HTTP requests made, retries included.
        requests: u32,
    },
    /// An answer that could not be used (unreadable body or stream, no content).
    #[error("{endpoint}: malformed response after {requests} request(s): {message}")]
    Malformed {
        /// The endpoint's public URL (no query string).
        endpoint: String,
        /// What was wrong with the answer.
        message: String,
        /// HTTP requests made, retries included.
        requests: u32,
    },
    /// The environment variable named by `api_key_env` is not set (its name).
    #[error("environment variable {0} (named by api_key_env) is not set")]
    MissingKey(String),
    /// A replayed call that the cassette does not hold.
    #[error(
        "cassette {path}: no recorded answer for this call (model {model}, trial {trial}, \
         {messages} messages, key {key}); record it first with --record"
    )]
    CassetteMiss {
        /// The cassette file.
        path: String,
        /// The call's model.
        model: String,
        /// The call's trial number.
        trial: u32,
        /// How many messages the call has.
        messages: usize,
        /// The call's cassette key ([`cassette::key`]).
        key: String,
    },
    /// A cassette could not be opened, read, parsed or written.
    #[error("cassette {path}: {message}")]
    Cassette {
        /// The cassette file.
        path: String,
        /// The error message.
        message: String,
    },
    /// The cell's budget is spent (the benchmark's meter refuses the call).
    #[error("budget spent: {0}")]
    Budget(String),
}

/// A chat model. `trial` tells apart repeated runs of the same task, so that a cassette can
/// hold one answer per trial of an otherwise identical call.
pub trait Llm {
    /// Sends `messages` and returns the model's reply; `trial` tells repeated runs apart.
    fn chat(&mut self, messages: &[Message], trial: u32) -> Result<Reply, LlmError>;
    /// The configuration the model is called with.
    fn config(&self) -> &LlmConfig;
}

impl<L: Llm + ?Sized> Llm for Box<L> {
    fn chat(&mut self, messages: &[Message], trial: u32) -> Result<Reply, LlmError> {
        (**self).chat(messages, trial)
    }
    fn config(&self) -> &LlmConfig {
        (**self).config()
    }
}

/// Replaces every occurrence of each secret in `text` by `[REDACTED]`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "[REDACTED]");
    }
    out
}
