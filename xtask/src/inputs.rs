//! What `--data` and `--mc` accept: files, globs, directories and file lists, expanded into
//! one list of files in a fixed order (the order the analysis merges them in).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Expands each argument, in order: `@LIST` (one path per line, relative to the list's
/// directory; blank lines and `#` comments skipped; entries expanded like arguments, except
/// further lists), a directory (its `*.root` files, sorted by name), a glob (its matches,
/// sorted), or a path. Anything that names no file is an error naming it, and so is a file
/// given twice.
pub fn expand(args: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        match a.strip_prefix('@') {
            Some(list) => {
                let text = std::fs::read_to_string(list)
                    .with_context(|| format!("reading the file list {list}"))?;
                let base = Path::new(list).parent().unwrap_or(Path::new(""));
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    if line.starts_with('@') {
                        bail!("{list}:{}: a file list cannot name another list", n + 1);
                    }
                    let path = base.join(line);
                    let path = path.to_string_lossy();
                    one(&path, &mut out).with_context(|| format!("{list}:{}", n + 1))?;
                }
            }
            None => one(a, &mut out)?,
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &out {
        let key = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        if !seen.insert(key) {
            bail!("{} is given twice", p.display());
        }
    }
    Ok(out)
}

fn one(arg: &str, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let path = Path::new(arg);
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading the directory {arg}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "root"))
            .collect();
        if files.is_empty() {
            bail!("the directory {arg} holds no .root file");
        }
        files.sort();
        out.extend(files);
    } else if arg.contains(['*', '?', '[']) {
        let mut matches: Vec<PathBuf> = glob::glob(arg)
            .with_context(|| format!("bad glob pattern '{arg}'"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if matches.is_empty() {
            bail!("no file matches '{arg}'");
        }
        matches.sort();
        out.extend(matches);
    } else if path.is_file() {
        out.push(path.to_path_buf());
    } else {
        bail!("{arg}: no such file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn files_globs_directories_and_lists() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("run2");
        std::fs::create_dir(&sub).unwrap();
        for f in ["b.root", "a.root", "notes.txt"] {
            std::fs::write(sub.join(f), "x").unwrap();
        }
        std::fs::write(d.path().join("c.root"), "x").unwrap();
        let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let names = |v: Vec<std::path::PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        // A directory: its .root files, sorted.
        assert_eq!(names(expand(&[s(&sub)]).unwrap()), ["a.root", "b.root"]);
        // A glob, then a file.
        let glob = format!("{}/*.root", s(&sub));
        assert_eq!(
            names(expand(&[glob, s(&d.path().join("c.root"))]).unwrap()),
            ["a.root", "b.root", "c.root"]
        );
        // A list, relative to its own directory, with a comment and a blank line.
        let list = d.path().join("files.txt");
        std::fs::write(&list, "# the run\n\nrun2/b.root\nc.root\n").unwrap();
        let got = expand(&[format!("@{}", s(&list))]).unwrap();
        assert_eq!(names(got.clone()), ["b.root", "c.root"]);
        assert!(got[0].is_file());
        // Errors name what was wrong.
        let e = |a: &str| format!("{:#}", expand(&[a.to_string()]).unwrap_err());
        assert!(e("/no/such.root").contains("/no/such.root: no such file"));
        assert!(e(&format!("{}/*.nothing", s(&sub))).contains("no file matches"));
        std::fs::write(&list, "c.root\nmissing.root\n").unwrap();
        let msg = e(&format!("@{}", s(&list)));
        assert!(
            msg.contains("files.txt:2") && msg.contains("missing.root"),
            "{msg}"
        );
        let twice = expand(&[s(&sub), s(&sub.join("a.root"))]).unwrap_err();
        assert!(format!("{twice}").contains("a.root is given twice"));
    }
}
