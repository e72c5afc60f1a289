//! Embeds the implementation identities of the workflow's rules (`identity.rs`, which says
//! what they cover) as `$OUT_DIR/identities.rs`, read by `rules::Identities::BUILT`.

#[path = "identity.rs"]
mod identity;

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for r in identity::ROOTS {
        println!("cargo:rerun-if-changed={r}");
    }
    let ids = identity::identities(dir, &|f| std::fs::read(dir.join(f)).expect("a source file"));
    let mut out = String::from("Identities {\n");
    for (step, id) in ids {
        out.push_str(&format!("    {step}: {id:?},\n"));
    }
    out.push('}');
    let path =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("identities.rs");
    std::fs::write(path, out).expect("OUT_DIR is writable");
}
