//! `cargo xtask inspect FILE... [--json]`: what is in ROOT files (step 1 of the workflow).

use analysis::rootio::{inspect, FileSummary};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// ROOT files to inspect.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print JSON (one array of file summaries) instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut summaries = Vec::new();
    let mut failed = 0;
    for f in &args.files {
        match inspect(f) {
            Ok(s) => summaries.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    } else {
        for s in &summaries {
            print_table(s);
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be read", args.files.len());
    }
    Ok(())
}

fn print_table(s: &FileSummary) {
    println!(
        "{}  ({}, compression {})",
        s.path,
        human_bytes(s.size_bytes as i64),
        s.compression
    );
    for t in &s.trees {
        println!(
            "  tree '{}': {} entries, {} branches",
            t.name,
            t.entries,
            t.branches.len()
        );
        let w = t
            .branches
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let tw = t
            .branches
            .iter()
            .map(|b| b.type_name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!(
            "    {:<w$}  {:<tw$}  {:>11}  {:>7}  {:>10}  {:>10}  {:>5}",
            "branch", "type", "compression", "baskets", "on disk", "in memory", "ratio"
        );
        for b in &t.branches {
            let ratio = if b.compressed_bytes > 0 {
                format!(
                    "{:.2}",
                    b.uncompressed_bytes as f64 / b.compressed_bytes as f64
                )
            } else {
                "-".into()
            };
            println!(
                "    {:<w$}  {:<tw$}  {:>11}  {:>7}  {:>10}  {:>10}  {:>5}{}",
                b.name,
                b.type_name,
                b.compression,
                b.baskets,
                human_bytes(b.compressed_bytes),
                human_bytes(b.uncompressed_bytes),
                ratio,
                if b.columnar {
                    ""
                } else {
                    "  (not columnar-readable)"
                }
            );
        }
    }
}

/// `1.2 MiB`-style sizes.
pub fn human_bytes(n: i64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", n / 1024f64.powi(3)),
        n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / 1024f64.powi(2)),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}
