//! The API key goes in the Authorization header and nowhere else: not in the request body,
//! not in the cassette. One test in its own binary: it sets a variable of this process.

use llm::cassette::{Recorder, Replayer};
use llm::http::HttpLlm;
use llm::mock::{MockReply, MockServer};
use llm::{Llm, LlmConfig, Message};

#[test]
fn the_key_is_sent_as_a_bearer_token_and_never_recorded() {
    let key = "sk-test-0123456789abcdef";
    // SAFETY: the only test of this binary, before it starts any thread.
    unsafe { std::env::set_var("HEP_AGENT_KEY_UNDER_TEST", key) };
    let server = MockServer::start(vec![MockReply::answer(format!("echo {key}"))]).unwrap();
    let mut c = LlmConfig::new(format!("{}?key={key}", server.url()), "m");
    c.base_url = server.url(); // the query form is checked through public_url below
    c.api_key_env = Some("HEP_AGENT_KEY_UNDER_TEST".into());
    let http = HttpLlm::new(c.clone()).unwrap();
    let secrets = http.secrets();
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("c.jsonl");
    let mut rec = Recorder::new(http, &cassette, secrets).unwrap();
    let reply = rec.chat(&[Message::user("q")], 0).unwrap();
    assert_eq!(reply.content, format!("echo {key}"));

    let got = &server.received()[0];
    assert_eq!(
        got.authorization.as_deref(),
        Some(format!("Bearer {key}").as_str())
    );
    assert!(!got.body.to_string().contains(key));
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(!text.contains(key), "{text}");
    assert!(text.contains("[REDACTED]"));
    // A replay answers with the redacted text, and never needs the key.
    let mut replay = Replayer::open(&cassette, c).unwrap();
    assert_eq!(
        replay.chat(&[Message::user("q")], 0).unwrap().content,
        "echo [REDACTED]"
    );

    let mut q = LlmConfig::new(format!("https://example.invalid/v1?key={key}"), "m");
    q.api_key_env = None;
    assert_eq!(q.public_url(), "https://example.invalid/v1");
}
