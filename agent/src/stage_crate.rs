//! The model's code as a crate: `templates/stage/` (Cargo.toml + the runner `main.rs`) plus the
//! model's `src/stage.rs`, in a temporary directory, depending on the workspace's `analysis`
//! crate (without plots) and built with `cargo build --offline --message-format=json` into a
//! shared target directory (`target/agent-stages`). The repository's Cargo.lock pins every
//! dependency and the features never change, so after one warm-up build only the stage crate
//! compiles. Each crate has a unique package name (its directory's), so two crates are never
//! the same cargo unit (cargo hashes a path package by its workspace-relative path and judges
//! freshness by mtimes: same-named crates built in turn can be taken for one another). Its
//! build products are removed with it. Cargo runs with a scrubbed environment: `env!` in
//! generated code sees no keys.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A stage build that takes longer than this is stopped (e.g. a huge `const` array).
const BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

const CARGO_TOML: &str = include_str!("../../templates/stage/Cargo.toml.in");
const MAIN_RS: &str = include_str!("../../templates/stage/src/main.rs.in");

/// Which stage trait the crate's `Stage` implements: the runner calls
/// `analysis::stage::json::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Select,
    Histogram,
    Fit,
}

impl StageKind {
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Select => "select",
            StageKind::Histogram => "histogram",
            StageKind::Fit => "fit",
        }
    }
    /// The trait the model implements.
    pub fn trait_name(self) -> &'static str {
        match self {
            StageKind::Select => "Select",
            StageKind::Histogram => "MakeHistogram",
            StageKind::Fit => "Fit",
        }
    }
    /// A stage that compiles and does nothing useful: what the warm-up build compiles.
    fn placeholder(self) -> String {
        let (imports, sig) = match self {
            StageKind::Select => (
                "PhotonEvents, Cuts, SelectOutput",
                "fn select(&self, _: &PhotonEvents, _: &Cuts) -> Result<SelectOutput, StageError>",
            ),
            StageKind::Histogram => (
                "Diphotons, Binning, Histogram",
                "fn histogram(&self, _: &Diphotons, _: &Binning) -> Result<Histogram, StageError>",
            ),
            StageKind::Fit => (
                "FitModel, Histogram, FitResult",
                "fn fit(&self, _: &FitModel, _: &Histogram) -> Result<FitResult, StageError>",
            ),
        };
        format!(
            "use analysis::stage::{{{}, StageError, {imports}}};\npub struct Stage;\n\
             impl {} for Stage {{ {sig} {{ Err(\"placeholder\".into()) }} }}\n",
            self.trait_name(),
            self.trait_name()
        )
    }
}

/// Where stages are compiled: the `analysis` crate to link and the shared target directory.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// The workspace root (holds `analysis/`, `vendor/oxyroot/`, `Cargo.lock`).
    pub repo: PathBuf,
    pub target_dir: PathBuf,
}

impl Default for Toolchain {
    /// The workspace this crate was built in; `$CARGO_TARGET_DIR/agent-stages` or
    /// `target/agent-stages`.
    fn default() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        // Cargo runs in the stage crate's directory: a relative target dir would move.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| std::env::current_dir().map(|d| d.join(&t)).unwrap_or(t))
            .unwrap_or_else(|| repo.join("target"));
        Self {
            repo,
            target_dir: target.join("agent-stages"),
        }
    }
}

/// One compiler message, as cargo's JSON gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub level: String,
    /// Error code (`E0308`), when there is one.
    pub code: Option<String>,
    pub message: String,
    /// The compiler's text with the offending lines.
    pub rendered: String,
}

/// The result of `cargo check` or `cargo build` on the stage crate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub ok: bool,
    /// Errors and warnings in the stage's own code.
    pub diagnostics: Vec<Diagnostic>,
    /// Cargo's own stderr when it failed without a compiler message (e.g. a resolution error).
    pub cargo_error: Option<String>,
    /// The compiled runner (`cargo build` only).
    #[serde(skip)]
    pub binary: Option<PathBuf>,
    /// Wall-clock seconds (not in trajectories: it differs between runs).
    #[serde(skip)]
    pub wall_s: f64,
}

impl Build {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.level == "error")
    }
}

/// A stage crate in a temporary directory.
pub struct StageCrate {
    dir: tempfile::TempDir,
    /// Package and binary name: the directory's unique name.
    package: String,
    toolchain: Toolchain,
    pub kind: StageKind,
}

impl Toolchain {
    /// Writes a new stage crate (Cargo.toml, Cargo.lock, the runner) for `kind`.
    pub fn new_crate(&self, kind: StageKind) -> std::io::Result<StageCrate> {
        // Under the target directory, not /tmp: cargo reads `.cargo/config.toml` from every
        // parent directory, and anyone can write one into /tmp.
        let parent = self.target_dir.join("crates");
        std::fs::create_dir_all(&parent)?;
        let dir = tempfile::Builder::new()
            .prefix("stage-")
            .tempdir_in(&parent)?;
        let package = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stage".into());
        let fill = |t: &str| {
            t.replace("{{package}}", &package)
                .replace(
                    "{{analysis}}",
                    &self.repo.join("analysis").display().to_string(),
                )
                .replace(
                    "{{oxyroot}}",
                    &self.repo.join("vendor/oxyroot").display().to_string(),
                )
                .replace("{{stage}}", kind.name())
                .replace(
                    "{{api_version}}",
                    &analysis::stage::STAGE_API_VERSION.to_string(),
                )
        };
        std::fs::create_dir(dir.path().join("src"))?;
        std::fs::write(dir.path().join("Cargo.toml"), fill(CARGO_TOML))?;
        std::fs::write(dir.path().join("src/main.rs"), fill(MAIN_RS))?;
        let lock = self.repo.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(lock, dir.path().join("Cargo.lock"))?;
        }
        Ok(StageCrate {
            dir,
            package,
            toolchain: self.clone(),
            kind,
        })
    }

    /// Builds a placeholder stage of every kind once, so that later builds compile only the
    /// stage (the first call on a machine compiles `analysis` and its dependencies: minutes).
    pub fn warm_up(&self) -> Result<(), String> {
        for kind in [StageKind::Select, StageKind::Histogram, StageKind::Fit] {
            let c = self.new_crate(kind).map_err(|e| e.to_string())?;
            c.write_code(&kind.placeholder())
                .map_err(|e| e.to_string())?;
            let b = c.build();
            if !b.ok {
                return Err(format!(
                    "the stage toolchain does not build: {}",
                    condense(&b, c.path(), 4000)
                ));
            }
        }
        Ok(())
    }
}

impl StageCrate {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces `src/stage.rs` with the model's code.
    pub fn write_code(&self, code: &str) -> std::io::Result<()> {
        std::fs::write(self.path().join("src/stage.rs"), code)
    }

    /// `cargo check`: diagnostics only.
    pub fn check(&self) -> Build {
        self.cargo("check")
    }

    /// `cargo build`: diagnostics and, on success, the runner binary.
    pub fn build(&self) -> Build {
        self.cargo("build")
    }

    fn cargo(&self, verb: &str) -> Build {
        let start = Instant::now();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg(verb)
            .args(["--offline", "--quiet", "--message-format=json"])
            .current_dir(self.path())
            .env_clear()
            .env("CARGO_TARGET_DIR", &self.toolchain.target_dir)
            .env("CARGO_TERM_COLOR", "never");
        // Only what cargo and rustup need to find the toolchain; never API keys.
        for var in [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
        ] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        let out = match output_with_timeout(cmd, BUILD_TIMEOUT) {
            Ok(o) => o,
            Err(e) => {
                return Build {
                    ok: false,
                    diagnostics: vec![],
                    cargo_error: Some(format!("running cargo: {e}")),
                    binary: None,
                    wall_s: start.elapsed().as_secs_f64(),
                }
            }
        };
        let dir = self
            .path()
            .canonicalize()
            .unwrap_or_else(|_| self.path().to_path_buf());
        let mut build = parse_messages(&String::from_utf8_lossy(&out.stdout), &dir);
        build.ok &= out.status.success();
        if !build.ok && build.errors().next().is_none() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            build.cargo_error = Some(tail(&stderr, 4000));
        }
        build.wall_s = start.elapsed().as_secs_f64();
        build
    }
}

impl Drop for StageCrate {
    /// Removes this crate's build products from the shared target directory (the directory
    /// itself goes with the `TempDir`), so that many runs do not fill the disk.
    fn drop(&mut self) {
        let debug = self.toolchain.target_dir.join("debug");
        let (dash, underscore) = (
            format!("{}-", self.package),
            format!("{}-", self.package.replace('-', "_")),
        );
        let _ = std::fs::remove_file(debug.join(&self.package));
        let _ = std::fs::remove_file(debug.join(format!("{}.d", self.package)));
        for sub in ["deps", ".fingerprint", "incremental"] {
            for e in std::fs::read_dir(debug.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&dash) || name.starts_with(&underscore) {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        }
    }
}

/// `Command::output` with a wall-clock limit (the process is killed at it).
fn output_with_timeout(
    mut cmd: Command,
    limit: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let pid = child.id();
    let (done, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: plain kill(2) of our child, which is not reaped before `done` is sent.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let mut stdout = Vec::new();
    let _ = so.read_to_end(&mut stdout);
    let status = child.wait();
    let _ = done.send(());
    let _ = watchdog.join();
    let status = status?;
    let mut stderr = reader.join().unwrap_or_default();
    if status.code().is_none() {
        stderr.extend_from_slice(
            format!("\nthe build was stopped after {} s\n", limit.as_secs()).as_bytes(),
        );
    }
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

/// Reads cargo's JSON lines: compiler messages of this crate, the executable, success.
fn parse_messages(stdout: &str, crate_dir: &Path) -> Build {
    let mut b = Build {
        ok: false,
        diagnostics: vec![],
        cargo_error: None,
        binary: None,
        wall_s: 0.0,
    };
    let prefix = crate_dir.display().to_string();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let ours = v["target"]["src_path"]
            .as_str()
            .is_some_and(|p| p.starts_with(&prefix));
        match v["reason"].as_str() {
            Some("compiler-message") if ours => {
                let m = &v["message"];
                let message = m["message"].as_str().unwrap_or("").to_string();
                // The summary lines ("aborting due to 2 previous errors") repeat the count.
                if message.starts_with("aborting due to")
                    || message.contains("warning emitted")
                    || message.contains("warnings emitted")
                {
                    continue;
                }
                b.diagnostics.push(Diagnostic {
                    level: m["level"].as_str().unwrap_or("").to_string(),
                    code: m["code"]["code"].as_str().map(str::to_string),
                    message,
                    rendered: m["rendered"].as_str().unwrap_or("").replace(&prefix, "."),
                });
            }
            Some("compiler-artifact") if ours => {
                b.binary = v["executable"].as_str().map(PathBuf::from);
            }
            Some("build-finished") => b.ok = v["success"].as_bool().unwrap_or(false),
            _ => {}
        }
    }
    b
}

/// The diagnostics as the model sees them: errors first (then warnings if none), each once,
/// the rendered text with the offending lines, cut to `budget` characters.
pub fn condense(build: &Build, crate_dir: &Path, budget: usize) -> String {
    let mut shown: Vec<&str> = Vec::new();
    let errors: Vec<&Diagnostic> = build.errors().collect();
    let pool: Vec<&Diagnostic> = if errors.is_empty() {
        build.diagnostics.iter().collect()
    } else {
        errors
    };
    let mut out = String::new();
    let mut omitted = 0;
    for d in pool {
        let text = d.rendered.trim_end();
        if shown.contains(&text) {
            continue;
        }
        if out.len() + text.len() + 2 > budget {
            if out.is_empty() {
                // Even the first message is too long: its head says the most.
                let cut = (0..=budget.min(text.len()))
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                out.push_str(&text[..cut]);
                out.push_str("\n[... cut]\n\n");
                shown.push(text);
                continue;
            }
            omitted += 1;
            continue;
        }
        shown.push(text);
        out.push_str(text);
        out.push_str("\n\n");
    }
    if omitted > 0 {
        out.push_str(&format!("... and {omitted} more message(s) not shown.\n"));
    }
    if let Some(e) = &build.cargo_error {
        out.push_str(&e.replace(&crate_dir.display().to_string(), "."));
    }
    out.trim_end().to_string()
}

fn tail(s: &str, max: usize) -> String {
    let start = s.len().saturating_sub(max);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_string()
}
