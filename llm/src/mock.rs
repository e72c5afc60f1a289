//! A scripted OpenAI-compatible server on 127.0.0.1, for tests: each request to
//! `/v1/chat/completions` gets a [`MockReply`] (answers, error statuses with or without
//! `Retry-After`, malformed bodies, delays, slow streams; answers are server-sent events when
//! the request asks for a stream, as real servers send them) — the next of a script ([`MockServer::start`]), or
//! what a function of the request says ([`MockServer::respond_with`], for answers that must
//! not depend on the order of concurrent requests) — and is kept for inspection.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum MockReply {
    /// A normal completion with this content and usage.
    Answer {
        /// The answer's text.
        content: String,
        /// Prompt, completion, cached prompt and reasoning tokens (the last two are reported
        /// only when not 0); `None`: no usage in the answer.
        usage: Option<[u64; 4]>,
    },
    /// An OpenAI-style error object with this status, and optionally a `Retry-After` value.
    Error {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header's value, if any.
        retry_after: Option<String>,
    },
    /// Any status and body, e.g. a malformed one.
    Raw {
        /// The HTTP status.
        status: u16,
        /// The body, as sent.
        body: String,
    },
    /// Waits, then does the inner reply.
    Delay {
        /// How long to wait, seconds.
        secs: f64,
        /// What to do after.
        then: Box<MockReply>,
    },
    /// An answer streamed in ten pieces over `secs` seconds (a model writing a long answer):
    /// the client's idle timeout must not cut it, whatever its whole length.
    Slow {
        /// The answer's text.
        content: String,
        /// Seconds over which the pieces are sent.
        secs: f64,
    },
}

impl MockReply {
    /// An answer with 100 prompt and 50 completion tokens.
    pub fn answer(content: impl Into<String>) -> Self {
        MockReply::Answer {
            content: content.into(),
            usage: Some([100, 50, 0, 0]),
        }
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request's JSON body.
    pub body: Value,
    /// Its `Authorization` header, if any.
    pub authorization: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

/// The running server; stops when dropped.
pub struct MockServer {
    server: Arc<tiny_http::Server>,
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Starts on a free port of 127.0.0.1. Requests past the end of the script get a 500.
    pub fn start(script: Vec<MockReply>) -> std::io::Result<Self> {
        let script = Mutex::new(script.into_iter());
        Self::respond_with(move |_| {
            script.lock().unwrap().next().unwrap_or(MockReply::Raw {
                status: 500,
                body: "mock script exhausted".into(),
            })
        })
    }

    /// Starts on a free port of 127.0.0.1; each request's reply is `reply(request body)`.
    pub fn respond_with(
        reply: impl Fn(&Value) -> MockReply + Send + 'static,
    ) -> std::io::Result<Self> {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(std::io::Error::other)?);
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(0);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (server.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let authorization = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string());
                let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
                let answer = reply(&body);
                let stream = body["stream"] == true;
                r.lock().unwrap().push(Received {
                    body,
                    authorization,
                    at: Instant::now(),
                });
                std::thread::spawn(move || respond(req, answer, stream));
            }
        });
        Ok(Self {
            server,
            port,
            received,
            thread: Some(thread),
        })
    }

    /// The base URL to configure a client with (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Server-sent events of an answer: a chunk per piece of `pieces`, the finish, the usage,
/// `[DONE]` (OpenAI's order with `stream_options.include_usage`).
fn sse(pieces: &[String], usage: Option<[u64; 4]>) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        let doc = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                         "created": 1_700_000_000, "model": "mock",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {doc}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        pieces
            .iter()
            .map(|p| chunk(json!({ "content": p }), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    if let Some(u) = usage {
        let doc = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                         "created": 1_700_000_000, "model": "mock", "choices": [],
                         "usage": usage_doc(u)});
        events.push(format!("data: {doc}\n\n"));
    }
    events.push("data: [DONE]\n\n".into());
    events
}

fn usage_doc([p, c, cached, reasoning]: [u64; 4]) -> Value {
    let mut u = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    if cached > 0 {
        u["prompt_tokens_details"] = json!({ "cached_tokens": cached });
    }
    if reasoning > 0 {
        u["completion_tokens_details"] = json!({ "reasoning_tokens": reasoning });
    }
    u
}

/// `content` cut into `n` pieces on character boundaries.
fn pieces(content: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = content.chars().collect();
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn respond(req: tiny_http::Request, reply: MockReply, stream: bool) {
    let event_stream = || tiny_http::Header::from_bytes("Content-Type", "text/event-stream");
    let (status, body, retry_after) = match reply {
        MockReply::Delay { secs, then } => {
            std::thread::sleep(Duration::from_secs_f64(secs));
            return respond(req, *then, stream);
        }
        MockReply::Slow { content, secs } => {
            // Written by hand on the raw connection, each event flushed as it is due
            // (tiny_http's chunked encoder would hold them back until its buffer fills).
            use std::io::Write;
            let events = sse(&pieces(&content, 10), Some([100, 50, 0, 0]));
            let gap = Duration::from_secs_f64(secs / events.len() as f64);
            let mut w = req.into_writer();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                        Connection: close\r\n\r\n";
            if w.write_all(head.as_bytes())
                .and_then(|_| w.flush())
                .is_err()
            {
                return;
            }
            for e in events {
                std::thread::sleep(gap);
                if w.write_all(e.as_bytes()).and_then(|_| w.flush()).is_err() {
                    return;
                }
            }
            return;
        }
        MockReply::Answer { content, usage } if stream => {
            let body: String = sse(&pieces(&content, 3), usage).concat();
            let mut resp = tiny_http::Response::from_string(body);
            if let Ok(h) = event_stream() {
                resp.add_header(h);
            }
            let _ = req.respond(resp);
            return;
        }
        MockReply::Answer { content, usage } => {
            let mut doc = json!({
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "mock",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": null
                }]
            });
            if let Some(u) = usage {
                doc["usage"] = usage_doc(u);
            }
            (200, doc.to_string(), None)
        }
        MockReply::Error {
            status,
            retry_after,
        } => {
            let doc = json!({"error": {"message": format!("mock error {status}"),
                                       "type": "mock", "param": null, "code": null}});
            (status, doc.to_string(), retry_after)
        }
        MockReply::Raw { status, body } => (status, body, None),
    };
    let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", "application/json") {
        resp.add_header(h);
    }
    if let Some(v) = retry_after {
        if let Ok(h) = tiny_http::Header::from_bytes("Retry-After", v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = req.respond(resp);
}
