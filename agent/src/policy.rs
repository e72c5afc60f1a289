//! A fast static screen of the model's code, before anything is compiled. It rejects what a
//! stage never needs and what the sandbox cannot stop because it happens at compile time
//! (`include_str!` of a host file, `env!` of a key), and it gives a clear class and message for
//! the usual attempts (`std::env`, `std::net`, `std::process`, `std::fs`, `unsafe`). It is a
//! screen, not the security boundary: the sandbox is.
//!
//! The code is scanned with comments and string/char literals blanked out, token by token.

use serde::{Deserialize, Serialize};

/// One broken rule, with the 1-based line where it was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: String,
    pub line: usize,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.rule)
    }
}

/// Macros that read the host at compile time or escape the language, flagged wherever the
/// name appears (a `use ... as` rename or a `macro_rules!` indirection still names them).
const MACROS: [&str; 6] = [
    "include_str",
    "include_bytes",
    "option_env",
    "asm",
    "global_asm",
    "macro_rules",
];
/// The same, for names that are also ordinary words: flagged as `name!` or in a `use`.
const MACRO_WORDS: [&str; 2] = ["include", "env"];
/// Standard-library modules a stage has no use for.
const MODULES: [&str; 5] = ["env", "net", "process", "fs", "os"];
const KEYWORDS: [&str; 2] = ["unsafe", "extern"];
const ATTRIBUTES: [&str; 5] = ["path", "link", "no_mangle", "export_name", "link_section"];

/// Checks `code`; `forbidden` adds task-specific identifiers or `a::b` paths (e.g. the reference
/// implementation the stage must not call).
pub fn check(code: &str, forbidden: &[String]) -> Vec<Violation> {
    let clean = blank_literals(code);
    let toks = tokens(&clean);
    let mut v = Vec::new();
    let mut push = |rule: String, line: usize| {
        if !v.iter().any(|x: &Violation| x.rule == rule) {
            v.push(Violation { rule, line });
        }
    };
    let mut in_use = false;
    for (i, t) in toks.iter().enumerate() {
        let next = toks.get(i + 1).map(|t| t.text);
        let prev = i.checked_sub(1).map(|j| toks[j].text);
        match t.text {
            "use" => in_use = true,
            ";" => in_use = false,
            _ => {}
        }
        if MACROS.contains(&t.text)
            || (MACRO_WORDS.contains(&t.text) && (next == Some("!") || in_use))
        {
            push(
                format!(
                    "`{}!` reads the host at compile time or escapes the language",
                    t.text
                ),
                t.line,
            );
        }
        if KEYWORDS.contains(&t.text) {
            push(
                format!("`{}` code is not allowed in a stage", t.text),
                t.line,
            );
        }
        if ATTRIBUTES.contains(&t.text) && (prev == Some("[") || prev == Some("(")) {
            push(
                format!("the `#[{}]` attribute is not allowed in a stage", t.text),
                t.line,
            );
        }
        if MODULES.contains(&t.text) && (in_use || next == Some("::") || prev == Some("::")) {
            push(format!("`std::{}` is not available to a stage (no files, processes, network or environment)", t.text), t.line);
        }
        if t.text == "mod" && toks.get(i + 2).map(|t| t.text) == Some(";") {
            push(
                "a stage is one file: `mod name;` is not allowed".into(),
                t.line,
            );
        }
    }
    // `use` statements as token ranges, for imports of forbidden paths by groups or globs.
    let uses: Vec<(usize, usize)> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.text == "use")
        .map(|(i, _)| {
            (
                i,
                (i..toks.len())
                    .find(|&j| toks[j].text == ";")
                    .unwrap_or(toks.len()),
            )
        })
        .collect();
    for f in forbidden {
        let parts: Vec<&str> = f.split("::").collect();
        if parts.len() > 1 {
            // `use a::{b as x}` or `use a::*` for a forbidden `a::b`.
            for &(start, end) in &uses {
                let span = &toks[start..end];
                let Some(k) = (0..span.len()).find(|&k| {
                    span[k].text == parts[0] && span.get(k + 1).map(|t| t.text) == Some("::")
                }) else {
                    continue;
                };
                let last = parts[parts.len() - 1];
                if span[k..].iter().any(|t| t.text == last || t.text == "*") {
                    push(
                        format!("`{f}` is not allowed in this task (write the stage yourself)"),
                        span[k].line,
                    );
                }
            }
        }
        for (i, t) in toks.iter().enumerate() {
            let matches = parts.iter().enumerate().all(|(k, p)| {
                let j = i + 2 * k;
                toks.get(j).map(|t| t.text) == Some(p)
                    && (k + 1 == parts.len() || toks.get(j + 1).map(|t| t.text) == Some("::"))
            });
            if matches {
                push(
                    format!("`{f}` is not allowed in this task (write the stage yourself)"),
                    t.line,
                );
                break;
            }
        }
    }
    v
}

/// Rust paths (`analysis::select::select`, `analysis::stage::Reference`) whose code is linked
/// into `binary`: a check after the build that no renaming can dodge, for functions that are
/// not inlined (the reference implementations are large, non-generic, not `#[inline]`).
pub fn linked_symbols(binary: &[u8], paths: &[String]) -> Vec<String> {
    let found = |needle: &str| binary.windows(needle.len()).any(|w| w == needle.as_bytes());
    paths
        .iter()
        .filter(|p| {
            let segs: Vec<&str> = p.split("::").collect();
            // Legacy mangling of a function path (`8analysis6select6select`) and the
            // demangled-with-dots form used inside impl names (`analysis..stage..Reference`).
            let legacy: String = segs.iter().map(|s| format!("{}{s}", s.len())).collect();
            found(&legacy) || (segs.len() > 1 && found(&segs.join("..")))
        })
        .cloned()
        .collect()
}

struct Token<'a> {
    text: &'a str,
    line: usize,
}

/// Identifiers, `::`, and single punctuation characters.
fn tokens(s: &str) -> Vec<Token<'_>> {
    let b = s.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Token {
                text: &s[start..i],
                line,
            });
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push(Token { text: "::", line });
            i += 2;
        } else {
            out.push(Token {
                text: &s[i..i + 1],
                line,
            });
            i += 1;
        }
    }
    out
}

/// Comments and the insides of string and char literals become spaces (newlines kept).
fn blank_literals(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // Raw string r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, c[j]);
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' && (next == Some('\\') || c.get(i + 2) == Some(&'\'')) {
            // A char literal ('a', '\n', '\u{..}'); a lifetime ('a) is left alone.
            out.push('\'');
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(code: &str) -> Vec<String> {
        check(code, &["Reference".into(), "select::select".into()])
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    #[test]
    fn flags_what_a_stage_never_needs() {
        for bad in [
            "fn f() { let k = std::env::var(\"OPENAI_API_KEY\"); }",
            "use std::{collections::HashMap, env};",
            "use std as s; fn f() { s::net::TcpStream::connect(\"1.1.1.1:80\"); }",
            "fn f() { std::process::Command::new(\"sh\"); }",
            "fn f() { let _ = std::fs::write(\"/tmp/x\", \"\"); }",
            "const K: &str = env!(\"OPENAI_API_KEY\");",
            "const K: &str = include_str!(\"/etc/passwd\");",
            "fn f() { unsafe { } }",
            "#[path = \"/etc/x.rs\"] mod x;",
            "mod other;",
            "fn f() { analysis::stage::Reference; }",
            "fn f() { analysis::select::select(a, b); }",
            "use analysis::select::{select as pick};",
            "use analysis::select::*;",
            "use std::include_str as inc;",
            "macro_rules! m { ($i:ident) => { $i!(\"x\") } }",
        ] {
            assert!(!rules(bad).is_empty(), "{bad} passed the screen");
        }
    }

    #[test]
    fn leaves_ordinary_code_alone() {
        let ok = r##"
            use analysis::stage::{Select, SelectOutput, StageError};
            // std::env in a comment, /* unsafe */ too
            fn process(env: f64) -> f64 { env * 2.0 }
            fn label<'a>(s: &'a str) -> &'a str { let _c = '"'; let _r = r#"std::fs"#; s }
            const MSG: &str = "use std::net; unsafe";
            fn f(p: &analysis::events::Photons) -> usize { p.pt.len() }
            fn select_events() {}
        "##;
        assert!(rules(ok).is_empty(), "{:?}", rules(ok));
    }

    #[test]
    fn reports_the_line() {
        let v = check("fn a() {}\n\nfn b() { std::env::args(); }", &[]);
        assert_eq!(v[0].line, 3);
    }
}
