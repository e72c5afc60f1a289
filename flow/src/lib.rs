//! A small rule engine, in the spirit of Snakemake but deciding by content: each [`Rule`]
//! declares its input files, output files, parameters (JSON) and an implementation identity,
//! and a job that writes the outputs. [`Flow::run`] orders the rules by their files (a rule
//! that reads another's output runs after it), runs independent rules in parallel, and runs a
//! rule only when it has a reason ([`Reason`]):
//!
//! * it never ran, or `--force` names it;
//! * its implementation identity or a declared parameter changed (the parameter diff is named);
//! * an input's content changed (size + mtime are only a pre-check: a touched file whose
//!   content hash is unchanged does not rerun anything);
//! * an output is missing or not what the rule wrote.
//!
//! A rule whose upstream reran but wrote identical bytes does not rerun. Outputs are written to
//! `NAME.flow-tmp` and renamed into place only when the job succeeded; then the rule's record
//! (`provenance/RULE.json`: input and output hashes, parameters, implementation, tool versions,
//! wall time, host) is written the same way. The record is the commit point: a rule killed at
//! any moment has either no record (it reruns) or a record whose output hashes match the files
//! in place, so a partial file is never taken for done. Commits are made by threads of their
//! own while the layer's other jobs run; a layer ends when its commits have. Leftover
//! `.flow-tmp` files are removed at the next run. One run per directory at a time is the
//! caller's job (`dirlock`).

use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, UNIX_EPOCH};

/// Why a job failed: any error (a job's own or a [`FileError`]), shown to the user with the
/// rule's name ([`FlowError::Rule`]).
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// The job of a rule: reads `ctx.input(i)`, writes every `ctx.output(i)`.
pub type Job = Box<dyn Fn(&Ctx) -> Result<(), JobError> + Send + Sync>;

/// A work file that could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file concerned.
    pub path: PathBuf,
    /// What went wrong with it.
    #[source]
    pub source: JobError,
}

impl FileError {
    fn new(path: &Path, source: impl Into<JobError>) -> Self {
        Self {
            path: path.to_path_buf(),
            source: source.into(),
        }
    }
}

/// One rule instance. `K`: what kind of rule it is, for whoever watches the run (the
/// analysis's `Step`), carried in its [`Event`]s; the engine never looks at it.
pub struct Rule<K = ()> {
    /// Unique, `/`-separated (`select/data/file_A`): `--force`/`--until` match a name or any
    /// prefix ending at a `/`.
    pub name: String,
    /// Files the job reads (`ctx.input(i)`); a change in their content makes it rerun.
    pub inputs: Vec<PathBuf>,
    /// Files whose rules must be up to date (checked, run if needed) before this one runs,
    /// though their content is not its input (order only, as Make's order-only
    /// prerequisites): they place the rule in a later layer and come with it under `--until`,
    /// but never make it rerun, and its job does not see them.
    pub after: Vec<PathBuf>,
    /// Files the job must write (`ctx.output(i)`), moved into place when it succeeds.
    pub outputs: Vec<PathBuf>,
    /// The parameters the rule declares; only these can make it rerun.
    pub params: Value,
    /// What code runs: a hash of that code, or of a model-written stage's source + toolchain +
    /// contract version. Never a repository commit.
    pub implementation: String,
    /// What kind of rule it is (`K`), carried in its [`Event`]s; the engine ignores it.
    pub kind: K,
    /// The job that writes the outputs.
    pub job: Job,
}

/// What a job sees.
pub struct Ctx<'a> {
    inputs: &'a [PathBuf],
    outputs: &'a [PathBuf],
    params: &'a Value,
    tmp: Vec<PathBuf>,
    input_hashes: Vec<String>,
    /// Per output, how the job wrote it (so the commit knows whether to read it back).
    written: Mutex<Vec<Output>>,
}

/// How a job wrote one output.
#[derive(Clone)]
enum Output {
    /// Not (yet) through [`Ctx::write_with`] nor [`Ctx::output`].
    Untouched,
    /// Through [`Ctx::write_with`] only: hashed on the way out, not read back.
    Written(Written),
    /// The job took its path ([`Ctx::output`]): what it did there is read back and hashed.
    Direct,
}

/// An output's length, mtime and BLAKE3 as its job wrote it.
#[derive(Clone)]
struct Written {
    bytes: u64,
    mtime_ns: u64,
    blake3: String,
}

/// Hashes what passes through to the file (under the `BufWriter`: whole buffers, not
/// serde's small pieces).
struct HashingWriter {
    file: std::fs::File,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Ctx<'_> {
    /// Path of input `i`.
    pub fn input(&self, i: usize) -> &Path {
        &self.inputs[i]
    }
    /// BLAKE3 of input `i`'s content (hex).
    pub fn input_hash(&self, i: usize) -> &str {
        &self.input_hashes[i]
    }
    /// Paths of all inputs, in the rule's order.
    pub fn inputs(&self) -> &[PathBuf] {
        self.inputs
    }
    /// Where to write output `i` (a temporary name; renamed into place after the job). An
    /// output whose path the job took is hashed from the file at the commit, whatever
    /// [`Ctx::write_with`] wrote there.
    pub fn output(&self, i: usize) -> &Path {
        self.written.lock().unwrap_or_else(|p| p.into_inner())[i] = Output::Direct;
        &self.tmp[i]
    }
    /// The rule's declared parameters.
    pub fn params(&self) -> &Value {
        self.params
    }
    /// Writes output `i` as compact JSON (work files).
    pub fn write_json<T: Serialize>(&self, i: usize, value: &T) -> Result<(), FileError> {
        self.write_with(i, |w| {
            serde_json::to_writer(&mut *w, value)?;
            Ok(w.write_all(b"\n")?)
        })
    }
    /// Writes output `i` as pretty JSON (documents people read: results, comparisons).
    pub fn write_json_pretty<T: Serialize>(&self, i: usize, value: &T) -> Result<(), FileError> {
        self.write_with(i, |w| {
            serde_json::to_writer_pretty(&mut *w, value)?;
            Ok(w.write_all(b"\n")?)
        })
    }
    /// Creates output `i` and hands `write` a buffered writer to it. Streamed: a large output
    /// is never one string in memory.
    pub fn write_with(
        &self,
        i: usize,
        write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), JobError>,
    ) -> Result<(), FileError> {
        let err = |e: JobError| FileError::new(&self.outputs[i], e);
        let written = || self.written.lock().unwrap_or_else(|p| p.into_inner());
        // Whatever was recorded for this output no longer holds, even if this write fails.
        {
            let mut w = written();
            if let Output::Written(_) = w[i] {
                w[i] = Output::Untouched;
            }
        }
        let file = std::fs::File::create(&self.tmp[i]).map_err(|e| err(e.into()))?;
        let hashing = HashingWriter {
            file,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        };
        let mut w = std::io::BufWriter::with_capacity(1 << 16, hashing);
        write(&mut w).map_err(err)?;
        let hashing = w.into_inner().map_err(|e| err(e.into_error().into()))?;
        let (bytes, mtime_ns) = Hashes::stat(&self.tmp[i]).map_err(|e| err(e.into()))?;
        let mut written = written();
        if bytes == hashing.bytes && !matches!(written[i], Output::Direct) {
            written[i] = Output::Written(Written {
                bytes,
                mtime_ns,
                blake3: hashing.hasher.finalize().to_hex().to_string(),
            });
        }
        Ok(())
    }
    /// Reads input `i` as JSON.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, FileError> {
        read_json(self.input(i))
    }
    /// Writes output `i` in [postcard](https://docs.rs/postcard)'s binary encoding: for bulk
    /// work files (a file's selected events), written in the event loop, where JSON's float
    /// formatting, twice the bytes to flush and hash, and the reader's float parsing cost a
    /// sixth of the loop's time.
    pub fn write_binary<T: Serialize>(&self, i: usize, value: &T) -> Result<(), FileError> {
        self.write_with(i, |w| {
            postcard::to_io(value, w)?;
            Ok(())
        })
    }
    /// Reads input `i` as written by [`Ctx::write_binary`].
    pub fn read_binary<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, FileError> {
        let path = self.input(i);
        let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
        match postcard::take_from_bytes(&bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(FileError::new(
                path,
                format!("{} bytes after the end of the data", rest.len()),
            )),
            Err(e) => Err(FileError::new(path, e)),
        }
    }
}

/// Reads a JSON file into `T`, naming the file in the error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
    serde_json::from_slice(&text).map_err(|e| FileError::new(path, e))
}

/// A file as a record saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// The file's path, as displayed.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Modification time, ns since the epoch (the pre-check only).
    pub mtime_ns: u64,
    /// BLAKE3 hash of the content (hex).
    pub blake3: String,
}

/// The layout version of [`Record`]s (2: the field itself appears).
pub const RECORD_FORMAT: u32 = 2;

/// A rule's provenance record: `provenance/RULE.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_FORMAT`]; a record of another format (or none: older) is not trusted, and its
    /// rule reruns.
    #[serde(default)]
    pub format_version: u32,
    /// The rule's name.
    pub rule: String,
    /// The rule's implementation identity when it ran.
    pub implementation: String,
    /// The rule's declared parameters when it ran.
    pub params: Value,
    /// The inputs' states, in the rule's order.
    pub inputs: Vec<FileState>,
    /// The outputs' states, as committed.
    pub outputs: Vec<FileState>,
    /// Tool versions (name → version), from [`Options::tools`].
    pub tools: BTreeMap<String, String>,
    /// The job's wall time, in seconds.
    pub wall_s: f64,
    /// Name of the host that ran it.
    pub host: String,
    /// Seconds since the epoch when it finished.
    pub finished: f64,
}

/// Why a rule runs (or, in a dry run, would).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No usable record: never ran (or its record is unreadable or of another format).
    NeverRan,
    /// `--force` names it.
    Forced,
    /// The implementation identity changed.
    Implementation {
        /// The recorded identity.
        was: String,
        /// The rule's identity now.
        now: String,
    },
    /// `key: old → new` per changed parameter.
    Params(Vec<String>),
    /// The list of input paths is not the recorded one.
    InputList,
    /// This input's content changed (its path).
    InputChanged(String),
    /// This output is missing or unreadable (its path).
    OutputMissing(String),
    /// This output is not what the rule wrote (its path).
    OutputChanged(String),
    /// Dry run only: upstream rules would run, and may change this rule's inputs.
    Upstream(Vec<String>),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NeverRan => write!(f, "never ran"),
            Reason::Forced => write!(f, "forced"),
            Reason::Implementation { was, now } => {
                write!(f, "implementation changed ({was} → {now})")
            }
            Reason::Params(d) if d.len() > 3 => write!(
                f,
                "parameters changed: {} and {} more",
                d[..3].join(", "),
                d.len() - 3
            ),
            Reason::Params(d) => write!(f, "parameters changed: {}", d.join(", ")),
            Reason::InputList => write!(f, "the list of inputs changed"),
            Reason::InputChanged(p) => write!(f, "input {p} changed"),
            Reason::OutputMissing(p) => write!(f, "output {p} is missing"),
            Reason::OutputChanged(p) => write!(f, "output {p} is not what the rule wrote"),
            Reason::Upstream(r) => write!(f, "may rerun: upstream {} would run", r.join(", ")),
        }
    }
}

/// What became of one rule.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The rule's name.
    pub rule: String,
    /// Why it ran (empty: up to date, skipped).
    pub reasons: Vec<Reason>,
    /// Whether its job ran (not in a dry run, nor when up to date).
    pub ran: bool,
    /// The job's wall time in seconds (0 when it did not run).
    pub wall_s: f64,
}

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Say what would run and why; run nothing.
    pub dry_run: bool,
    /// Rules (names or prefixes) to run whatever their state.
    pub force: Vec<String>,
    /// Run only these rules (names or prefixes; several, comma-separated) and what they need.
    pub until: Option<String>,
    /// Tool versions, for the records.
    pub tools: BTreeMap<String, String>,
}

/// Events for a progress display; `kind` is the rule's [`Rule::kind`].
pub enum Event<'a, K = ()> {
    /// A layer of `rules` rules is being checked: what runs and why, which hashes every input
    /// not hashed before (all of the layer's, before any of its jobs starts).
    Checking {
        /// How many rules the layer has.
        rules: usize,
    },
    /// A rule's job starts (it has reasons to run).
    Started {
        /// The rule's name.
        rule: &'a str,
        /// The rule's [`Rule::kind`].
        kind: K,
        /// Why it runs.
        reasons: &'a [Reason],
    },
    /// The rule's job finished (`wall_s`: the job's own time); its outputs are committed by
    /// the layer's committers, and a failed commit fails the run.
    Finished {
        /// The rule's name.
        rule: &'a str,
        /// The rule's [`Rule::kind`].
        kind: K,
        /// The job's wall time, in seconds.
        wall_s: f64,
    },
}

/// Why building a [`Flow`] or running it failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A rule's job failed, or did not write all of its outputs.
    #[error("rule {rule}: {source}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What went wrong.
        #[source]
        source: JobError,
    },
    /// Two rules declare the same output.
    #[error("rules {a} and {b} both write {path}")]
    DuplicateOutput {
        /// One rule's name.
        a: String,
        /// The other rule's name.
        b: String,
        /// The output both declare.
        path: String,
    },
    /// Two rules have this name.
    #[error("two rules are named {0}")]
    DuplicateName(String),
    /// A rule's `after` names a file that no rule writes.
    #[error("rule {rule} runs after {path}, which no rule writes")]
    AfterNothing {
        /// The rule's name.
        rule: String,
        /// The file that no rule writes.
        path: String,
    },
    /// The rules' dependencies form a cycle (through this rule).
    #[error("the rules form a cycle through {0}")]
    Cycle(String),
    /// No rule matches this `--until` pattern.
    #[error("--until {0}: no rule has that name or prefix")]
    NoSuchRule(String),
    /// A file or folder could not be read, written, synced or created.
    #[error("{path}: {message}")]
    Io {
        /// The path concerned.
        path: String,
        /// The error message.
        message: String,
    },
}

/// Rules and the directory of their records.
pub struct Flow<K = ()> {
    rules: Vec<Rule<K>>,
    records: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> FlowError {
    FlowError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `name` is `pattern` or under it (`select` matches `select/data/a`).
pub fn matches(name: &str, pattern: &str) -> bool {
    name == pattern
        || name
            .strip_prefix(pattern.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with('/'))
}

fn tmp_of(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".flow-tmp");
    PathBuf::from(s)
}

/// Stat pre-check, then BLAKE3, with a per-run cache (inputs shared by many rules are hashed
/// once).
#[derive(Default)]
struct Hashes(Mutex<HashMap<PathBuf, FileState>>);

impl Hashes {
    fn stat(path: &Path) -> std::io::Result<(u64, u64)> {
        let m = std::fs::metadata(path)?;
        let mtime = m
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok((m.len(), mtime))
    }

    fn remember(&self, path: &Path, s: FileState) -> FileState {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf(), s.clone());
        s
    }

    /// The state of a file its job just wrote, with the hash taken as it was written (read
    /// back and hashed if its size or mtime is not what was written).
    fn written(&self, path: &Path, w: Written) -> std::io::Result<FileState> {
        let (bytes, mtime_ns) = Self::stat(path)?;
        if (bytes, mtime_ns) != (w.bytes, w.mtime_ns) {
            return self.state(path, None, false);
        }
        let s = FileState {
            path: path.display().to_string(),
            bytes,
            mtime_ns,
            blake3: w.blake3,
        };
        Ok(self.remember(path, s))
    }

    /// The file's state; `known` (a record's) is trusted when size and mtime match it.
    /// `parallel`: hash each piece on every thread of the current rayon pool (a job's
    /// thread); a committer, outside the pool that `--threads` sets, hashes on its own.
    fn state(
        &self,
        path: &Path,
        known: Option<&FileState>,
        parallel: bool,
    ) -> std::io::Result<FileState> {
        let (bytes, mtime_ns) = Self::stat(path)?;
        if let Some(k) = known.filter(|k| k.bytes == bytes && k.mtime_ns == mtime_ns) {
            return Ok(k.clone());
        }
        if let Some(c) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
            if c.bytes == bytes && c.mtime_ns == mtime_ns {
                return Ok(c.clone());
            }
        }
        let mut h = blake3::Hasher::new();
        // Read in 256 KiB pieces, each hashed on every core: a memory map would count the whole
        // file in the process's resident memory while it is hashed (many files at once with
        // many threads: hundreds of MiB that are only page cache).
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 18];
        loop {
            let n = match std::io::Read::read(&mut file, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if parallel {
                h.update_rayon(&buf[..n]);
            } else {
                h.update(&buf[..n]);
            }
        }
        let s = FileState {
            path: path.display().to_string(),
            bytes,
            mtime_ns,
            blake3: h.finalize().to_hex().to_string(),
        };
        Ok(self.remember(path, s))
    }
}

/// `key: old → new` for every leaf that differs between two JSON documents.
pub fn param_diff(old: &Value, new: &Value) -> Vec<String> {
    fn walk(prefix: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, x.get(k), y.get(k), out);
                }
            }
            (a, b) if a != b => {
                let show = |v: Option<&Value>| v.map_or("(none)".to_string(), |v| v.to_string());
                out.push(format!("{prefix}: {} → {}", show(a), show(b)));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", Some(old), Some(new), &mut out);
    out
}

impl<K: Copy + Send + Sync> Flow<K> {
    /// `records`: the folder of the provenance records.
    pub fn new(rules: Vec<Rule<K>>, records: impl Into<PathBuf>) -> Result<Self, FlowError> {
        let mut names = std::collections::HashSet::new();
        let mut writers: HashMap<&Path, &str> = HashMap::new();
        for r in &rules {
            if !names.insert(r.name.as_str()) {
                return Err(FlowError::DuplicateName(r.name.clone()));
            }
            for o in &r.outputs {
                if let Some(a) = writers.insert(o, &r.name) {
                    return Err(FlowError::DuplicateOutput {
                        a: a.into(),
                        b: r.name.clone(),
                        path: o.display().to_string(),
                    });
                }
            }
        }
        for r in &rules {
            if let Some(p) = r.after.iter().find(|p| !writers.contains_key(p.as_path())) {
                return Err(FlowError::AfterNothing {
                    rule: r.name.clone(),
                    path: p.display().to_string(),
                });
            }
        }
        Ok(Self {
            rules,
            records: records.into(),
        })
    }

    /// The rules, in the order they were given.
    pub fn rules(&self) -> &[Rule<K>] {
        &self.rules
    }

    /// The record file of `rule`.
    pub fn record_path(&self, rule: &str) -> PathBuf {
        self.records
            .join(format!("{}.json", rule.replace('/', ".")))
    }

    fn load_record(&self, rule: &str) -> Option<Record> {
        // An unreadable or other-format record means: rerun.
        read_json::<Record>(&self.record_path(rule))
            .ok()
            .filter(|r| r.format_version == RECORD_FORMAT)
    }

    /// The dependency graph (producer → consumer) and its rules in layers: every rule of a
    /// layer depends only on earlier layers, so a layer's rules can run in parallel.
    fn layers(&self, wanted: &[bool]) -> Result<Vec<Vec<usize>>, FlowError> {
        let mut g: DiGraph<usize, ()> = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..self.rules.len()).map(|i| g.add_node(i)).collect();
        let producer: HashMap<&Path, usize> = self
            .rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.outputs.iter().map(move |o| (o.as_path(), i)))
            .collect();
        for (i, r) in self.rules.iter().enumerate() {
            for input in r.inputs.iter().chain(&r.after) {
                if let Some(&p) = producer.get(input.as_path()) {
                    g.add_edge(nodes[p], nodes[i], ());
                }
            }
        }
        let order = petgraph::algo::toposort(&g, None)
            .map_err(|c| FlowError::Cycle(self.rules[g[c.node_id()]].name.clone()))?;
        let mut level = vec![0usize; self.rules.len()];
        for n in &order {
            let i = g[*n];
            for d in g.neighbors_directed(*n, petgraph::Direction::Incoming) {
                level[i] = level[i].max(level[g[d]] + 1);
            }
        }
        let depth = level.iter().max().map_or(0, |m| m + 1);
        let mut layers = vec![Vec::new(); depth];
        // Within a layer, rules keep their given order.
        for (i, &l) in level.iter().enumerate() {
            if wanted[i] {
                layers[l].push(i);
            }
        }
        Ok(layers)
    }

    /// Which rules `until` keeps: the matching ones and everything they need.
    fn wanted(&self, until: Option<&str>) -> Result<Vec<bool>, FlowError> {
        let Some(pattern) = until else {
            return Ok(vec![true; self.rules.len()]);
        };
        // Several patterns, comma-separated.
        let mut wanted: Vec<bool> = self
            .rules
            .iter()
            .map(|r| pattern.split(',').any(|p| matches(&r.name, p.trim())))
            .collect();
        if !wanted.contains(&true) {
            return Err(FlowError::NoSuchRule(pattern.into()));
        }
        let producer: HashMap<&Path, usize> = self
            .rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.outputs.iter().map(move |o| (o.as_path(), i)))
            .collect();
        let mut stack: Vec<usize> = (0..wanted.len()).filter(|&i| wanted[i]).collect();
        while let Some(i) = stack.pop() {
            let r = &self.rules[i];
            for input in r.inputs.iter().chain(&r.after) {
                if let Some(&p) = producer.get(input.as_path()) {
                    if !wanted[p] {
                        wanted[p] = true;
                        stack.push(p);
                    }
                }
            }
        }
        Ok(wanted)
    }

    /// Why `rule` must run, and its inputs' states (for the record).
    fn reasons(
        &self,
        rule: &Rule<K>,
        record: Option<&Record>,
        hashes: &Hashes,
        forced: bool,
        dry_upstream: &[String],
    ) -> Result<(Vec<Reason>, Vec<Option<FileState>>), FlowError> {
        let mut why = Vec::new();
        if forced {
            why.push(Reason::Forced);
        }
        let inputs: Vec<Option<FileState>> = rule
            .inputs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let known = record
                    .and_then(|r| r.inputs.get(i))
                    .filter(|k| k.path == p.display().to_string());
                match hashes.state(p, known, true) {
                    Ok(s) => Ok(Some(s)),
                    // An upstream output not there yet (dry run): the upstream says why.
                    Err(_) if !dry_upstream.is_empty() => Ok(None),
                    Err(e) => Err(io_err(p, e)),
                }
            })
            .collect::<Result<_, _>>()?;
        let Some(rec) = record else {
            why.push(Reason::NeverRan);
            return Ok((why, inputs));
        };
        if rec.implementation != rule.implementation {
            why.push(Reason::Implementation {
                was: rec.implementation.clone(),
                now: rule.implementation.clone(),
            });
        }
        let diff = param_diff(&rec.params, &rule.params);
        if !diff.is_empty() {
            why.push(Reason::Params(diff));
        }
        let paths: Vec<String> = rule
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let recorded: Vec<&String> = rec.inputs.iter().map(|s| &s.path).collect();
        if paths.iter().collect::<Vec<_>>() != recorded {
            why.push(Reason::InputList);
        } else {
            for (s, r) in inputs.iter().zip(&rec.inputs) {
                if let Some(s) = s {
                    if s.blake3 != r.blake3 {
                        why.push(Reason::InputChanged(s.path.clone()));
                    }
                }
            }
        }
        for (i, o) in rule.outputs.iter().enumerate() {
            let known = rec.outputs.get(i);
            match hashes.state(o, known, true) {
                Err(_) => why.push(Reason::OutputMissing(o.display().to_string())),
                Ok(s) if known.is_none_or(|k| k.blake3 != s.blake3) => {
                    why.push(Reason::OutputChanged(o.display().to_string()))
                }
                Ok(_) => {}
            }
        }
        if !dry_upstream.is_empty() {
            why.push(Reason::Upstream(dry_upstream.to_vec()));
        }
        Ok((why, inputs))
    }

    /// The rules' names, in the order they were given.
    pub fn rule_names(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.name.clone()).collect()
    }

    /// Runs what has a reason to run (see the module documentation); stops at the first
    /// failing layer, keeping every rule that finished.
    pub fn run(
        &self,
        opts: &Options,
        on_event: &(dyn Fn(Event<K>) + Sync),
    ) -> Result<Vec<Outcome>, FlowError> {
        let wanted = self.wanted(opts.until.as_deref())?;
        let layers = self.layers(&wanted)?;
        if !opts.dry_run {
            std::fs::create_dir_all(&self.records).map_err(|e| io_err(&self.records, e))?;
            // A killed run's temporary files, of the rules this run may write (others may be
            // another process's work in progress: a Slurm task beside this one).
            for r in self
                .rules
                .iter()
                .zip(&wanted)
                .filter(|(_, w)| **w)
                .map(|(r, _)| r)
            {
                for o in &r.outputs {
                    let _ = std::fs::remove_file(tmp_of(o));
                }
                let _ = std::fs::remove_file(tmp_of(&self.record_path(&r.name)));
            }
        }
        let producer: HashMap<&Path, usize> = self
            .rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.outputs.iter().map(move |o| (o.as_path(), i)))
            .collect();
        let hashes = Hashes::default();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; self.rules.len()];
        let host = hostname();
        for layer in layers {
            // Committing (fsync, rename, the outputs' hashes, the record) is done by a few
            // threads of its own while the layer's jobs go on: a job's thread waiting in
            // fsync left its core idle (`analyze` of 64 files on 2 threads and 2 cores: the
            // selection rules went from 3.48 to 3.62 M events/s, the wall time from 2.01 to
            // 1.92 s). The layer ends when every commit has.
            let (tx, rx) = std::sync::mpsc::channel::<(usize, Pending)>();
            let rx = Mutex::new(rx);
            let (results, commits) = std::thread::scope(|scope| {
                let committers: Vec<_> = (0..COMMITTERS)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut done = Vec::new();
                            loop {
                                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                                let Ok((i, pending)) = next else { break done };
                                done.push((i, self.commit(&self.rules[i], pending, &hashes)));
                            }
                        })
                    })
                    .collect();
                let results = self.run_layer(
                    &layer, opts, on_event, &producer, &outcomes, &hashes, &host, &tx,
                );
                drop(tx);
                let commits: Vec<(usize, Result<(), FlowError>)> = committers
                    .into_iter()
                    .flat_map(|c| c.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect();
                (results, commits)
            });
            let mut commits: HashMap<usize, Result<(), FlowError>> = commits.into_iter().collect();
            let mut first_error = None;
            for (i, r) in layer.iter().zip(results) {
                match r.and_then(|o| commits.remove(i).unwrap_or(Ok(())).map(|()| o)) {
                    Ok(o) => outcomes[*i] = Some(o),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Runs a layer's rules in parallel; a job that ran is sent to `commit`.
    #[allow(clippy::too_many_arguments)]
    fn run_layer(
        &self,
        layer: &[usize],
        opts: &Options,
        on_event: &(dyn Fn(Event<K>) + Sync),
        producer: &HashMap<&Path, usize>,
        outcomes: &[Option<Outcome>],
        hashes: &Hashes,
        host: &str,
        commit: &std::sync::mpsc::Sender<(usize, Pending)>,
    ) -> Vec<Result<Outcome, FlowError>> {
        // First what runs and why, for every rule of the layer at once: this hashes the
        // inputs, all of them on every thread, before any job starts. Hashed beside the jobs
        // (each rule's inputs just before its job), a thread hashing took its core from the
        // jobs running then: with more rules than threads, the event loop's parallel
        // efficiency at 2 threads on 2 cores was 0.82 on 64 files, and at 1 thread the
        // hashing fell between jobs instead. The work and the wall time are the same.
        on_event(Event::Checking { rules: layer.len() });
        let decided: Vec<_> = layer
            .par_iter()
            .map(|&i| {
                let rule = &self.rules[i];
                let record = self.load_record(&rule.name);
                let forced = opts.force.iter().any(|f| matches(&rule.name, f));
                // In a dry run, upstream rules that would run are named as a reason.
                let upstream: Vec<String> = if opts.dry_run {
                    rule.inputs
                        .iter()
                        .filter_map(|p| producer.get(p.as_path()))
                        .filter(|&&p| outcomes_would_run(outcomes, p))
                        .map(|&p| self.rules[p].name.clone())
                        .collect()
                } else {
                    vec![]
                };
                let reasons = self.reasons(rule, record.as_ref(), hashes, forced, &upstream);
                (record, reasons)
            })
            .collect();
        layer
            .par_iter()
            .zip(decided)
            .map(|(&i, (record, reasons))| {
                let rule = &self.rules[i];
                let (reasons, inputs) = reasons?;
                if opts.dry_run || reasons.is_empty() {
                    if reasons.is_empty() && !opts.dry_run {
                        self.refresh(rule, record, &inputs, hashes)?;
                    }
                    return Ok(Outcome {
                        rule: rule.name.clone(),
                        ran: false,
                        reasons,
                        wall_s: 0.0,
                    });
                }
                on_event(Event::Started {
                    rule: &rule.name,
                    kind: rule.kind,
                    reasons: &reasons,
                });
                let t = Instant::now();
                let pending = self.execute(rule, &inputs, opts, host, t)?;
                let wall_s = t.elapsed().as_secs_f64();
                commit
                    .send((i, pending))
                    .expect("the committers outlive the layer's jobs");
                on_event(Event::Finished {
                    rule: &rule.name,
                    kind: rule.kind,
                    wall_s,
                });
                Ok(Outcome {
                    rule: rule.name.clone(),
                    ran: true,
                    reasons,
                    wall_s,
                })
            })
            .collect()
    }

    /// Runs the job; what it wrote is committed later ([`Flow::commit`]).
    fn execute(
        &self,
        rule: &Rule<K>,
        inputs: &[Option<FileState>],
        opts: &Options,
        host: &str,
        started: Instant,
    ) -> Result<Pending, FlowError> {
        let fail = |source: JobError| FlowError::Rule {
            rule: rule.name.clone(),
            source,
        };
        let tmp: Vec<PathBuf> = rule.outputs.iter().map(|o| tmp_of(o)).collect();
        for o in &rule.outputs {
            if let Some(d) = o.parent() {
                std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
            }
        }
        let input_hashes: Vec<String> = inputs
            .iter()
            .map(|s| s.as_ref().map_or(String::new(), |s| s.blake3.clone()))
            .collect();
        let ctx = Ctx {
            inputs: &rule.inputs,
            outputs: &rule.outputs,
            params: &rule.params,
            tmp: tmp.clone(),
            input_hashes,
            written: Mutex::new(vec![Output::Untouched; tmp.len()]),
        };
        let result = (rule.job)(&ctx);
        let written = ctx.written.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Err(m) = result {
            for t in &tmp {
                let _ = std::fs::remove_file(t);
            }
            return Err(fail(m));
        }
        for (t, o) in tmp.iter().zip(&rule.outputs) {
            if !t.exists() {
                return Err(fail(
                    format!("the job did not write {}", o.display()).into(),
                ));
            }
        }
        let record = Record {
            format_version: RECORD_FORMAT,
            rule: rule.name.clone(),
            implementation: rule.implementation.clone(),
            params: rule.params.clone(),
            inputs: inputs.iter().flatten().cloned().collect(),
            outputs: vec![],
            tools: opts.tools.clone(),
            wall_s: started.elapsed().as_secs_f64(),
            host: host.to_string(),
            finished: std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        Ok(Pending {
            tmp,
            written,
            record,
        })
    }

    /// Makes a finished job's outputs durable, moves them into place, then writes the
    /// record (last: the commit point).
    fn commit(&self, rule: &Rule<K>, p: Pending, hashes: &Hashes) -> Result<(), FlowError> {
        let Pending {
            tmp,
            written,
            mut record,
        } = p;
        for ((t, o), w) in tmp.iter().zip(&rule.outputs).zip(written) {
            sync(t)?;
            std::fs::rename(t, o).map_err(|e| io_err(o, e))?;
            let state = match w {
                Output::Written(w) => hashes.written(o, w),
                Output::Untouched | Output::Direct => hashes.state(o, None, false),
            };
            record.outputs.push(state.map_err(|e| io_err(o, e))?);
        }
        self.write_record(&record)
    }

    /// An up-to-date rule whose inputs were touched (same content, new mtime): the record
    /// takes the new times, so the next run's pre-check passes without hashing.
    fn refresh(
        &self,
        rule: &Rule<K>,
        record: Option<Record>,
        inputs: &[Option<FileState>],
        hashes: &Hashes,
    ) -> Result<(), FlowError> {
        let Some(mut rec) = record else { return Ok(()) };
        let now: Vec<FileState> = inputs.iter().flatten().cloned().collect();
        let outputs: Vec<FileState> = rule
            .outputs
            .iter()
            .zip(&rec.outputs)
            .map(|(o, k)| hashes.state(o, Some(k), true).map_err(|e| io_err(o, e)))
            .collect::<Result<_, _>>()?;
        if now != rec.inputs || outputs != rec.outputs {
            rec.inputs = now;
            rec.outputs = outputs;
            self.write_record(&rec)?;
        }
        Ok(())
    }

    fn write_record(&self, r: &Record) -> Result<(), FlowError> {
        let path = self.record_path(&r.rule);
        let tmp = tmp_of(&path);
        let mut text = serde_json::to_vec_pretty(r).expect("a record serialises");
        text.push(b'\n');
        std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
        sync(&tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))
    }
}

/// Threads that commit a layer's finished jobs (they mostly wait on the disk).
const COMMITTERS: usize = 4;

/// A job that succeeded, its outputs still in their temporary files.
struct Pending {
    tmp: Vec<PathBuf>,
    /// What `Ctx::write_with` wrote of each output (`None`: written otherwise, hashed here).
    written: Vec<Output>,
    /// Everything but the outputs' states, which the commit adds.
    record: Record,
}

fn outcomes_would_run(outcomes: &[Option<Outcome>], i: usize) -> bool {
    outcomes[i].as_ref().is_some_and(|o| !o.reasons.is_empty())
}

fn sync(path: &Path) -> Result<(), FlowError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(path, e))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_by_prefix_at_slashes() {
        assert!(matches("select/data/a", "select"));
        assert!(matches("select/data/a", "select/data/"));
        assert!(matches("fit", "fit"));
        assert!(!matches("fitx", "fit"));
        assert!(!matches("selection/a", "select"));
    }

    /// Commits run beside the jobs: when a layer fails, every rule of it that finished is
    /// committed all the same (output in place, record written, nothing temporary left), a
    /// later layer does not run, and the next run reruns only the failed rule.
    #[test]
    fn a_failing_layer_keeps_what_finished_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let rules = |fail: std::sync::Arc<std::sync::atomic::AtomicBool>| {
            let mut rules: Vec<Rule> = (0..8)
                .map(|i| Rule {
                    name: format!("make/{i}"),
                    inputs: vec![],
                    after: vec![],
                    outputs: vec![d.join(format!("out{i}.json"))],
                    params: serde_json::json!({}),
                    implementation: "v1".into(),
                    kind: (),
                    job: Box::new(move |ctx: &Ctx| Ok(ctx.write_json(0, &i)?)),
                })
                .collect();
            rules.push(Rule {
                name: "make/bad".into(),
                inputs: vec![],
                after: vec![],
                outputs: vec![d.join("bad.json")],
                params: serde_json::json!({}),
                implementation: "v1".into(),
                kind: (),
                job: Box::new(move |ctx: &Ctx| {
                    if fail.load(std::sync::atomic::Ordering::SeqCst) {
                        Err("refused".into())
                    } else {
                        Ok(ctx.write_json(0, &"ok")?)
                    }
                }),
            });
            rules.push(Rule {
                name: "sum".into(),
                inputs: (0..8).map(|i| d.join(format!("out{i}.json"))).collect(),
                after: vec![],
                outputs: vec![d.join("sum.json")],
                params: serde_json::json!({}),
                implementation: "v1".into(),
                kind: (),
                job: Box::new(|ctx: &Ctx| Ok(ctx.write_json(0, &"sum")?)),
            });
            Flow::new(rules, d.join("provenance")).unwrap()
        };
        let err = rules(fail.clone())
            .run(&Options::default(), &|_| {})
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        for i in 0..8 {
            assert!(d.join(format!("out{i}.json")).is_file());
            assert!(d.join(format!("provenance/make.{i}.json")).is_file());
        }
        assert!(!d.join("sum.json").exists() && !d.join("bad.json").exists());
        let leftovers = std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".flow-tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        let ran: Vec<String> = rules(fail)
            .run(&Options::default(), &|_| {})
            .unwrap()
            .into_iter()
            .filter(|o| o.ran)
            .map(|o| o.rule)
            .collect();
        assert_eq!(ran, ["make/bad", "sum"]);
    }

    /// `after` orders without depending: the later rule runs in a later layer (its job sees
    /// the earlier rule's output there) and comes with it under `--until`, but a change of
    /// that output does not rerun it; `after` a file no rule writes is refused.
    #[test]
    fn after_orders_but_never_reruns() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let flow = |version: &'static str| {
            let first = d.join("first.json");
            let rules = vec![
                Rule {
                    name: "second".into(),
                    inputs: vec![],
                    after: vec![first.clone()],
                    outputs: vec![d.join("second.json")],
                    params: serde_json::json!({}),
                    implementation: "v1".into(),
                    kind: (),
                    job: Box::new(move |ctx: &Ctx| {
                        // Listed first, yet the other rule's output is already in place.
                        let seen: String = read_json(&first)?;
                        Ok(ctx.write_json(0, &seen)?)
                    }),
                },
                Rule {
                    name: "first".into(),
                    inputs: vec![],
                    after: vec![],
                    outputs: vec![d.join("first.json")],
                    params: serde_json::json!({}),
                    implementation: version.into(),
                    kind: (),
                    job: Box::new(move |ctx: &Ctx| Ok(ctx.write_json(0, &version)?)),
                },
            ];
            Flow::new(rules, d.join("provenance")).unwrap()
        };
        let ran = |version, until: Option<&str>| -> Vec<String> {
            let opts = Options {
                until: until.map(String::from),
                ..Options::default()
            };
            let outcomes = flow(version).run(&opts, &|_| {}).unwrap();
            let mut ran: Vec<String> = outcomes
                .into_iter()
                .filter(|o| o.ran)
                .map(|o| o.rule)
                .collect();
            ran.sort();
            ran
        };
        // (That the first ran before the second, its job checked.)
        assert_eq!(ran("v1", Some("second")), ["first", "second"]);
        assert_eq!(read_json::<String>(&d.join("second.json")).unwrap(), "v1");
        // A new output of the first rule (another implementation) reruns only that rule.
        assert_eq!(ran("v2", None), ["first"]);
        assert!(ran("v2", None).is_empty());
        assert_eq!(read_json::<String>(&d.join("second.json")).unwrap(), "v1");

        let orphan = Rule {
            name: "orphan".into(),
            inputs: vec![],
            after: vec![d.join("nobody.json")],
            outputs: vec![d.join("orphan.json")],
            params: serde_json::json!({}),
            implementation: "v1".into(),
            kind: (),
            job: Box::new(|ctx: &Ctx| Ok(ctx.write_json(0, &0)?)),
        };
        let err = Flow::new(vec![orphan], d.join("provenance")).err().unwrap();
        assert!(err.to_string().contains("nobody.json"), "{err}");
    }

    /// A record's output hashes are those of the files' content, whether the job wrote
    /// through `Ctx` (hashed as written), to `Ctx::output` itself (read back), or both (the
    /// file as it is at the end: same size, other bytes).
    #[test]
    fn recorded_output_hashes_are_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let outs: Vec<PathBuf> = (0..4).map(|i| d.join(format!("out{i}"))).collect();
        let big: Vec<u64> = (0..100_000).collect();
        let rule = Rule {
            name: "write".into(),
            inputs: vec![],
            after: vec![],
            outputs: outs.clone(),
            params: serde_json::json!({}),
            implementation: "v1".into(),
            kind: (),
            job: Box::new(move |ctx: &Ctx| {
                // Small pieces through the write buffer (twice: the second write counts).
                ctx.write_json(0, &"draft")?;
                ctx.write_binary(0, &big)?;
                // One write larger than the buffer (it goes past it), then small ones.
                ctx.write_with(1, |w| {
                    w.write_all(&vec![7u8; 200_000])?;
                    Ok(w.write_all(b"tail")?)
                })?;
                std::fs::write(ctx.output(2), "direct")?;
                ctx.write_json(3, &"first")?;
                Ok(std::fs::write(ctx.output(3), "\"other\"\n")?)
            }),
        };
        Flow::new(vec![rule], d.join("provenance"))
            .unwrap()
            .run(&Options::default(), &|_| {})
            .unwrap();
        let record: Record = read_json(&d.join("provenance/write.json")).unwrap();
        for (o, s) in outs.iter().zip(&record.outputs) {
            let content = std::fs::read(o).unwrap();
            assert_eq!(
                s.blake3,
                blake3::hash(&content).to_hex().to_string(),
                "{o:?}"
            );
            assert_eq!(s.bytes, content.len() as u64);
        }
        assert_eq!(std::fs::read(&outs[3]).unwrap(), b"\"other\"\n");
    }

    /// A hash taken as the file was written is used only while size and mtime are still
    /// those it was written with; otherwise the file is read and hashed.
    #[test]
    fn hashes_taken_on_write_are_trusted_only_for_that_write() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "abc").unwrap();
        let (bytes, mtime_ns) = Hashes::stat(&f).unwrap();
        let claimed = |bytes, mtime_ns| Written {
            bytes,
            mtime_ns,
            blake3: "as written".into(),
        };
        let hashes = Hashes::default();
        let s = hashes.written(&f, claimed(bytes, mtime_ns)).unwrap();
        assert_eq!(s.blake3, "as written");
        let real = blake3::hash(b"abc").to_hex().to_string();
        for w in [claimed(bytes + 1, mtime_ns), claimed(bytes, mtime_ns + 1)] {
            assert_eq!(Hashes::default().written(&f, w).unwrap().blake3, real);
        }
    }

    #[test]
    fn parameter_diffs_name_the_leaves() {
        let a = serde_json::json!({"cuts": {"pt_min": 25.0, "eta": 2.37}, "bins": 55});
        let b = serde_json::json!({"cuts": {"pt_min": 30.0, "eta": 2.37}, "bins": 55});
        assert_eq!(param_diff(&a, &b), vec!["cuts.pt_min: 25.0 → 30.0"]);
        assert!(param_diff(&a, &a).is_empty());
    }
}
