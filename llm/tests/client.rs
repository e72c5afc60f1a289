//! The HTTP client against a scripted local server: what is retried, how long it waits, what
//! is reported.

use llm::http::HttpLlm;
use llm::mock::{MockReply, MockServer};
use llm::{Llm, LlmConfig, LlmError, Message};
use std::time::{Duration, Instant};

fn client(server: &MockServer) -> HttpLlm {
    let mut c = LlmConfig::new(server.url(), "m");
    c.backoff_s = 0.05;
    c.max_backoff_s = 5.0;
    c.max_retries = 3;
    c.timeout_s = 0.5;
    HttpLlm::new(c).unwrap()
}

fn ask(llm: &mut HttpLlm) -> Result<llm::Reply, LlmError> {
    llm.chat(&[Message::system("s"), Message::user("hello")], 0)
}

#[test]
fn sends_the_openai_request_and_reads_the_answer_and_usage() {
    let server = MockServer::start(vec![MockReply::answer("hi")]).unwrap();
    let mut c = LlmConfig::new(server.url(), "qwen");
    c.seed = Some(7);
    c.top_p = Some(0.9);
    c.max_tokens = Some(256);
    c.price_per_mtok = Some((2.0, 8.0));
    let r = HttpLlm::new(c)
        .unwrap()
        .chat(&[Message::user("q")], 0)
        .unwrap();
    assert_eq!(r.content, "hi");
    assert_eq!(
        (
            r.usage.unwrap().prompt_tokens,
            r.usage.unwrap().completion_tokens
        ),
        (100, 50)
    );
    assert_eq!(r.requests, 1);
    assert!((r.cost_usd.unwrap() - 600e-6).abs() < 1e-12);
    let body = &server.received()[0].body;
    assert_eq!(body["model"], "qwen");
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["messages"][0]["content"], "q");
    assert_eq!(body["seed"], 7);
    assert_eq!(body["max_completion_tokens"], 256);
    assert!((body["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(
        server.received()[0].authorization,
        None,
        "no key configured, none sent"
    );
}

#[test]
fn rate_limits_wait_as_long_as_retry_after_says() {
    let server = MockServer::start(vec![
        MockReply::Error {
            status: 429,
            retry_after: Some("1".into()),
        },
        MockReply::answer("ok"),
    ])
    .unwrap();
    let r = ask(&mut client(&server)).unwrap();
    assert_eq!((r.content.as_str(), r.requests), ("ok", 2));
    let t = server.received();
    let gap = t[1].at - t[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
    assert!(gap < Duration::from_secs(3), "waited {gap:?}");
}

#[test]
fn server_errors_back_off_exponentially_then_give_up() {
    let e500 = || MockReply::Error {
        status: 500,
        retry_after: None,
    };
    let server = MockServer::start(vec![
        e500(),
        e500(),
        e500(),
        e500(),
        MockReply::answer("late"),
    ])
    .unwrap();
    let err = ask(&mut client(&server)).unwrap_err();
    match &err {
        LlmError::Status {
            status: 500,
            requests: 4,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("HTTP 500 after 4 request(s)"),
        "{err}"
    );
    let t: Vec<Instant> = server.received().iter().map(|r| r.at).collect();
    // 0.05 s doubling, each with half of it random: gaps within [d/2, d] (+ scheduling).
    for (k, w) in t.windows(2).enumerate() {
        let d = 0.05 * 2f64.powi(k as i32);
        let gap = (w[1] - w[0]).as_secs_f64();
        assert!(
            gap >= 0.5 * d - 0.005 && gap < d + 0.2,
            "retry {k}: {gap} s for d = {d}"
        );
    }
}

#[test]
fn client_errors_are_not_retried() {
    let bad = || MockReply::Error {
        status: 400,
        retry_after: None,
    };
    let server = MockServer::start(vec![bad(), bad()]).unwrap();
    let err = ask(&mut client(&server)).unwrap_err();
    // Once more without the stream fields (which some servers refuse), then no retry.
    assert!(
        matches!(
            err,
            LlmError::Status {
                status: 400,
                requests: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert!(received[1].body.get("stream").is_none());
}

#[test]
fn timeouts_and_malformed_bodies_are_retried() {
    let server = MockServer::start(vec![
        MockReply::Delay {
            secs: 1.5,
            then: Box::new(MockReply::answer("too late")),
        },
        MockReply::Raw {
            status: 200,
            body: "{\"choices\": [".into(),
        },
        MockReply::Raw {
            status: 200,
            body: "<html>gateway</html>".into(),
        },
        MockReply::answer("finally"),
    ])
    .unwrap();
    let r = ask(&mut client(&server)).unwrap();
    assert_eq!((r.content.as_str(), r.requests), ("finally", 4));
    // None of the first three gave a usable answer after it was sent (silence, then two
    // bodies that do not parse): each may have been billed, and each is counted.
    assert_eq!(r.abandoned, 3);
}

/// A server that refuses the stream fields (strict OpenAI-compatible APIs answer 400) is
/// asked again without them, at once, and the client remembers it.
#[test]
fn a_server_that_refuses_streaming_is_asked_without_it() {
    let server = MockServer::respond_with(|body| {
        if body.get("stream").is_some() {
            MockReply::Error {
                status: 400,
                retry_after: None,
            }
        } else {
            MockReply::answer("plain")
        }
    })
    .unwrap();
    let mut llm = client(&server);
    let r = ask(&mut llm).unwrap();
    assert_eq!(
        (r.content.as_str(), r.requests, r.abandoned),
        ("plain", 2, 0)
    );
    let r = ask(&mut llm).unwrap();
    assert_eq!(
        r.requests, 1,
        "the second call does not try streaming again"
    );
}

/// A model that writes for longer than the idle timeout, without pausing that long: streamed,
/// the answer arrives whole at the first request (a whole-answer timeout cut it and sent it
/// again, to be billed twice). The request asks for a stream with usage.
#[test]
fn a_long_answer_streams_in_once() {
    let long: String = (0..400).map(|i| format!("line {i}\n")).collect();
    let server = MockServer::start(vec![MockReply::Slow {
        content: long.clone(),
        secs: 2.0,
    }])
    .unwrap();
    let mut llm = client(&server); // idle timeout 0.5 s
    let t = Instant::now();
    let r = ask(&mut llm).unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs_f64(1.8),
        "{:?}",
        t.elapsed()
    );
    assert_eq!((r.content, r.requests, r.abandoned), (long, 1, 0));
    assert_eq!(r.usage.unwrap().completion_tokens, 50);
    let body = &server.received()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(server.received().len(), 1);
}

/// A server that ignores `stream` and answers with one JSON document is read as before.
#[test]
fn a_whole_json_answer_is_read_too() {
    let doc = serde_json::json!({
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
                     "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    });
    let server = MockServer::start(vec![MockReply::Raw {
        status: 200,
        body: doc.to_string(),
    }])
    .unwrap();
    let r = ask(&mut client(&server)).unwrap();
    assert_eq!(
        (r.content.as_str(), r.usage.unwrap().completion_tokens),
        ("whole", 4)
    );
}

#[test]
fn a_body_that_never_parses_is_a_clear_error() {
    let bad = || MockReply::Raw {
        status: 200,
        body: "not json at all".into(),
    };
    let server = MockServer::start(vec![bad(), bad(), bad(), bad()]).unwrap();
    let err = ask(&mut client(&server)).unwrap_err().to_string();
    assert!(
        err.contains("malformed response after 4 request(s)"),
        "{err}"
    );
    assert!(err.contains("not json at all"), "the body is quoted: {err}");
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = LlmConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
    c.backoff_s = 0.01;
    c.max_retries = 2;
    let err = HttpLlm::new(c)
        .unwrap()
        .chat(&[Message::user("q")], 0)
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Transport { requests: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn a_missing_key_variable_is_named() {
    let mut c = LlmConfig::new("http://127.0.0.1:9/v1", "m");
    c.api_key_env = Some("HEP_AGENT_SURELY_UNSET_KEY".into());
    let err = HttpLlm::new(c).err().unwrap().to_string();
    assert!(err.contains("HEP_AGENT_SURELY_UNSET_KEY"), "{err}");
}
