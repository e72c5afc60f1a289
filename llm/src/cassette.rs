//! Record and replay: a cassette is a JSONL file, one line per call, keyed by a BLAKE3 hash of
//! everything that determines the answer (endpoint, model, messages, sampling parameters,
//! trial). Secrets are redacted before a line is written; the API key is never in a request
//! body anyway, and a query string in the base URL is never recorded.

use super::{redact, Llm, LlmConfig, LlmError, Message, Reply};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One recorded call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// [`CASSETTE_FORMAT`] (entries without one are version 1).
    #[serde(default = "version_1")]
    pub format_version: u32,
    /// The call's cassette key ([`key`]).
    pub key: String,
    /// The endpoint's public URL (no query string).
    pub endpoint: String,
    /// The model name.
    pub model: String,
    /// The call's trial number.
    pub trial: u32,
    /// The messages sent.
    pub messages: Vec<Message>,
    /// The model's reply.
    pub reply: Reply,
}

/// The layout version of cassette entries (2: the field itself appears).
pub const CASSETTE_FORMAT: u32 = 2;

fn version_1() -> u32 {
    1
}

/// The cassette key of a call.
pub fn key(config: &LlmConfig, messages: &[Message], trial: u32) -> String {
    let doc = serde_json::json!({
        "endpoint": config.public_url(),
        "model": config.model,
        "messages": messages,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "seed": config.seed,
        "max_tokens": config.max_tokens,
        "trial": trial,
    });
    blake3::hash(doc.to_string().as_bytes()).to_hex()[..32].to_string()
}

/// Wraps a live model and appends each successful call to a cassette (flushed per line, so a
/// crash loses nothing already answered).
pub struct Recorder<L> {
    inner: L,
    file: std::fs::File,
    path: PathBuf,
    secrets: Vec<String>,
}

impl<L: Llm> Recorder<L> {
    /// Appends to `path` (created if missing). `secrets` are redacted from every line.
    pub fn new(inner: L, path: &Path, secrets: Vec<String>) -> Result<Self, LlmError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| LlmError::Cassette {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            inner,
            file,
            path: path.to_path_buf(),
            secrets,
        })
    }
}

impl<L: Llm> Llm for Recorder<L> {
    fn chat(&mut self, messages: &[Message], trial: u32) -> Result<Reply, LlmError> {
        let reply = self.inner.chat(messages, trial)?;
        let config = self.inner.config();
        let entry = Entry {
            format_version: CASSETTE_FORMAT,
            key: key(config, messages, trial),
            endpoint: config.public_url(),
            model: config.model.clone(),
            trial,
            messages: messages.to_vec(),
            reply: reply.clone(),
        };
        let line = redact(
            &serde_json::to_string(&entry).expect("entries serialise"),
            &self.secrets,
        );
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .map_err(|e| LlmError::Cassette {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(reply)
    }

    fn config(&self) -> &LlmConfig {
        self.inner.config()
    }
}

/// Answers from a cassette; no network. A call that was not recorded is an error that says so.
pub struct Replayer {
    config: LlmConfig,
    entries: HashMap<String, Reply>,
    path: PathBuf,
}

impl Replayer {
    /// Loads `path`. `config` must match the recording (endpoint, model, sampling parameters),
    /// or every call misses.
    pub fn open(path: &Path, config: LlmConfig) -> Result<Self, LlmError> {
        let err = |message: String| LlmError::Cassette {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut entries = HashMap::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let e: Entry =
                serde_json::from_str(line).map_err(|e| err(format!("line {}: {e}", i + 1)))?;
            if e.format_version > CASSETTE_FORMAT {
                return Err(err(format!(
                    "line {}: cassette format {}, newer than this build reads ({CASSETTE_FORMAT})",
                    i + 1,
                    e.format_version
                )));
            }
            // A call recorded again (appended later) replaces the earlier answer.
            entries.insert(e.key, e.reply);
        }
        Ok(Self {
            config,
            entries,
            path: path.to_path_buf(),
        })
    }

    /// Number of recorded calls (a call recorded again counts once).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cassette holds no calls.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Llm for Replayer {
    fn chat(&mut self, messages: &[Message], trial: u32) -> Result<Reply, LlmError> {
        let k = key(&self.config, messages, trial);
        self.entries
            .get(&k)
            .cloned()
            .ok_or_else(|| LlmError::CassetteMiss {
                path: self.path.display().to_string(),
                model: self.config.model.clone(),
                trial,
                messages: messages.len(),
                key: k,
            })
    }

    fn config(&self) -> &LlmConfig {
        &self.config
    }
}
