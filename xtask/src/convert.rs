//! `cargo xtask convert FILE --out DIR`: an ntuple's branches as `.npy` files (step 2).

use analysis::stage::{Convert, ConvertInput, Reference};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// ROOT file of either release.
    file: PathBuf,
    /// Output folder for the .npy files and manifest.json.
    #[arg(long)]
    out: PathBuf,
    /// Branches to write (default: every branch that is a scalar or a vector of numbers).
    #[arg(long, num_args = 1..)]
    branches: Option<Vec<String>>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let m = Reference.convert(&ConvertInput {
        file: args.file,
        branches: args.branches,
        out_dir: args.out.clone(),
    })?;
    println!(
        "{}: tree '{}', {} entries → {} columns in {}",
        m.source,
        m.tree,
        m.entries,
        m.columns.len(),
        args.out.display()
    );
    if !m.skipped.is_empty() {
        println!(
            "skipped (not flat numeric columns): {}",
            m.skipped.join(", ")
        );
    }
    Ok(())
}
