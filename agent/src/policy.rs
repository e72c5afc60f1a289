//! A fast static screen of the model's code, before anything is compiled. It is defence in
//! depth, not the boundary (the build and the run are confined by the operating system,
//! the `sandbox` crate): it gives a clear, early message for what a stage never needs (`std::env`,
//! `std::net`, `std::process`, `std::fs`, `std::os`, `unsafe`, `extern`, compile-time file and
//! environment reads, macros that generate hidden code, attributes outside a short list,
//! `mod name;`).
//!
//! The code is tokenized by `proc-macro2`, the lexer proc macros use, which agrees with rustc
//! on what is a token: raw strings, byte and C strings, nested comments, raw identifiers
//! (`r#path` is `path`) and Unicode whitespace cannot hide a token from it. Code it cannot
//! lex is rejected (rustc would reject it too). Identifiers must be ASCII.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use serde::{Deserialize, Serialize};

/// One broken rule, with the 1-based line where it was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Short name of the rule (`attribute`, `macro`, `keyword`, `std_module`, `module_file`,
    /// `non_ascii`, `lex`, `compile_time_read`): the benchmark's policy sub-category.
    #[serde(default)]
    pub kind: String,
    /// What was found and why it is refused, in words for the model.
    pub rule: String,
    /// 1-based line where it was seen; 0 when there is none (e.g. a compile-time read).
    pub line: usize,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.rule)
        } else {
            write!(f, "line {}: {}", self.line, self.rule)
        }
    }
}

/// Macros that read the host at compile time, escape the language or generate code the
/// screen cannot see: flagged wherever the name appears (a `use ... as` rename still names
/// them).
const MACROS: [&str; 8] = [
    "include_str",
    "include_bytes",
    "option_env",
    "asm",
    "global_asm",
    "naked_asm",
    "macro_rules",
    "concat_idents",
];
/// The same, for names that are also ordinary words: flagged as `name!`, after `::` or in a
/// `use`.
const MACRO_WORDS: [&str; 2] = ["include", "env"];
/// Standard-library modules a stage has no use for.
const MODULES: [&str; 5] = ["env", "net", "process", "fs", "os"];
const KEYWORDS: [&str; 2] = ["unsafe", "extern"];
/// The attributes a stage may use; every other one (`path`, `link`, `no_mangle`,
/// `export_name`, `cfg_attr`, ...) is refused.
const ATTRIBUTES: [&str; 11] = [
    "derive", "allow", "warn", "deny", "expect", "doc", "inline", "cold", "must_use", "cfg", "test",
];

/// Checks `code`.
pub fn check(code: &str) -> Vec<Violation> {
    check_allowing(code, &[])
}

/// Checks `code`, letting it use the standard-library modules in `allow` (a task's
/// `allow_std`, e.g. `fs` for the stages that read or write files: the sandbox still confines
/// what they reach).
pub fn check_allowing(code: &str, allow: &[String]) -> Vec<Violation> {
    let mut v = Vec::new();
    match code.parse::<TokenStream>() {
        Ok(tokens) => {
            let flat = flatten(tokens);
            screen(&flat, allow, &mut v);
        }
        Err(e) => v.push(Violation {
            kind: "lex".into(),
            rule: format!("the code does not lex as Rust: {e}"),
            line: e.span().start().line,
        }),
    }
    v
}

/// One token, with the delimiter that opens a group (`Open`) and closes it (`Close`), so the
/// screen reads a flat sequence.
#[derive(Debug)]
enum Tok {
    Ident(String, usize),
    Punct(char, usize),
    Literal(usize),
    Open(Delimiter, usize),
    Close(usize),
}

impl Tok {
    fn line(&self) -> usize {
        match self {
            Tok::Ident(_, l)
            | Tok::Punct(_, l)
            | Tok::Literal(l)
            | Tok::Open(_, l)
            | Tok::Close(l) => *l,
        }
    }
    fn ident(&self) -> Option<&str> {
        match self {
            Tok::Ident(s, _) => Some(s),
            _ => None,
        }
    }
    fn is_punct(&self, c: char) -> bool {
        matches!(self, Tok::Punct(p, _) if *p == c)
    }
}

fn flatten(ts: TokenStream) -> Vec<Tok> {
    let mut out = Vec::new();
    for tt in ts {
        let line = tt.span().start().line;
        match tt {
            TokenTree::Ident(i) => {
                let s = i.to_string();
                // `r#name` is `name` to the compiler.
                let s = s.strip_prefix("r#").map(str::to_string).unwrap_or(s);
                out.push(Tok::Ident(s, line));
            }
            TokenTree::Punct(p) => out.push(Tok::Punct(p.as_char(), line)),
            TokenTree::Literal(_) => out.push(Tok::Literal(line)),
            TokenTree::Group(g) => {
                out.push(Tok::Open(g.delimiter(), line));
                out.extend(flatten(g.stream()));
                out.push(Tok::Close(g.span_close().start().line));
            }
        }
    }
    out
}

fn screen(toks: &[Tok], allow: &[String], v: &mut Vec<Violation>) {
    let mut push = |kind: &str, rule: String, line: usize| {
        if !v.iter().any(|x: &Violation| x.rule == rule) {
            v.push(Violation {
                kind: kind.into(),
                rule,
                line,
            });
        }
    };
    let mut in_use = false;
    for (i, t) in toks.iter().enumerate() {
        let line = t.line();
        let next = toks.get(i + 1);
        let prev = i.checked_sub(1).map(|j| &toks[j]);
        let after_path_sep = i >= 2 && toks[i - 1].is_punct(':') && toks[i - 2].is_punct(':');
        let before_path_sep = next.is_some_and(|n| n.is_punct(':'))
            && toks.get(i + 2).is_some_and(|n| n.is_punct(':'));
        if t.is_punct(';') {
            in_use = false;
        }
        // Attributes: `#[name ...]` and `#![name ...]`.
        if t.is_punct('#') {
            let mut j = i + 1;
            if toks.get(j).is_some_and(|n| n.is_punct('!')) {
                j += 1;
            }
            if let Some(Tok::Open(Delimiter::Bracket, _)) = toks.get(j) {
                let name = toks.get(j + 1).and_then(Tok::ident).unwrap_or("");
                if !ATTRIBUTES.contains(&name) {
                    push(
                        "attribute",
                        format!(
                            "the `#[{name}]` attribute is not allowed in a stage (allowed: {})",
                            ATTRIBUTES.join(", ")
                        ),
                        line,
                    );
                }
            }
        }
        let Some(name) = t.ident() else { continue };
        if name == "use" {
            in_use = true;
        }
        if !name.is_ascii() {
            push(
                "non_ascii",
                format!("identifiers must be ASCII (`{name}`)"),
                line,
            );
        }
        let bang = next.is_some_and(|n| n.is_punct('!'));
        if MACROS.contains(&name)
            || (MACRO_WORDS.contains(&name)
                && (bang
                    || ((in_use || after_path_sep)
                        && !before_path_sep
                        && !MODULES.contains(&name))))
        {
            push(
                "macro",
                format!("`{name}!` reads the host at compile time or hides code from review"),
                line,
            );
        }
        if KEYWORDS.contains(&name) {
            push(
                "keyword",
                format!("`{name}` code is not allowed in a stage"),
                line,
            );
        }
        if MODULES.contains(&name)
            && !allow.iter().any(|a| a == name)
            && (in_use || after_path_sep || before_path_sep)
        {
            push(
                "std_module",
                format!(
                    "`std::{name}` is not available to a stage (no files, processes, network or \
                     environment)"
                ),
                line,
            );
        }
        if name == "mod"
            && prev.is_none_or(|p| !p.is_punct(':'))
            && toks.get(i + 2).is_some_and(|n| n.is_punct(';'))
        {
            push(
                "module_file",
                "a stage is one file: `mod name;` is not allowed".into(),
                line,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(code: &str) -> Vec<String> {
        check(code).into_iter().map(|v| v.rule).collect()
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
            "#[path = \"/etc/x.rs\"] mod x {}",
            "mod other;",
            "use std::include_str as inc;",
            "macro_rules! m { ($i:ident) => { $i!(\"x\") } }",
            "#[no_mangle] fn f() {}",
            "#[cfg_attr(all(), path = \"/root/x.rs\")] mod x {}",
            "#![feature(asm)]",
        ] {
            assert!(!rules(bad).is_empty(), "{bad} passed the screen");
        }
    }

    /// The bypasses of the old hand-written scanner: each hides a forbidden token from a
    /// scanner that does not lex as rustc does.
    #[test]
    fn hidden_tokens_are_seen() {
        for bad in [
            // Unicode whitespace rustc accepts (U+2028, U+0085, U+200E) glued to a name.
            "const K: &str = include_str\u{2028}!(\"/root/canary\");",
            "const K: &str = include_bytes\u{85}!(\"/root/canary\");",
            "fn f() { std::\u{200e}env::var(\"K\"); }",
            // Raw identifiers.
            "#[r#path = \"/root/x.rs\"] mod x {}",
            "const K: &str = r#include_str!(\"/root/canary\");",
            "fn f() { std::r#fs::read(\"/x\"); }",
            // Literals that put a naive literal scanner out of step.
            "const A: &[u8] = br#\"\"#; const K: &str = include_str!(\"/root/canary\");",
            "const A: &core::ffi::CStr = c\"'\"; const K: &str = include_str!(\"/root/c\");",
            "const A: &[u8] = b\"\\\"\"; fn f() { std::env::var(\"K\"); }",
            "const A: char = '\"'; const K: &str = include_str!(\"/root/canary\");",
            "/* /* nested */ still a comment */ const K: &str = include_str!(\"/x\");",
            // Body-less modules and attributes inside a group.
            "fn f() { #[path = \"/x.rs\"] mod x; }",
        ] {
            assert!(!rules(bad).is_empty(), "{bad:?} passed the screen");
        }
    }

    #[test]
    fn code_that_does_not_lex_is_refused() {
        assert!(!rules("const A: &str = \"unterminated;").is_empty());
        assert!(!rules("fn f() { let a = (1; }").is_empty());
    }

    #[test]
    fn leaves_ordinary_code_alone() {
        let ok = r##"
            use stage_api::{Select, SelectOutput, StageError, FitParam, FitResult};
            use stage_api::fit::{FitModel, ParamSpec};
            // std::env in a comment, /* unsafe */ too; m_γγ in GeV
            /// The diphoton mass, m_γγ.
            #[derive(Clone, Debug)]
            struct Pair { m: f64 }
            #[allow(dead_code)]
            fn process(env: f64) -> f64 { env * 2.0 }
            fn label<'a>(s: &'a str) -> &'a str { let _c = '"'; let _r = r#"std::fs"#; s }
            const MSG: &str = "use std::net; unsafe; m_γγ";
            fn fit(p: &[FitParam]) -> usize { p.len() }
            mod helpers { pub fn os() {} }
            #[cfg(test)]
            mod tests { #[test] fn t() {} }
        "##;
        assert!(rules(ok).is_empty(), "{:?}", rules(ok));
    }

    #[test]
    fn reports_the_line() {
        let v = check("fn a() {}\n\nfn b() { std::env::args(); }");
        assert_eq!(v[0].line, 3);
    }
}
