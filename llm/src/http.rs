//! The OpenAI-compatible HTTP client: async-openai's request/response types on the wire,
//! ureq (rustls) as the blocking transport, and our own retry loop, because async-openai's
//! client hides the `Retry-After` header and the loop is sequential anyway.
//!
//! Answers are asked for as a stream (`stream: true`, usage in the last chunk) and read with
//! an idle timeout, so an answer that takes minutes to write is not cut and sent again (an
//! hour at most for one answer); a server that answers with one JSON document instead is read
//! the same way, and one that refuses the stream fields (400/422) is asked again without them.
//! A request that got no usable answer after it was sent is counted ([`Reply::abandoned`]):
//! the provider may have billed it.

use super::{Llm, LlmConfig, LlmError, Message, Reply, Role, Usage};
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use std::io::Read;
use std::time::{Duration, Instant};

/// Largest response body read (bytes); a longer one is a malformed response.
const MAX_BODY: u64 = 32 << 20;

/// A chat client for one endpoint and model.
pub struct HttpLlm {
    config: LlmConfig,
    api_key: Option<String>,
    agent: ureq::Agent,
    jitter: fastrand::Rng,
    /// The endpoint's rate limit, shared by every client of that endpoint (benchmarks).
    gate: Option<std::sync::Arc<crate::gate::Gate>>,
    /// Ask for a streamed answer (off once the server refused the stream fields).
    stream: bool,
}

impl HttpLlm {
    /// Reads the API key from the environment variable the config names (if any).
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let api_key = match &config.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| LlmError::MissingKey(var.clone()))?),
            None => None,
        };
        // Idle timeouts (each read and write), never one for the whole answer.
        let idle = Duration::from_secs_f64(config.timeout_s);
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(idle.min(Duration::from_secs(30)))
            .timeout_read(idle)
            .timeout_write(idle)
            .build();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Ok(Self {
            config,
            api_key,
            agent,
            jitter: fastrand::Rng::with_seed(seed),
            gate: None,
            stream: true,
        })
    }

    /// Every HTTP request (retries included) passes `gate` first.
    pub fn with_gate(mut self, gate: std::sync::Arc<crate::gate::Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The key's value, for redaction by recorders.
    pub fn secrets(&self) -> Vec<String> {
        self.api_key.iter().cloned().collect()
    }

    fn request_body(&self, messages: &[Message]) -> String {
        let messages = messages
            .iter()
            .map(|m| match m.role {
                Role::System => ChatCompletionRequestMessage::System(
                    ChatCompletionRequestSystemMessage::from(m.content.as_str()),
                ),
                Role::User => ChatCompletionRequestMessage::User(
                    ChatCompletionRequestUserMessage::from(m.content.as_str()),
                ),
                Role::Assistant => ChatCompletionRequestMessage::Assistant(
                    ChatCompletionRequestAssistantMessage::from(m.content.as_str()),
                ),
            })
            .collect();
        let c = &self.config;
        // `seed` is deprecated by OpenAI but still honoured by vLLM, Ollama and llama.cpp.
        #[allow(deprecated)]
        let req = CreateChatCompletionRequest {
            model: c.model.clone(),
            messages,
            temperature: c.temperature,
            top_p: c.top_p,
            seed: c.seed,
            max_completion_tokens: c.max_tokens,
            ..Default::default()
        };
        let mut doc = serde_json::to_value(&req).expect("a chat request serialises");
        if self.stream {
            doc["stream"] = true.into();
            doc["stream_options"] = serde_json::json!({ "include_usage": true });
        }
        doc.to_string()
    }

    /// One HTTP request. `Err((error, retry, retry_after, abandoned))`: `abandoned` when it
    /// was given up after it was sent.
    fn attempt(&self, body: &str) -> Result<Reply, Failed> {
        let endpoint = self.config.public_url();
        // The path goes before any query string (`...?key=` endpoints).
        let url = match self.config.base_url.split_once('?') {
            Some((base, query)) => format!("{base}/chat/completions?{query}"),
            None => format!("{}/chat/completions", self.config.base_url),
        };
        let mut req = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        // After a 200 the provider has answered (and may have billed it): unusable, the
        // request is abandoned.
        let malformed = |message: String| {
            (
                LlmError::Malformed {
                    endpoint: endpoint.clone(),
                    message,
                    requests: 0,
                },
                true,
                None,
                true,
            )
        };
        match req.send_string(body) {
            Ok(resp) if resp.content_type() == "text/event-stream" => {
                let (content, usage) =
                    read_stream(Deadline::new(resp.into_reader(), self.config.timeout_s))
                        .map_err(malformed)?;
                Ok(answer(content, usage))
            }
            Ok(resp) => {
                let mut text = String::new();
                Deadline::new(resp.into_reader(), self.config.timeout_s)
                    .take(MAX_BODY)
                    .read_to_string(&mut text)
                    .map_err(|e| malformed(format!("reading the body: {e}")))?;
                if text.trim_start().starts_with("data:") {
                    // Events under another content type.
                    let (content, usage) = read_stream(text.as_bytes()).map_err(malformed)?;
                    return Ok(answer(content, usage));
                }
                let parsed: CreateChatCompletionResponse = serde_json::from_str(&text)
                    .map_err(|e| malformed(format!("{e}; body starts {:?}", snippet(&text))))?;
                let content = parsed
                    .choices
                    .into_iter()
                    .next()
                    .and_then(|c| c.message.content)
                    .ok_or_else(|| malformed("no choices[0].message.content".into()))?;
                let usage = parsed.usage.map(|u| Usage {
                    prompt_tokens: u.prompt_tokens as u64,
                    completion_tokens: u.completion_tokens as u64,
                    cached_prompt_tokens: u
                        .prompt_tokens_details
                        .and_then(|d| d.cached_tokens)
                        .unwrap_or(0) as u64,
                    reasoning_tokens: u
                        .completion_tokens_details
                        .and_then(|d| d.reasoning_tokens)
                        .unwrap_or(0) as u64,
                });
                Ok(answer(content, usage))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let retry_after = resp.header("retry-after").and_then(parse_retry_after);
                let text = resp.into_string().unwrap_or_default();
                // Overload and transient server states; not 501 (never implemented) and
                // other 4xx (the request itself is wrong). 529: Anthropic's "overloaded".
                let retry = matches!(status, 408 | 409 | 429 | 500 | 502 | 503 | 504 | 529);
                let e = LlmError::Status {
                    endpoint,
                    status,
                    requests: 0,
                    body: snippet(&text),
                };
                Err((e, retry, retry_after, false))
            }
            Err(ureq::Error::Transport(t)) => {
                // Not connected (refused, no such host, bad URL): nothing was sent. Anything
                // else (a read that timed out, a connection reset) happened after sending.
                use ureq::ErrorKind as K;
                let sent = !matches!(
                    t.kind(),
                    K::Dns | K::ConnectionFailed | K::InvalidUrl | K::UnknownScheme
                );
                // ureq quotes the URL: never with its query string (it may hold a key).
                let public = format!("{endpoint}/chat/completions");
                let message = super::redact(&t.to_string().replace(&url, &public), &self.secrets());
                let e = LlmError::Transport {
                    endpoint,
                    message,
                    requests: 0,
                };
                Err((e, true, None, sent))
            }
        }
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random.
    fn backoff(&mut self, retry: u32) -> Duration {
        let c = &self.config;
        let d = (c.backoff_s * 2f64.powi(retry as i32)).min(c.max_backoff_s);
        Duration::from_secs_f64(d * (0.5 + 0.5 * self.jitter.f64()))
    }
}

impl Llm for HttpLlm {
    fn chat(&mut self, messages: &[Message], _trial: u32) -> Result<Reply, LlmError> {
        let mut body = self.request_body(messages);
        let start = Instant::now();
        let (mut requests, mut abandoned) = (0, 0);
        loop {
            requests += 1;
            let permit = self.gate.as_ref().map(|g| g.acquire());
            let result = self.attempt(&body);
            drop(permit);
            match result {
                Ok(mut reply) => {
                    reply.latency_s = start.elapsed().as_secs_f64();
                    reply.requests = requests;
                    reply.abandoned = abandoned;
                    reply.cost_usd = reply.usage.as_ref().and_then(|u| self.config.cost(u));
                    return Ok(reply);
                }
                Err((e, retry, retry_after, given_up)) => {
                    abandoned += u32::from(given_up);
                    // A server that does not take the stream fields: ask again without them.
                    if self.stream
                        && matches!(
                            e,
                            LlmError::Status {
                                status: 400 | 422,
                                ..
                            }
                        )
                    {
                        self.stream = false;
                        body = self.request_body(messages);
                        continue;
                    }
                    if !retry || requests > self.config.max_retries {
                        return Err(with_requests(e, requests));
                    }
                    let max = Duration::from_secs_f64(self.config.max_backoff_s);
                    let wait = match retry_after {
                        Some(d) => d.min(max),
                        None => self.backoff(requests - 1),
                    };
                    std::thread::sleep(wait);
                }
            }
        }
    }

    fn config(&self) -> &LlmConfig {
        &self.config
    }
}

/// One request's answer; the call's totals (latency, requests, cost) are filled in by `chat`.
fn answer(content: String, usage: Option<Usage>) -> Reply {
    Reply {
        content,
        usage,
        latency_s: 0.0,
        requests: 0,
        cost_usd: None,
        abandoned: 0,
    }
}

/// A body reader that gives up once the answer has taken longer than an hour (or 12 idle
/// timeouts): a server that trickles keep-alive comments forever never trips the idle timeout.
/// (ureq's own whole-request timeout would replace its per-read one.)
struct Deadline<R> {
    inner: R,
    until: Instant,
}

impl<R> Deadline<R> {
    fn new(inner: R, idle_s: f64) -> Self {
        let longest = Duration::from_secs_f64((12.0 * idle_s).max(3600.0));
        Self {
            inner,
            until: Instant::now() + longest,
        }
    }
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() > self.until {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the answer took longer than the longest allowed",
            ));
        }
        self.inner.read(buf)
    }
}

/// A failed request: the error, whether to retry, the server's `Retry-After`, and whether it
/// was given up after it was sent.
type Failed = (LlmError, bool, Option<Duration>, bool);

/// An answer streamed as server-sent events (`data: {chunk}` lines, `data: [DONE]` last): the
/// chunks' content deltas joined, the usage from the chunk that carries it; `Err`: the stream
/// broke, went silent, carried an error or a chunk that does not parse, or had no content.
fn read_stream(r: impl Read) -> Result<(String, Option<Usage>), String> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(r.take(MAX_BODY));
    let (mut content, mut usage, mut finished) = (String::new(), None, false);
    let mut line = String::new();
    loop {
        line.clear();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            // The answer was whole; only the usage chunk or the end marker is missing.
            Err(_) if finished => break,
            Err(e) => return Err(format!("reading the stream: {e}")),
        };
        if n == 0 {
            break;
        }
        let Some(data) = line.trim_end().strip_prefix("data:") else {
            continue; // comments, event names, blank separators
        };
        let data = data.trim_start();
        if data == "[DONE]" {
            finished = true;
            break;
        }
        let v: serde_json::Value = serde_json::from_str(data)
            .map_err(|e| format!("{e}; chunk starts {:?}", snippet(data)))?;
        if let Some(err) = v.get("error") {
            return Err(format!(
                "the stream carried an error: {}",
                snippet(&err.to_string())
            ));
        }
        let choice = &v["choices"][0];
        if let Some(c) = choice["delta"]["content"].as_str() {
            content.push_str(c);
        }
        finished |= choice["finish_reason"].is_string();
        if v["usage"].is_object() {
            usage = Some(usage_of(&v["usage"]));
        }
    }
    if !finished {
        return Err("the stream ended before the answer did".into());
    }
    if content.is_empty() {
        return Err("the stream carried no content".into());
    }
    Ok((content, usage))
}

/// Usage as an OpenAI usage object gives it.
fn usage_of(u: &serde_json::Value) -> Usage {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    Usage {
        prompt_tokens: n(&u["prompt_tokens"]),
        completion_tokens: n(&u["completion_tokens"]),
        cached_prompt_tokens: n(&u["prompt_tokens_details"]["cached_tokens"]),
        reasoning_tokens: n(&u["completion_tokens_details"]["reasoning_tokens"]),
    }
}

fn with_requests(e: LlmError, n: u32) -> LlmError {
    match e {
        LlmError::Status {
            endpoint,
            status,
            body,
            ..
        } => LlmError::Status {
            endpoint,
            status,
            body,
            requests: n,
        },
        LlmError::Transport {
            endpoint, message, ..
        } => LlmError::Transport {
            endpoint,
            message,
            requests: n,
        },
        LlmError::Malformed {
            endpoint, message, ..
        } => LlmError::Malformed {
            endpoint,
            message,
            requests: n,
        },
        other => other,
    }
}

/// `Retry-After` as seconds (`"3"`, `"1.5"`) or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(s).ok();
    }
    // The `httpdate` crate (hyper's): IMF-fixdate and the two obsolete forms RFC 9110 says a
    // recipient must accept.
    let when = httpdate::parse_http_date(v).ok()?;
    let now = std::time::SystemTime::now();
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The first 300 characters of a body, for error messages.
fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let t = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784111777
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
