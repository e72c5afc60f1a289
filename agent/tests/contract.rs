//! The prompts' contract excerpts (`templates/prompts/contract/*.md`) are generated from the
//! `stage-api` sources: the listed items verbatim (doc comments and derives kept, serde
//! attributes dropped), inherent methods as signatures, trait impls as headers. This test
//! regenerates them and fails if a file differs, and it fails when a public signature of
//! `stage-api` changed while `STAGE_API_VERSION` did not (`stage-api/api.lock` holds the
//! version and a hash of every public signature). After a deliberate change: bump the
//! version, then run with `UPDATE_EXPECT=1` to rewrite the excerpts and the lock.

use proc_macro2::LineColumn;
use quote::ToTokens;
use std::path::{Path, PathBuf};
use syn::spanned::Spanned;

/// What each stage's excerpt shows, in order.
const EXCERPTS: [(&str, &str, &[&str]); 7] = [
    (
        "inspect",
        "Inspect",
        &[
            "Inspect",
            "StageError",
            "FileSummary",
            "TreeSummary",
            "BranchSummary",
        ],
    ),
    (
        "convert",
        "Convert",
        &[
            "Convert",
            "StageError",
            "ConvertInput",
            "NpyManifest",
            "NpyColumn",
        ],
    ),
    (
        "select",
        "Select",
        &[
            "Select",
            "StageError",
            "PhotonEvents",
            "Release",
            "Photons",
            "McInfo",
            "Cuts",
            "SelectOutput",
            "Diphotons",
            "Kinematics",
            "CutFlow",
            "CutCount",
            "CUT_NAMES",
        ],
    ),
    (
        "histogram",
        "MakeHistogram",
        &[
            "MakeHistogram",
            "StageError",
            "Diphotons",
            "Kinematics",
            "Binning",
            "Histogram",
        ],
    ),
    (
        "fit",
        "Fit",
        &[
            "Fit",
            "StageError",
            "FitModel",
            "Signal",
            "Background",
            "DscbTails",
            "ParamSpec",
            "Histogram",
            "Binning",
            "FitResult",
            "FitParam",
            "FitStatus",
        ],
    ),
    (
        "separate",
        "Separate",
        &[
            "Separate",
            "StageError",
            "SeparateInput",
            "TrainingSet",
            "Scores",
        ],
    ),
    (
        "categorize",
        "Categorize",
        &["Categorize", "StageError", "CategorizeInput", "Boundaries"],
    ),
];

/// The stages whose data carry physical units (the others: counts, bytes, scores).
const IN_GEV: [&str; 3] = ["select", "histogram", "fit"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Source {
    text: String,
    /// Byte offset of each line's start.
    lines: Vec<usize>,
    file: syn::File,
}

impl Source {
    fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap();
        let lines = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let file = syn::parse_file(&text).unwrap();
        Self { text, lines, file }
    }
    fn offset(&self, at: LineColumn) -> usize {
        let start = self.lines[at.line - 1];
        self.text[start..]
            .char_indices()
            .nth(at.column)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
    fn slice(&self, from: LineColumn, to: LineColumn) -> &str {
        &self.text[self.offset(from)..self.offset(to)]
    }
    /// The source of `node` (with its attributes), without serde attributes.
    fn item_text(&self, node: &impl Spanned) -> String {
        let s = node.span();
        self.slice(s.start(), s.end())
            .lines()
            .filter(|l| !l.trim_start().starts_with("#[serde"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn sources() -> Vec<Source> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("stage-api/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| Source::load(p)).collect()
}

fn is_pub(v: &syn::Visibility) -> bool {
    matches!(v, syn::Visibility::Public(_))
}

fn self_name(i: &syn::ItemImpl) -> String {
    match &*i.self_ty {
        syn::Type::Path(p) => p.path.segments.last().unwrap().ident.to_string(),
        _ => String::new(),
    }
}

/// The excerpt of `name` from all sources: its definition, its inherent methods as
/// signatures, its trait impls as headers.
fn excerpt_of(name: &str, srcs: &[Source]) -> String {
    let mut def = None;
    let mut methods = vec![];
    let mut traits = vec![];
    for src in srcs {
        for item in &src.file.items {
            let ident = match item {
                syn::Item::Struct(s) if is_pub(&s.vis) => Some(&s.ident),
                syn::Item::Enum(e) if is_pub(&e.vis) => Some(&e.ident),
                syn::Item::Trait(t) if is_pub(&t.vis) => Some(&t.ident),
                syn::Item::Const(c) if is_pub(&c.vis) => Some(&c.ident),
                _ => None,
            };
            if ident.is_some_and(|i| i == name) {
                def = Some(src.item_text(item));
            }
            let syn::Item::Impl(imp) = item else { continue };
            if self_name(imp) != name {
                continue;
            }
            match &imp.trait_ {
                Some(_) => {
                    let mut text = String::new();
                    for a in imp.attrs.iter().filter(|a| a.path().is_ident("doc")) {
                        text.push_str(src.slice(a.span().start(), a.span().end()));
                        text.push('\n');
                    }
                    text.push_str(src.slice(imp.impl_token.span.start(), imp.self_ty.span().end()));
                    traits.push(format!("{text} {{ ... }}"));
                }
                None => {
                    for f in &imp.items {
                        let syn::ImplItem::Fn(f) = f else { continue };
                        if !is_pub(&f.vis) {
                            continue;
                        }
                        let mut text = String::new();
                        for a in f.attrs.iter().filter(|a| a.path().is_ident("doc")) {
                            text.push_str("    ");
                            text.push_str(src.slice(a.span().start(), a.span().end()));
                            text.push('\n');
                        }
                        text.push_str("    ");
                        text.push_str(src.slice(f.vis.span().start(), f.sig.span().end()));
                        text.push(';');
                        methods.push(text);
                    }
                }
            }
        }
    }
    let mut out = def.unwrap_or_else(|| panic!("stage-api has no public item `{name}`"));
    if !methods.is_empty() {
        out.push_str(&format!("\nimpl {name} {{\n{}\n}}", methods.join("\n")));
    }
    for t in traits {
        out.push('\n');
        out.push_str(&t);
    }
    out
}

fn render(stage: &str, trait_name: &str, items: &[&str], srcs: &[Source]) -> String {
    let body: Vec<String> = items.iter().map(|n| excerpt_of(n, srcs)).collect();
    let units = if IN_GEV.contains(&stage) {
        " Units: GeV."
    } else {
        ""
    };
    format!(
        "Stage API version {} (crate `stage_api`; every item below is at its root, e.g.\n\
         `use stage_api::{{{trait_name}, StageError}};`). Write `src/stage.rs` with\n\
         `pub struct Stage;` and `impl {trait_name} for Stage`.{units}\n\
         \n```rust\n{}\n```\n",
        stage_api::STAGE_API_VERSION,
        body.join("\n\n")
    )
}

/// Every public signature of stage-api (function bodies, doc comments and lint attributes
/// left out).
fn signatures(srcs: &[Source]) -> String {
    // Attributes that shape the data (derives, the JSON form) belong to a signature; docs and
    // lint levels do not.
    fn strip_docs(attrs: &mut Vec<syn::Attribute>) {
        attrs.retain(|a| {
            ["derive", "serde", "repr"]
                .iter()
                .any(|k| a.path().is_ident(k))
        });
    }
    let mut out = String::new();
    for src in srcs {
        for item in &src.file.items {
            let mut item = item.clone();
            let keep = match &mut item {
                syn::Item::Struct(s) => {
                    strip_docs(&mut s.attrs);
                    for f in s.fields.iter_mut() {
                        strip_docs(&mut f.attrs);
                    }
                    is_pub(&s.vis)
                }
                syn::Item::Enum(e) => {
                    strip_docs(&mut e.attrs);
                    for v in e.variants.iter_mut() {
                        strip_docs(&mut v.attrs);
                    }
                    is_pub(&e.vis)
                }
                syn::Item::Trait(t) => {
                    strip_docs(&mut t.attrs);
                    for i in t.items.iter_mut() {
                        if let syn::TraitItem::Fn(f) = i {
                            strip_docs(&mut f.attrs);
                        }
                    }
                    is_pub(&t.vis)
                }
                syn::Item::Const(c) => {
                    strip_docs(&mut c.attrs);
                    is_pub(&c.vis)
                }
                syn::Item::Impl(i) => {
                    strip_docs(&mut i.attrs);
                    i.items.retain(|x| matches!(x, syn::ImplItem::Fn(f) if is_pub(&f.vis) || i.trait_.is_some()));
                    for x in i.items.iter_mut() {
                        if let syn::ImplItem::Fn(f) = x {
                            strip_docs(&mut f.attrs);
                            f.block = syn::parse_quote!({});
                        }
                    }
                    true
                }
                syn::Item::Fn(f) => {
                    strip_docs(&mut f.attrs);
                    *f.block = syn::parse_quote!({});
                    is_pub(&f.vis)
                }
                _ => false,
            };
            if keep {
                out.push_str(&item.to_token_stream().to_string());
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn contract_excerpts_are_generated_from_stage_api_and_the_version_follows_its_signatures() {
    let srcs = sources();
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let lock_path = repo().join("stage-api/api.lock");
    let hash = blake3::hash(signatures(&srcs).as_bytes())
        .to_hex()
        .to_string();
    let lock = format!(
        "version {}\nsignatures {hash}\n",
        stage_api::STAGE_API_VERSION
    );
    let old = std::fs::read_to_string(&lock_path).unwrap_or_default();
    if old != lock {
        let old_version = old
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("version "))
            .and_then(|v| v.parse::<u32>().ok());
        assert_ne!(
            old_version,
            Some(stage_api::STAGE_API_VERSION),
            "a public signature of stage-api changed but STAGE_API_VERSION did not: bump it \
             (stage-api/src/lib.rs), then run this test with UPDATE_EXPECT=1"
        );
        assert!(
            update,
            "STAGE_API_VERSION moved to {}: run this test with UPDATE_EXPECT=1 to regenerate \
             the contract excerpts and stage-api/api.lock",
            stage_api::STAGE_API_VERSION
        );
        std::fs::write(&lock_path, &lock).unwrap();
    }
    for (stage, trait_name, items) in EXCERPTS {
        let path = repo().join(format!("templates/prompts/contract/{stage}.md"));
        let want = render(stage, trait_name, items, &srcs);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            assert!(
                update,
                "{} is not what stage-api/src says: run this test with UPDATE_EXPECT=1",
                path.display()
            );
            std::fs::write(&path, want).unwrap();
        }
    }
}

#[test]
fn the_excerpts_are_what_the_prompts_send() {
    for (stage, _, _) in EXCERPTS {
        let kind: stage_api::StageKind = serde_json::from_value(serde_json::json!(stage)).unwrap();
        let sent = agent::prompts::contract(kind);
        let file =
            std::fs::read_to_string(repo().join(format!("templates/prompts/contract/{stage}.md")))
                .unwrap();
        assert_eq!(sent.trim(), file.trim(), "{stage}");
    }
}
