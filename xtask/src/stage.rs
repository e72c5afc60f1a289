//! `cargo xtask stage NAME [--input FILE] [--output FILE]`: run one reference stage as its own
//! process, JSON in, JSON out (stdin/stdout by default).

use analysis::stage::{run_json, Reference, STAGES};
use anyhow::Context;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The stage: inspect, convert, select, histogram, fit, measure or categorize.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(STAGES))]
    name: String,
    /// Input JSON document (default: stdin).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Output JSON document (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let input = match &args.input {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    let out = run_json(&Reference, &args.name, &input)?;
    match &args.output {
        Some(p) => std::fs::write(p, out).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{out}"),
    }
    Ok(())
}
