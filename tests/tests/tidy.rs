//! Docs that point into the repository point at something: every repository path named in a
//! Markdown document, a `Cargo.toml` comment or a Rust comment exists (rust-analyzer's tidy
//! tests, for paths; `vendor/` keeps upstream's docs). A path is a word that starts with one of the repository's top-level
//! folders and a `/`; globs must match a file; what `.gitignore` names (generated data,
//! outputs) and placeholders in capitals (`cells/M/T/trial-N`) are not checked.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files whose text is checked: Markdown (not the prompts, written for the model's own
/// crate), Cargo manifests (comments only) and Rust sources (doc and line comments).
fn documents(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if ![
                "target",
                ".git",
                "generated",
                "real",
                "prompts",
                "corpus",
                "fixtures",
                "vendor",
            ]
            .contains(&name.as_str())
            {
                documents(&p, out);
            }
        } else if name.ends_with(".md") || name == "Cargo.toml" || name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// The words of the comment or document text of `file` that name repository paths.
fn named_paths(file: &Path, text: &str, tops: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let md = file.extension().is_some_and(|e| e == "md");
    for (n, line) in text.lines().enumerate() {
        let prose = if md {
            line
        } else if let Some(i) = line.find("//").or_else(|| {
            line.find('#')
                .filter(|_| file.file_name().is_some_and(|f| f == "Cargo.toml"))
        }) {
            &line[i..]
        } else {
            continue;
        };
        for word in prose
            .split(|c: char| c.is_whitespace() || "`()[]<>\"',;|".contains(c) || c == '\u{2014}')
        {
            // `file.rs::item` names an item in a file: the file is the path.
            let word = word.split("::").next().unwrap_or(word);
            let word = word.trim_end_matches(['.', ':']);
            let Some((top, _)) = word.split_once('/') else {
                continue;
            };
            if !tops.iter().any(|t| t == top) || word.contains("://") {
                continue;
            }
            out.push((n + 1, word.to_string()));
        }
    }
    out
}

/// Whether `path` (relative to the repository) exists, as a glob where it has a `*`.
fn exists(root: &Path, path: &str) -> bool {
    if !path.contains('*') {
        return root.join(path).exists();
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
    if dir.contains('*') {
        return true; // nested globs: not worth checking
    }
    let (pre, post) = pattern.split_once('*').unwrap();
    std::fs::read_dir(root.join(dir)).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(pre) && n.ends_with(post.trim_start_matches('*'))
        })
    })
}

#[test]
fn every_repository_path_in_the_docs_exists() {
    let root = repo().canonicalize().unwrap();
    let ignored: Vec<String> = std::fs::read_to_string(root.join(".gitignore"))
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('*'))
        .collect();
    let tops: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.') || n == ".ci")
        .collect();
    let mut files = Vec::new();
    documents(&root, &mut files);
    assert!(files.len() > 100, "{} files", files.len());
    let mut missing = Vec::new();
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, path) in named_paths(f, &text, &tops) {
            // `NAME.toml`, `M/T/trial-N`, `{a,b}.toml`: placeholders, not paths.
            let placeholder = path.contains('{')
                || path.split('/').any(|seg| {
                    let stem = seg.split('.').next().unwrap_or(seg);
                    let caps = !stem.is_empty()
                        && stem.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                    caps || seg.ends_with("-N")
                });
            if placeholder || ignored.iter().any(|i| path.starts_with(i.as_str())) {
                continue;
            }
            checked += 1;
            if !exists(&root, &path) {
                let rel = f.strip_prefix(&root).unwrap().display().to_string();
                missing.push(format!("{rel}:{line}: {path}"));
            }
        }
    }
    assert!(checked > 50, "only {checked} paths checked");
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}
