//! `cargo xtask bench-compile`: the latency of the compile loop, on the path the agent takes:
//! the confined build (rustc in the sandbox against the prebuilt `stage-api`). A realistic
//! select stage (`agent/tests/answers/select_ok.rs`) is built once in a fresh crate (first),
//! then gets a one-line edit per run and is type-checked and built (warm), plus a check of a
//! version with a type error (how fast diagnostics come back). Prints a table. Refuses to
//! run without the confinement (Landlock and seccomp), whose cost is part of what it times.

use agent::stage_crate::Toolchain;
use analysis::stage::StageKind;
use sandbox::Isolation;
use std::time::Instant;

const STAGE: &str = include_str!("../../agent/tests/answers/select_ok.rs");

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs of each step (after the warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let iso = Isolation::current();
    anyhow::ensure!(
        iso.landlock_abi.is_some() && iso.seccomp,
        "the build sandbox is not available here (Landlock: {}, seccomp: {}): nothing to time",
        iso.landlock_abi.is_some(),
        iso.seccomp
    );
    eprintln!(
        "sandbox: namespaces {}, control groups {}",
        iso.namespaces,
        iso.cgroups.as_deref().unwrap_or("none")
    );
    let toolchain = Toolchain::default();
    let t = Instant::now();
    toolchain.prepare().map_err(anyhow::Error::msg)?;
    eprintln!(
        "stage toolchain (cargo build -p stage-api, trusted, once): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // The same stage with a type error (an f32 pushed into a Vec<f64>).
    let broken = STAGE.replacen("out.m_yy.push(m);", "out.m_yy.push(m as f32);", 1);
    anyhow::ensure!(broken != STAGE, "the type-error edit no longer applies");
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("first build of a fresh crate", vec![]),
        ("check (compiles)", vec![]),
        ("check (type error)", vec![]),
        ("build", vec![]),
    ];
    for run in 0..args.runs {
        let krate = toolchain.new_crate(StageKind::Select)?;
        krate.write_code(STAGE)?;
        let b = krate.build();
        anyhow::ensure!(b.ok, "the stage does not build: {:?}", b.failure);
        rows[0].1.push(b.wall_s);
        // Warm: a one-line edit per run in the same crate (its incremental state).
        for (k, row) in rows.iter_mut().enumerate().skip(1) {
            let code = if k == 2 { broken.as_str() } else { STAGE };
            krate.write_code(&format!("{code}\nconst EDIT: u32 = {run};\n"))?;
            let b = if k == 3 { krate.build() } else { krate.check() };
            anyhow::ensure!(b.ok == (k != 2), "unexpected build result in '{}'", row.0);
            row.1.push(b.wall_s);
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
