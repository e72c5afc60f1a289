//! The model's code as a crate, compiled inside the sandbox.
//!
//! Two halves. The trusted one, [`Toolchain::prepare`], runs once per toolchain: cargo builds
//! the `stage-api` crate and its dependencies (the workspace's own contract crate and
//! crates.io crates pinned by `Cargo.lock`; no model code) into their own target directory,
//! and the compiler's sysroot is located. The untrusted one, [`StageCrate::build`], compiles
//! one stage: `rustc` on the runner (`templates/stage/main.rs`) and the model's
//! `src/stage.rs`, with `--extern stage_api=...` and `-L dependency=...` pointing at those
//! prebuilt artifacts, in the same sandbox the stage later runs in (the `sandbox` crate): a
//! uid of its own, no network, the toolchain and the artifacts bind-mounted read-only into
//! its mount namespace, Landlock reads of only those, the system's compiler and libraries and
//! its own source, writes only to its own `out/`, control-group and rlimit limits, a 30 s
//! wall clock that kills everything it started.
//!
//! Why `rustc` and not `cargo` for the stage: cargo shares one lock and one `deps/` directory
//! between all builds in a target directory, so one hostile build (a `const` that takes
//! minutes) would stall every other, and a confined cargo would need write access to what
//! the others read. Each stage compiles alone, into its own directory, against read-only
//! inputs; the crate graph is fixed (one crate, its prebuilt dependencies), so cargo has
//! nothing to add.
//!
//! What the model's crate can name is `stage_api`, `std` and the [`EXTRA_CRATES`] its task
//! lists (`--extern` for those alone): the reference implementation (`analysis`) is neither
//! linked, nor on any search path, nor readable.

use sandbox::{self, Ended, Limits};
use serde::{Deserialize, Serialize};
use stage_api::StageKind;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

const MAIN_RS: &str = include_str!("../../templates/stage/main.rs");

/// Why the trusted half of the toolchain failed: preparing it, the machine's held-out key, or a
/// task's extra crates.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ToolchainError {
    /// Building the contract (or an extra crate) with cargo, or finding the sysroot, failed.
    #[error("preparing the stage toolchain: {0}")]
    Prepare(String),
    /// The held-out key could not be made or read.
    #[error("the held-out key {}: {message}", path.display())]
    HeldOutKey {
        /// The key file.
        path: PathBuf,
        /// What went wrong (the I/O error, or a key that is not 32 bytes).
        message: String,
    },
    /// A task names a crate that stages may not use.
    #[error("crate '{name}' is not one a stage may use ({known})")]
    UnknownCrate {
        /// The crate the task names.
        name: String,
        /// The packages a stage may use, comma-separated.
        known: String,
    },
}

/// Limits of one stage build: seconds, not minutes — a real stage compiles in about one.
pub fn build_limits() -> Limits {
    Limits {
        wall_s: 30.0,
        memory_bytes: 2 << 30,
        max_processes: 64,
        max_file_bytes: 256 << 20,
        max_output_bytes: 512 << 20,
        cpus: 1.0,
        weak: sandbox::Weak::Refuse,
    }
}

/// The crates a task may allow its stage beyond `stage_api` and `std` (package, crate name):
/// built with the contract by [`Toolchain::prepare`]; a stage can name one only when its task
/// lists it (`--extern` is passed for those alone; the rest of `deps/` is on the
/// `-L dependency=` path, which resolves dependencies but never a name in the code).
pub const EXTRA_CRATES: [(&str, &str); 2] = [("oxyroot", "oxyroot"), ("forust-ml", "forust_ml")];

/// What the trusted preparation found.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The compiler's sysroot (`bin/rustc`, `lib/`).
    pub sysroot: PathBuf,
    /// The prebuilt dependencies: cargo's `debug/` of a target directory that holds
    /// `stage-api`, the [`EXTRA_CRATES`] and what they pull in, nothing else.
    pub deps: PathBuf,
    /// (crate name, rlib path relative to `deps`) of `stage_api` and each extra crate.
    pub rlibs: Vec<(String, PathBuf)>,
}

/// Where stages are compiled.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// The workspace root (holds `stage-api/`, `Cargo.lock`).
    pub repo: PathBuf,
    /// `target/agent-stages`: `stage-api/`, cargo's target dir for the prebuilt dependencies
    /// (stage crates themselves live in the sandbox's scratch directory).
    pub target_dir: PathBuf,
    /// Whether its builds may run where the sandbox's isolation is weak (the runs say so in
    /// their own [`Limits::weak`]).
    pub weak: sandbox::Weak,
    prepared: Arc<OnceLock<Result<Prepared, String>>>,
}

impl Default for Toolchain {
    /// The workspace this crate was built in; `$CARGO_TARGET_DIR/agent-stages` or
    /// `target/agent-stages`.
    fn default() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| std::env::current_dir().map(|d| d.join(&t)).unwrap_or(t))
            .unwrap_or_else(|| repo.join("target"));
        Self::new(repo, target.join("agent-stages"))
    }
}

/// One compiler message, as rustc's JSON gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// rustc's level: `error`, `warning`, `note`, ...
    pub level: String,
    /// Error code (`E0308`), when there is one.
    pub code: Option<String>,
    /// The message itself, without the rendered source lines.
    pub message: String,
    /// The compiler's text with the offending lines.
    pub rendered: String,
}

/// The result of checking or building the stage crate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// Whether it compiled without errors (and, for a build, produced the runner binary).
    pub ok: bool,
    /// Errors and warnings in the stage's own code.
    pub diagnostics: Vec<Diagnostic>,
    /// Why the build failed when the compiler said nothing about the code (a limit hit, the
    /// compiler killed): deterministic text, for the model.
    pub failure: Option<String>,
    /// The compile-time reads the sandbox refused (paths as the code wrote them).
    pub refused_reads: Vec<String>,
    /// The compiled runner (builds only).
    #[serde(skip)]
    pub binary: Option<PathBuf>,
    /// The sandbox could not start the compiler: the harness's failure, not the code's.
    #[serde(skip)]
    pub setup_error: Option<String>,
    /// Wall-clock seconds (not in trajectories: it differs between runs).
    #[serde(skip)]
    pub wall_s: f64,
}

impl Build {
    /// The diagnostics at level `error`.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.level == "error")
    }
    fn harness(why: String) -> Self {
        Build {
            ok: false,
            diagnostics: vec![],
            failure: None,
            refused_reads: vec![],
            binary: None,
            setup_error: Some(why),
            wall_s: 0.0,
        }
    }
}

/// A stage crate in its own directory: `src/main.rs` (the runner), `src/stage.rs` (the
/// model's), `toolchain/` and `deps/` (mount points), `out/` (the build's only writable
/// place, owned by the crate's uid). Removed when dropped.
pub struct StageCrate {
    dir: tempfile::TempDir,
    /// The uid its builds run as (root only; one per crate, so incremental state stays its).
    uid: Option<u32>,
    prepared: Prepared,
    /// Limits of each build ([`build_limits`] unless set).
    limits: Limits,
    /// The kind of stage the crate implements.
    pub kind: StageKind,
    /// The extra crates (crate names from [`EXTRA_CRATES`]) this stage may name.
    crates: Vec<String>,
}

impl Toolchain {
    /// A toolchain for the workspace `repo` that prebuilds into `target_dir`; not yet prepared,
    /// and refusing weak isolation until `weak` is changed.
    pub fn new(repo: PathBuf, target_dir: PathBuf) -> Self {
        Self {
            repo,
            target_dir,
            weak: sandbox::Weak::Refuse,
            prepared: Arc::new(OnceLock::new()),
        }
    }

    /// The trusted preparation (once): `cargo build -p stage-api` into
    /// `target/agent-stages/stage-api`, and `rustc --print sysroot`. The first call on a
    /// machine compiles serde and the contract (tens of seconds).
    pub fn prepare(&self) -> Result<&Prepared, ToolchainError> {
        self.prepared
            .get_or_init(|| self.prepare_now())
            .as_ref()
            .map_err(|e| ToolchainError::Prepare(e.clone()))
    }

    fn prepare_now(&self) -> Result<Prepared, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let target = self.target_dir.join("stage-api");
        // One cargo call per package: cargo refuses `-p` of a non-member (forust-ml) beside
        // another `-p`. All into one target directory, so they share what they have in common.
        let mut stdout = String::new();
        for package in std::iter::once("stage-api").chain(EXTRA_CRATES.iter().map(|(p, _)| *p)) {
            let mut cmd = Command::new(&cargo);
            scrub(&mut cmd);
            cmd.args([
                "build",
                "--offline",
                "--quiet",
                "--message-format=json",
                "-p",
                package,
            ])
            .current_dir(&self.repo)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_TERM_COLOR", "never");
            let out = cmd
                .output()
                .map_err(|e| format!("running cargo for the stage toolchain: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "building {package} for the stage toolchain failed:\n{}",
                    tail(&String::from_utf8_lossy(&out.stderr), 4000)
                ));
            }
            stdout.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        // `debug/` of this target directory holds these builds and nothing else: the rlibs
        // and `deps/` with what they were compiled against.
        let deps = target.join("debug");
        let mut rlibs = Vec::new();
        for line in stdout.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let name = v["target"]["name"].as_str().unwrap_or("");
            let wanted = name == "stage_api" || EXTRA_CRATES.iter().any(|(_, n)| *n == name);
            if v["reason"] != "compiler-artifact" || !wanted {
                continue;
            }
            let rlib = v["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".rlib"))
                .map(PathBuf::from);
            if let Some(rlib) = rlib {
                let rel = rlib.strip_prefix(&deps).map_err(|_| {
                    format!(
                        "the {name} rlib {} is outside {}",
                        rlib.display(),
                        deps.display()
                    )
                })?;
                rlibs.push((name.to_string(), rel.to_path_buf()));
            }
        }
        for name in std::iter::once("stage_api").chain(EXTRA_CRATES.iter().map(|(_, n)| *n)) {
            if !rlibs.iter().any(|(n, _)| n == name) {
                return Err(format!("cargo named no {name} rlib"));
            }
        }
        let mut cmd = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
        cmd.args(["--print", "sysroot"]);
        scrub(&mut cmd);
        let out = cmd
            .output()
            .map_err(|e| format!("running rustc --print sysroot: {e}"))?;
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !sysroot.join("bin/rustc").is_file() {
            return Err(format!("no rustc in the sysroot {}", sysroot.display()));
        }
        Ok(Prepared {
            sysroot,
            deps,
            rlibs,
        })
    }

    /// This machine's secret for the held-out inputs' seeds ([`crate::task::Task::held_out_seed`]):
    /// 32 random bytes in `target/agent-stages/held-out.key` (mode 0600), made on first use.
    /// Beside the prebuilt contract, never inside it: nothing a build or a run may read.
    pub fn held_out_key(&self) -> Result<Vec<u8>, ToolchainError> {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.target_dir.join("held-out.key");
        let err = |e: std::io::Error| ToolchainError::HeldOutKey {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&self.target_dir).map_err(err)?;
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                let mut key = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut r| r.read_exact(&mut key))
                    .map_err(err)?;
                f.write_all(&key).and_then(|_| f.sync_all()).map_err(err)?;
                Ok(key.to_vec())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another agent may be writing it this instant: wait for the whole key.
                for _ in 0..100 {
                    let key = std::fs::read(&path).map_err(err)?;
                    if key.len() == 32 {
                        return Ok(key);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(ToolchainError::HeldOutKey {
                    path: path.clone(),
                    message: "not 32 bytes".into(),
                })
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Writes a new stage crate (the runner, the mount points, `out/`) for `kind`, in the
    /// sandbox's scratch directory ([`sandbox::scratch`]), not under `target/`: the build's own
    /// uid must reach it wherever the checkout is.
    pub fn new_crate(&self, kind: StageKind) -> std::io::Result<StageCrate> {
        use std::os::unix::fs::PermissionsExt;
        let prepared = self.prepare().map_err(std::io::Error::other)?.clone();
        let dir = tempfile::Builder::new()
            .prefix("hep-stage-crate-")
            .tempdir_in(sandbox::scratch()?)?;
        let mode =
            |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(dir.path(), 0o755)?;
        for d in ["src", "toolchain", "deps", "out"] {
            std::fs::create_dir(dir.path().join(d))?;
            mode(&dir.path().join(d), 0o755)?;
        }
        let main = MAIN_RS
            .replace("{{stage}}", kind.name())
            .replace("{{api_version}}", &stage_api::STAGE_API_VERSION.to_string());
        std::fs::write(dir.path().join("src/main.rs"), main)?;
        let uid = sandbox::fresh_uid();
        sandbox::give(&dir.path().join("out"), uid)?;
        Ok(StageCrate {
            dir,
            uid,
            prepared,
            limits: Limits {
                weak: self.weak,
                ..build_limits()
            },
            kind,
            crates: vec![],
        })
    }
}

/// Only what cargo and rustup need to find the toolchain; never API keys.
fn scrub(cmd: &mut Command) {
    cmd.env_clear();
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
}

impl StageCrate {
    /// The crate's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The uid its builds run as (when the agent is root).
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// Other limits for its builds (tests: a short wall clock).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Lets the stage name these extra crates (package or crate names from [`EXTRA_CRATES`]).
    pub fn allow_crates(&mut self, crates: &[String]) -> Result<(), ToolchainError> {
        self.crates = crates
            .iter()
            .map(|c| {
                EXTRA_CRATES
                    .iter()
                    .find(|(p, n)| p == c || n == c)
                    .map(|(_, n)| n.to_string())
                    .ok_or_else(|| {
                        let known: Vec<&str> = EXTRA_CRATES.iter().map(|(p, _)| *p).collect();
                        ToolchainError::UnknownCrate {
                            name: c.clone(),
                            known: known.join(", "),
                        }
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Replaces `src/stage.rs` with the model's code.
    pub fn write_code(&self, code: &str) -> std::io::Result<()> {
        std::fs::write(self.path().join("src/stage.rs"), code)
    }

    /// Type-checks the crate (`--emit=metadata`): diagnostics only.
    pub fn check(&self) -> Build {
        self.rustc(false)
    }

    /// Compiles and links the runner: diagnostics and, on success, the binary.
    pub fn build(&self) -> Build {
        self.rustc(true)
    }

    fn rustc(&self, link: bool) -> Build {
        #[cfg(not(target_os = "linux"))]
        {
            let _ = link;
            return Build::harness("model code is only compiled in the Linux sandbox".into());
        }
        #[cfg(target_os = "linux")]
        {
            self.rustc_confined(link)
        }
    }

    #[cfg(target_os = "linux")]
    fn rustc_confined(&self, link: bool) -> Build {
        let dir = self.path();
        let out = dir.join("out");
        let p = &self.prepared;
        // With namespaces the toolchain and the dependencies are seen through read-only bind
        // mounts inside the crate's directory (the uid cannot reach the host paths); without,
        // the host paths are used (and must be readable by the uid).
        let namespaces = sandbox::Isolation::current().namespaces;
        let (sysroot, deps, binds) = if namespaces {
            let (s, d) = (dir.join("toolchain"), dir.join("deps"));
            let binds = vec![(p.sysroot.clone(), s.clone()), (p.deps.clone(), d.clone())];
            (s, d, binds)
        } else {
            (p.sysroot.clone(), p.deps.clone(), vec![])
        };
        if let (false, Some(uid)) = (namespaces, self.uid) {
            // The host paths themselves: the build's uid must be able to walk down to them.
            for (what, path) in [
                ("the compiler", &p.sysroot),
                ("the prebuilt contract", &p.deps),
            ] {
                if let Some((closed, mode)) = sandbox::closed_to_others(path) {
                    return Build::harness(format!(
                        "without mount namespaces the build runs as uid {uid} on the host's \
                         paths and cannot enter {} (mode {mode:o}) on the way to {what} at {}: \
                         put the checkout (or CARGO_TARGET_DIR) and the toolchain (RUSTUP_HOME) \
                         under directories every user may enter, or run where namespaces work",
                        closed.display(),
                        path.display()
                    ));
                }
            }
        }
        let mut read: Vec<PathBuf> = sandbox::SYSTEM_READ.iter().map(PathBuf::from).collect();
        read.push(dir.to_path_buf());
        if !namespaces {
            read.push(p.sysroot.clone());
            read.push(p.deps.clone());
        }
        let mut args: Vec<OsString> = vec![
            // Every crate has the same name: each builds alone in its own directory (no cargo
            // freshness to confuse), and the name can appear in diagnostics, which must be
            // the same in every run for replay.
            "--crate-name=stage".into(),
            "--edition=2021".into(),
            "--crate-type=bin".into(),
            "--error-format=json".into(),
            "-Cdebuginfo=0".into(),
            "-Copt-level=0".into(),
        ];
        let flag = |a: &str, b: &Path| {
            let mut s = OsString::from(a);
            s.push(b);
            s
        };
        args.push(flag("-Cincremental=", &out.join("incremental")));
        args.push(flag("-Ldependency=", &deps.join("deps")));
        for (name, rlib) in &p.rlibs {
            if name == "stage_api" || self.crates.contains(name) {
                args.push(flag(&format!("--extern={name}="), &deps.join(rlib)));
            }
        }
        if link {
            args.push("--emit=link".into());
            args.push(flag("-o", &out.join("stage")));
        } else {
            args.push("--emit=metadata".into());
            args.push(flag("-o", &out.join("libstage.rmeta")));
        }
        args.push(dir.join("src/main.rs").into_os_string());
        let env: Vec<(&str, OsString)> = vec![
            ("PATH", "/usr/bin:/bin".into()),
            ("HOME", out.clone().into_os_string()),
            ("TMPDIR", out.clone().into_os_string()),
            ("LANG", "C.UTF-8".into()),
        ];
        let (stdout, stderr, _) =
            match sandbox::output_files(&dir.join("rustc.stdout"), &dir.join("rustc.stderr")) {
                Ok(f) => f,
                Err(e) => return Build::harness(format!("build output files: {e}")),
            };
        let _ = std::fs::remove_file(out.join("stage"));
        let limits = self.limits.clone();
        let ended = sandbox::confine(sandbox::Confinement {
            program: &sysroot.join("bin/rustc"),
            args: &args,
            env: &env,
            writable: &out,
            read: &read,
            binds: &binds,
            proc: false,
            limits: &limits,
            uid: self.uid,
            tmpfs: false,
            no_remove: false,
            stdout,
            stderr,
        });
        let ended = match ended {
            Ok(e) => e,
            Err(e) => {
                let hint = if namespaces {
                    ""
                } else {
                    " (without mount namespaces the toolchain must be readable by the build's uid)"
                };
                return Build::harness(format!("the build sandbox failed: {e}{hint}"));
            }
        };
        // Diagnostics, at most what a sane build prints (a hostile one can print more).
        let text = sandbox::read_output(&dir.join("rustc.stderr"), 8 << 20)
            .unwrap_or_else(|e| format!("(unreadable compiler output: {e})"));
        let mut build = parse_messages(&text, dir);
        build.wall_s = ended.wall_s;
        build.ok = ended.exit.is_some_and(|e| e.code == Some(0)) && build.errors().next().is_none();
        if link && build.ok {
            // A regular file, not a link planted by anything that ran as the build's uid.
            let bin = out.join("stage");
            let regular = bin
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_file());
            build.binary = regular.then_some(bin);
            build.ok = build.binary.is_some();
        }
        if !build.ok && build.errors().next().is_none() {
            build.failure = Some(limit_message(&ended, &limits));
        }
        build
    }
}

/// Why a build ended without a compiler error: from what the kernel reported, in words that
/// do not change between runs (no elapsed times: they would break replay).
fn limit_message(e: &Ended, l: &Limits) -> String {
    let k = &e.kernel;
    if k.timed_out || e.exit.is_some_and(|x| x.signal == Some(libc::SIGXCPU)) {
        format!(
            "the build was stopped at its time limit ({} s): make it compile faster (no huge \
             constants or const evaluation)",
            l.wall_s
        )
    } else if k.oom_kills > 0 {
        format!(
            "the build ran out of memory (limit {} MiB)",
            l.memory_bytes >> 20
        )
    } else if k.disk_full || e.exit.is_some_and(|x| x.signal == Some(libc::SIGXFSZ)) {
        "the build's output exceeded its size limit".into()
    } else if k.fork_refusals > 0 {
        "the build hit its process limit".into()
    } else {
        match e.exit {
            Some(x) if x.signal.is_some() => format!(
                "the compiler was killed by signal {}",
                x.signal.unwrap_or(0)
            ),
            Some(x) => format!("the compiler failed (exit {:?}) without a message", x.code),
            None => "the compiler did not run".into(),
        }
    }
}

/// Reads rustc's JSON diagnostics (one per line on stderr). Reads the sandbox refused show up
/// as "couldn't read `PATH`: Permission denied" errors: collected in `refused_reads`.
fn parse_messages(stderr: &str, crate_dir: &Path) -> Build {
    let mut b = Build {
        ok: false,
        diagnostics: vec![],
        failure: None,
        refused_reads: vec![],
        binary: None,
        setup_error: None,
        wall_s: 0.0,
    };
    let prefix = crate_dir.display().to_string();
    for line in stderr.lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(message) = m["message"].as_str() else {
            continue;
        };
        // The summary lines ("aborting due to 2 previous errors") repeat the count.
        if message.starts_with("aborting due to")
            || message.contains("warning emitted")
            || message.contains("warnings emitted")
        {
            continue;
        }
        let level = m["level"].as_str().unwrap_or("").to_string();
        if level == "error" && is_refused_read(message) {
            b.refused_reads.push(read_target(message));
        }
        b.diagnostics.push(Diagnostic {
            level,
            code: m["code"]["code"].as_str().map(str::to_string),
            message: message.to_string(),
            rendered: m["rendered"].as_str().unwrap_or("").replace(&prefix, "."),
        });
    }
    b
}

/// rustc's message for a file it could not open: `couldn't read `P`: ... (os error 13)`, or
/// for a module file `couldn't read ...`; a denied or unreadable path.
fn is_refused_read(message: &str) -> bool {
    (message.starts_with("couldn't read") || message.starts_with("file not found for module"))
        && (message.contains("os error 13") || message.contains("Permission denied"))
}

/// The path between the first pair of backticks (as the code wrote it).
fn read_target(message: &str) -> String {
    message.split('`').nth(1).unwrap_or("(a file)").to_string()
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
    if let Some(e) = &build.failure {
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
