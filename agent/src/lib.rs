//! The LLM agent that writes analysis stages: prompt → code → `cargo build` → sandboxed run →
//! validation against the reference stage, with the compiler's diagnostics and the
//! supervisor's reviews as the correction signal.
//!
//! Read [`run::run_task`] first: the whole loop in one function. Its pieces, each usable alone:
//! * [`task`]: tasks as data (`templates/tasks/*.toml`), their inputs and references;
//! * [`prompts`]: the prompt templates (`templates/prompts/*.md`);
//! * [`check`]: one answer's code through screen, build, sandbox and validation;
//! * [`policy`]: a fast static screen of generated code;
//! * [`stage_crate`]: the generated stage as a crate, compiled against `stage-api`;
//! * [`stage_run`]: a built stage run in the sandbox per batch (`analyze --stage`);
//! * [`outcome`]: how a stage's sandboxed run ended (the `sandbox` crate confines it);
//! * [`stages`]: one module per stage kind: its cases, sanity checks and comparison;
//! * [`validate`]: the checks' framework, the tolerances, what a hint may say;
//! * [`trajectory`]: every call and attempt as JSONL;
//! * [`untrusted`]: text from model code made inert for prompts, terminals and reports;

pub mod check;
pub mod outcome;
pub mod policy;
pub mod prompts;
pub mod run;
pub mod stage_crate;
pub mod stage_run;
pub mod stages;
pub mod task;
pub mod trajectory;
pub mod untrusted;
pub mod validate;
