//! A stage that goes looking for the API key finds nothing: not in its environment, not in
//! the agent's `/proc/PID/environ`, not at compile time through `env!` (the build runs with a
//! scrubbed environment). One test in its own binary, because it sets a variable of this
//! process before any other thread runs.

mod support;

use agent::outcome::RunClass;
use sandbox::{self, Limits, RunDir};
use stage_api::StageKind;
use support::{build, histogram_input, histogram_stage};

const CANARY: &str = "sk-canary-7d3f0c1e9a";

#[test]
fn the_api_key_is_not_reachable_from_a_stage() {
    // SAFETY: the only test of this binary, before it starts any thread.
    unsafe { std::env::set_var("HEP_AGENT_TEST_KEY", CANARY) };
    let me = std::process::id();
    let body = format!(
        "let mut found = String::new();\n\
         if let Ok(k) = std::env::var(\"HEP_AGENT_TEST_KEY\") {{ found.push_str(&k); }}\n\
         found.push_str(&format!(\"|vars={{:?}}\", std::env::vars().map(|(k, _)| k).collect::<Vec<_>>()));\n\
         let compiled: Option<&str> = option_env!(\"HEP_AGENT_TEST_KEY\");\n\
         found.push_str(&format!(\"|compile={{compiled:?}}\"));\n\
         match std::fs::read(\"/proc/{me}/environ\") {{\n\
             Ok(b) => found.push_str(&String::from_utf8_lossy(&b)),\n\
             Err(e) => found.push_str(&format!(\"|environ: {{e}}\")),\n\
         }}\n\
         std::fs::write(\"found.txt\", &found).unwrap();\n\
         Err(found.into())"
    );
    let (_krate, bin) = build(StageKind::Histogram, &histogram_stage(&body));
    let bytes = std::fs::read(&bin).unwrap();
    assert!(
        !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "key compiled in"
    );

    let limits = Limits::default();
    let dir = RunDir::new(
        &bin,
        &[("input.json", histogram_input().as_bytes())],
        &limits,
    )
    .unwrap();
    let out = dir.out().join("output.json");
    let r = agent::outcome::run(&dir, &[dir.input("input.json"), out], &limits);
    // The agent's process is not even visible in the stage's /proc (without namespaces,
    // /proc is not readable at all); the stage then returns its error.
    assert_eq!(r.class, RunClass::StageError, "{r:?}");
    let found = std::fs::read_to_string(dir.out().join("found.txt")).unwrap();
    assert!(!found.contains(CANARY), "the stage found the key: {found}");
    assert!(!r.stderr_tail.contains(CANARY));
    assert!(found.contains("|compile=None"), "{found}");
    assert!(
        found.contains("|environ:"),
        "reading the agent's environ must fail: {found}"
    );
    // Only the sandbox's own variables are set.
    for var in [
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "RAYON_NUM_THREADS",
        "MALLOC_ARENA_MAX",
    ] {
        assert!(found.contains(&format!("\"{var}\"")), "{found}");
    }
    assert_eq!(
        found.matches("\", \"").count() + 1,
        6,
        "unexpected variables: {found}"
    );
}
