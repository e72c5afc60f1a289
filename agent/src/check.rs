//! The deterministic half of an attempt: one answer's code through the screen, the confined
//! build, the sandboxed run and the validation, each step recorded into the attempt.
//! No model is called here; [`crate::run`] decides what to do with the [`Verdict`].

use crate::outcome::RunClass;
use crate::policy::{self, Violation};
use crate::prompts::render;
use crate::stage_crate::{condense, StageCrate};
use crate::stages::validate;
use crate::task::{Prepared, Task};
use crate::trajectory::{BuildRecord, Call, HeldOutRecord, Record, RunRecord};
use crate::validate::Validation;
use sandbox::{self, Limits, RunDir};
use serde::Serialize;

/// What became of one answer.
#[derive(Debug)]
pub enum Verdict {
    /// Back to the coder as it is (no code, code policy, compile errors, refused reads):
    /// the rendered feedback prompt.
    Fix(String),
    /// It ran but failed (the run's class, or validation): for the supervisor to review.
    Failed {
        /// What went wrong, in a few words (e.g. "its output failed validation").
        failure: String,
        /// The details for the supervisor's review (e.g. exit and stderr tail, or the hints).
        report: String,
    },
    /// It passed validation, or the sanity checks when no reference covers the instruction:
    /// the validation and the output document.
    Passed(Validation, String),
    /// The harness itself failed (disk, permissions).
    Harness(String),
}

/// Wall-clock seconds of one attempt's build and run (kept out of the trajectory).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timing {
    /// The attempt's number, from 1.
    pub iteration: u32,
    /// Seconds the build took; `None` when nothing was built.
    pub build_s: Option<f64>,
    /// Seconds the sandboxed runs took (held-out ones included); `None` when nothing ran.
    pub run_s: Option<f64>,
}

/// An attempt record being filled in; pushed once.
pub struct Attempt {
    iteration: u32,
    call: Option<Call>,
    code: Option<String>,
    policy: Vec<Violation>,
    build: Option<BuildRecord>,
    run: Option<RunRecord>,
    validation: Option<Validation>,
    held_out: Option<HeldOutRecord>,
    /// Wall-clock seconds of its build and runs, filled in as they happen.
    pub timing: Timing,
}

impl Attempt {
    /// A new attempt numbered `iteration` for the coder's `call`, nothing checked yet.
    pub fn new(iteration: u32, call: Call) -> Self {
        Self {
            iteration,
            call: Some(call),
            code: None,
            policy: vec![],
            build: None,
            run: None,
            validation: None,
            held_out: None,
            timing: Timing {
                iteration,
                ..Timing::default()
            },
        }
    }

    /// The record, once; `None` if it was already taken.
    pub fn take(&mut self) -> Option<Record> {
        let call = self.call.take()?;
        Some(Record::Attempt {
            iteration: self.iteration,
            call,
            code: self.code.take(),
            policy: std::mem::take(&mut self.policy),
            build: self.build.take(),
            run: self.run.take(),
            validation: self.validation.take(),
            held_out: self.held_out.take(),
        })
    }
}

/// Everything needed to check code for one task.
pub struct Checker<'a> {
    /// The task the code is for (its stage, tolerances and allowed std modules).
    pub task: &'a Task,
    /// The stage crate the code is written into and built in.
    pub krate: &'a StageCrate,
    /// The task's inputs and references: the visible case and the held-out ones.
    pub prepared: &'a Prepared,
    /// Limits of each sandboxed run of the stage.
    pub limits: &'a Limits,
    /// Budget of the condensed diagnostics, characters.
    pub diagnostics_budget: usize,
    /// Whether the static screen runs (see [`crate::run::Options::screen`]).
    pub screen: bool,
    /// Held during the build and during the run (see [`crate::run::Options::cores`]).
    pub cores: Option<&'a llm::gate::Gate>,
}

fn violations(a: &Attempt) -> String {
    let list: Vec<String> = a.policy.iter().map(|v| format!("- {v}")).collect();
    render("coder_policy", &[("violations", &list.join("\n"))])
}

impl Checker<'_> {
    /// Checks `code` (the answer's code block, if it had one), filling in `a`.
    pub fn check(
        &self,
        code: Option<String>,
        a: &mut Attempt,
        progress: &mut dyn FnMut(&str),
    ) -> Verdict {
        a.code = code.clone();
        let Some(code) = code else {
            progress("  no code block in the answer");
            return Verdict::Fix(render("coder_no_code", &[]));
        };

        // The screen, then the build.
        if self.screen {
            a.policy = policy::check_allowing(&code, &self.task.allow_std);
        }
        if !a.policy.is_empty() {
            progress(&format!(
                "  rejected by the code policy: {}",
                a.policy[0].rule
            ));
            return Verdict::Fix(violations(a));
        }
        if let Err(e) = self.krate.write_code(&code) {
            return Verdict::Harness(format!("writing the stage: {e}"));
        }
        let permit = self.cores.map(|g| g.acquire());
        let build = self.krate.build();
        drop(permit);
        a.timing.build_s = Some(build.wall_s);
        if let Some(e) = &build.setup_error {
            return Verdict::Harness(e.clone());
        }
        // A compile-time read the sandbox refused is a policy violation, whatever else the
        // compiler said; the message names the path the code wrote, never a file's content.
        if !build.refused_reads.is_empty() {
            // Paths as the code wrote them, escaped: control characters in a path must not
            // reach a terminal.
            let paths: Vec<String> = build
                .refused_reads
                .iter()
                .map(|p| p.escape_debug().to_string())
                .collect();
            a.policy = paths
                .iter()
                .map(|p| Violation {
                    kind: "compile_time_read".into(),
                    rule: format!(
                        "reads `{p}` at compile time: a stage may read nothing outside its \
                         own crate at compile time (no include_str!/include_bytes!/#[path] \
                         to other files)"
                    ),
                    line: 0,
                })
                .collect();
            progress(&format!(
                "  build refused {} compile-time read(s): {}",
                paths.len(),
                paths.join(", ")
            ));
            a.build = Some(BuildRecord {
                ok: false,
                error_codes: vec![],
                errors: build.errors().count(),
                warnings: 0,
                diagnostics: String::new(),
            });
            return Verdict::Fix(violations(a));
        }
        let diagnostics = condense(&build, self.krate.path(), self.diagnostics_budget);
        let errors: Vec<_> = build.errors().collect();
        a.build = Some(BuildRecord {
            ok: build.ok,
            error_codes: errors.iter().filter_map(|d| d.code.clone()).collect(),
            errors: errors.len(),
            warnings: build
                .diagnostics
                .iter()
                .filter(|d| d.level == "warning")
                .count(),
            diagnostics: if build.ok {
                String::new()
            } else {
                diagnostics.clone()
            },
        });
        let binary = match (&build.binary, build.ok) {
            (Some(b), true) => b.clone(),
            _ => {
                progress(&format!(
                    "  build failed ({} errors, {:.2} s)",
                    errors.len(),
                    build.wall_s
                ));
                return Verdict::Fix(render(
                    "coder_compile_error",
                    &[("diagnostics", &diagnostics)],
                ));
            }
        };

        // The sandboxed run on the visible input.
        progress(&format!(
            "  built in {:.2} s; running in the sandbox",
            build.wall_s
        ));
        let p = self.prepared;
        let visible = match self.run_case(&binary, &p.input, &p.files, p.reference.as_ref()) {
            Ok(c) => c,
            Err(e) => return Verdict::Harness(e),
        };
        let report = visible.report;
        a.timing.run_s = Some(report.wall_s);
        a.run = Some(RunRecord {
            class: report.class,
            exit: report.exit,
            claim: report.claim,
            stderr_tail: report.stderr_tail.clone(),
        });
        let Some((text, v)) = visible.output else {
            progress(&format!(
                "  run: {:?} ({:.2} s)",
                report.class, report.wall_s
            ));
            return Verdict::Failed {
                failure: format!("its run ended with {:?}", report.class),
                report: format!(
                    "Exit: {:?}\n{}",
                    report.exit,
                    crate::untrusted::quoted(
                        "The end of the stage's stderr",
                        &report.stderr_tail,
                        4000
                    )
                ),
            };
        };
        a.validation = Some(v.clone());
        if v.passed && v.validated {
            // The held-out inputs: of these the model learns the failed checks' names or the
            // run's class, nothing else (not its stderr: the stage could print its input).
            for case in &p.held_out {
                let run =
                    match self.run_case(&binary, &case.input, &case.files, case.reference.as_ref())
                    {
                        Ok(c) => c,
                        Err(e) => return Verdict::Harness(e),
                    };
                a.timing.run_s = Some(a.timing.run_s.unwrap_or(0.0) + run.report.wall_s);
                let validation = run.output.map(|(_, v)| v);
                a.held_out = Some(HeldOutRecord {
                    class: run.report.class,
                    validation: validation.clone(),
                });
                let what = match &validation {
                    None => format!("its run ended with {:?}", run.report.class),
                    Some(h) if !h.passed => {
                        let failed: Vec<&str> = h
                            .checks
                            .iter()
                            .filter(|c| !c.passed)
                            .map(|c| c.name.as_str())
                            .collect();
                        format!("it failed these checks: {}", failed.join(", "))
                    }
                    Some(_) => continue,
                };
                progress(&format!("  held-out input: {what}"));
                return Verdict::Failed {
                    failure: "its output on a held-out input failed".into(),
                    report: render("held_out_failed", &[("what", &what)]),
                };
            }
        }
        if v.passed {
            let what = if v.validated {
                "validation passed"
            } else {
                "sane, but NOT VALIDATED (no reference for this instruction)"
            };
            progress(&format!("  run ok ({:.2} s); {what}", report.wall_s));
            return Verdict::Passed(v, text);
        }
        progress(&format!(
            "  validation failed: {}",
            crate::untrusted::inert(&v.details(), 2000)
        ));
        let what = if v.validated {
            "failed validation"
        } else {
            "failed the sanity checks"
        };
        Verdict::Failed {
            failure: format!("its output {what}"),
            report: v.hints(),
        }
    }

    /// Runs `binary` on one case in the sandbox and, when it ran cleanly, validates its
    /// output. `Err`: the harness failed (a file, the run directory).
    fn run_case(
        &self,
        binary: &std::path::Path,
        input: &str,
        files: &[(String, std::path::PathBuf)],
        reference: Option<&serde_json::Value>,
    ) -> Result<CaseRun, String> {
        let mut inputs: Vec<(String, Vec<u8>)> =
            vec![("input.json".into(), input.as_bytes().to_vec())];
        for (name, path) in files {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            inputs.push((name.clone(), bytes));
        }
        let inputs: Vec<(&str, &[u8])> = inputs
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let dir =
            RunDir::new(binary, &inputs, self.limits).map_err(|e| format!("run directory: {e}"))?;
        let output = dir.out().join("output.json");
        let permit = self.cores.map(|g| g.acquire());
        let report = crate::outcome::run(
            &dir,
            &[dir.input("input.json"), output.clone()],
            self.limits,
        );
        drop(permit);
        if report.class != RunClass::Ok {
            return Ok(CaseRun {
                report,
                output: None,
            });
        }
        // Validation (sanity checks only when there is no reference). Read at most what a
        // right answer can take (pretty JSON of the reference's size, with room), not the
        // whole file-size limit: the agent parses it.
        let expected = reference.map_or(input.len(), |r| {
            serde_json::to_string(r).map_or(0, |t| t.len())
        }) as u64;
        let cap = (16 * expected).max(1 << 20).min(self.limits.max_file_bytes);
        let text = sandbox::read_output(&output, cap)
            .unwrap_or_else(|e| format!("(unreadable output: {e})"));
        let v = validate(
            self.task.stage,
            &text,
            Some(&dir.out()),
            reference,
            &self.task.tolerances,
        );
        Ok(CaseRun {
            report,
            output: Some((text, v)),
        })
    }
}

/// One case's run: how it ended and, when it ran cleanly, its output and validation.
struct CaseRun {
    report: crate::outcome::RunReport,
    output: Option<(String, Validation)>,
}
