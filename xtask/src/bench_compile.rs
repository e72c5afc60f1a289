//! `cargo xtask bench-compile`: the warm per-iteration latency of the compile loop. A
//! realistic select stage (`agent/tests/answers/select_ok.rs`) gets a one-line edit per run,
//! then `cargo check` and `cargo build` of the stage crate are timed, plus a check of a
//! version with a type error (how fast diagnostics come back). Prints a table.

use agent::stage_crate::{StageKind, Toolchain};
use std::time::Instant;

const STAGE: &str = include_str!("../../agent/tests/answers/select_ok.rs");

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs of each step (after the warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let toolchain = Toolchain::default();
    let t = Instant::now();
    toolchain.warm_up().map_err(anyhow::Error::msg)?;
    eprintln!(
        "warm-up (placeholder stages of every kind): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let krate = toolchain.new_crate(StageKind::Select)?;
    // The same stage with a type error (an f32 pushed into a Vec<f64>).
    let broken = STAGE.replacen("out.m_yy.push(m);", "out.m_yy.push(m as f32);", 1);
    anyhow::ensure!(broken != STAGE, "the type-error edit no longer applies");
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("cargo check (compiles)", vec![]),
        ("cargo check (type error)", vec![]),
        ("cargo build", vec![]),
    ];
    // One untimed round so that each profile's stage unit exists.
    for run in 0..=args.runs {
        for (k, row) in rows.iter_mut().enumerate() {
            let code = if k == 1 { broken.as_str() } else { STAGE };
            krate.write_code(&format!("{code}\nconst EDIT: u32 = {run};\n"))?;
            let b = if k == 2 { krate.build() } else { krate.check() };
            anyhow::ensure!(b.ok == (k != 1), "unexpected build result in '{}'", row.0);
            if run > 0 {
                row.1.push(b.wall_s);
            }
        }
    }
    println!(
        "| step ({} runs, one-line edit each) | median s | min s | max s |",
        args.runs
    );
    println!("|---|---:|---:|---:|");
    for (name, mut v) in rows {
        v.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1]
        );
    }
    Ok(())
}
