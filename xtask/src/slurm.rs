//! `analyze --executor slurm`: the workflow's per-file rule instances as Slurm job arrays.
//!
//! The engine stays the one in `flow`: a task runs this same binary as `analyze … --worker
//! --until RULE` on a shared output directory, so it runs that rule (and what it needs that
//! is not yet up to date) and commits its outputs and provenance record as a local run does.
//! The coordinator submits, in one go: an array of the per-file rules that need nothing but
//! their file (`histogram/ROLE/FILE`, which brings its file's inspection and selection, and
//! `convert/…`); when steps 4–5 run, one job for `classify/train` (`afterok` on the array)
//! and an array of `score/ROLE/FILE` (`afterok` on the training). It polls `squeue` with
//! backoff until they have left the queue, asks the engine (a dry run) which targets are not
//! up to date, resubmits those a bounded number of times, then runs the rest locally —
//! merges, fits, plots — where every per-file output is found up to date. The merge order is
//! the input order, as in a local run, so `results.json` is the same bytes.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// What `--executor slurm` is told.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub max_jobs: Option<usize>,
    pub sbatch_args: Vec<String>,
    pub retries: u32,
    /// CPUs per task (the worker's --threads).
    pub cpus: usize,
}

/// One batch of targets run as one array (or one job).
pub struct Phase {
    pub name: &'static str,
    pub targets: Vec<String>,
}

/// Is `target` (and what it needs) up to date? Asked of the engine, which knows.
pub type UpToDate<'a> = dyn Fn(&str) -> anyhow::Result<bool> + 'a;

/// Runs `phases` on Slurm, in order (each after the previous one succeeded), until every
/// target is up to date or the retries are spent. `worker` is the command line of a task
/// without `--until`.
pub fn run(
    opts: &Options,
    phases: &[Phase],
    worker: &[String],
    out: &Path,
    up_to_date: &UpToDate,
) -> anyhow::Result<()> {
    let dir = out.join("slurm");
    std::fs::create_dir_all(dir.join("logs")).with_context(|| dir.display().to_string())?;
    let script = dir.join("task.sh");
    std::fs::write(&script, task_script(worker))?;
    // First round: everything at once, chained by afterok.
    let mut submitted: Vec<String> = vec![];
    let mut after: Option<String> = None;
    for phase in phases {
        if phase.targets.is_empty() {
            continue;
        }
        let all: Vec<usize> = (0..phase.targets.len()).collect();
        let id = submit(opts, &dir, &script, phase, &all, after.as_deref())?;
        println!(
            "slurm: submitted {} ({} task{}) as job {id}{}",
            phase.name,
            all.len(),
            if all.len() == 1 { "" } else { "s" },
            after
                .as_ref()
                .map_or(String::new(), |a| format!(", after job {a} succeeds"))
        );
        after = Some(id.clone());
        submitted.push(id);
    }
    wait(&submitted)?;
    // Then phase by phase: what is not up to date is resubmitted, at most `retries` times.
    for phase in phases {
        let mut attempt = 0;
        loop {
            let mut failed = vec![];
            for (i, t) in phase.targets.iter().enumerate() {
                if !up_to_date(t)? {
                    failed.push(i);
                }
            }
            if failed.is_empty() {
                println!(
                    "slurm: {}: all {} task{} finished",
                    phase.name,
                    phase.targets.len(),
                    if phase.targets.len() == 1 { "" } else { "s" }
                );
                break;
            }
            if attempt == opts.retries {
                let names: Vec<&str> = failed.iter().map(|&i| phase.targets[i].as_str()).collect();
                bail!(
                    "slurm: {} task(s) of {} did not finish after {} retr{}: {} (their logs: {})",
                    failed.len(),
                    phase.name,
                    opts.retries,
                    if opts.retries == 1 { "y" } else { "ies" },
                    names.join(", "),
                    dir.join("logs").display()
                );
            }
            attempt += 1;
            let id = submit(opts, &dir, &script, phase, &failed, None)?;
            println!(
                "slurm: {}: {} task(s) not finished; resubmitted as job {id} (retry {attempt} of {})",
                phase.name,
                failed.len(),
                opts.retries
            );
            wait(&[id])?;
        }
    }
    Ok(())
}

/// The task: line `SLURM_ARRAY_TASK_ID + 1` of the phase's target file is its `--until`.
fn task_script(worker: &[String]) -> String {
    let quoted: Vec<String> = worker.iter().map(|a| shell_quote(a)).collect();
    format!(
        "#!/bin/sh\n\
         # Written by `cargo xtask analyze --executor slurm`: one rule instance per array task.\n\
         set -eu\n\
         TARGET=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$1\")\n\
         exec {} --until \"$TARGET\"\n",
        quoted.join(" ")
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `sbatch --parsable` of `indices` of `phase`; the job id.
fn submit(
    opts: &Options,
    dir: &Path,
    script: &Path,
    phase: &Phase,
    indices: &[usize],
    after: Option<&str>,
) -> anyhow::Result<String> {
    let targets = dir.join(format!("{}.targets", phase.name.replace('/', "_")));
    std::fs::write(&targets, phase.targets.join("\n") + "\n")?;
    let list: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
    let mut array = list.join(",");
    if let Some(m) = opts.max_jobs {
        array.push_str(&format!("%{m}"));
    }
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--array={array}"))
        .arg(format!("--job-name=hgg-{}", phase.name.replace('/', "-")))
        .arg(format!("--cpus-per-task={}", opts.cpus))
        .arg(format!(
            "--output={}",
            dir.join("logs/%x-%A_%a.out").display()
        ))
        .arg(format!("--chdir={}", std::env::current_dir()?.display()));
    for (flag, v) in [
        ("partition", &opts.partition),
        ("account", &opts.account),
        ("time", &opts.time),
        ("mem", &opts.mem),
    ] {
        if let Some(v) = v {
            cmd.arg(format!("--{flag}={v}"));
        }
    }
    if let Some(a) = after {
        cmd.arg(format!("--dependency=afterok:{a}"));
    }
    cmd.args(&opts.sbatch_args).arg(script).arg(&targets);
    let out = cmd
        .output()
        .context("running sbatch (is Slurm installed and on PATH?)")?;
    if !out.status.success() {
        bail!(
            "sbatch refused the {} array: {}",
            phase.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `--parsable`: "jobid" or "jobid;cluster".
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch answered {text:?}, not a job id");
    }
    Ok(id)
}

/// Polls `squeue` (1 s, growing to 30 s) until none of `jobs` is queued or running. A job
/// whose dependency can never be met (an earlier phase failed) is cancelled: the retry
/// round resubmits what it would have run.
fn wait(jobs: &[String]) -> anyhow::Result<()> {
    let mut delay = Duration::from_secs(1);
    let start = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i %T %r", "-j"])
            .arg(jobs.join(","))
            .output()
            .context("running squeue")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        // squeue exits non-zero once every listed job has left the queue (invalid job id).
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return Ok(());
        }
        for l in &lines {
            if l.contains("DependencyNeverSatisfied") {
                if let Some(id) = l.split_whitespace().next() {
                    let _ = Command::new("scancel").arg(id).status();
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            let running = lines.iter().filter(|l| l.contains("RUNNING")).count();
            println!(
                "slurm: {} task(s) queued or running ({running} running), {:.0} s",
                lines.len(),
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(delay);
        delay = (delay * 3 / 2).min(Duration::from_secs(30));
    }
}

/// The worker's command line: this binary, `analyze`, and the coordinator's own arguments
/// without the executor's options.
pub fn worker_command(args: &[String], threads: usize) -> anyhow::Result<Vec<String>> {
    const WITH_VALUE: [&str; 9] = [
        "--executor",
        "--partition",
        "--account",
        "--time",
        "--mem",
        "--max-jobs",
        "--sbatch-arg",
        "--retries",
        "--threads",
    ];
    let mut out = vec![std::env::current_exe()?.display().to_string()];
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if WITH_VALUE.iter().any(|f| a == f) {
            it.next();
            continue;
        }
        if WITH_VALUE.iter().any(|f| a.starts_with(&format!("{f}="))) {
            continue;
        }
        out.push(a.clone());
    }
    out.extend(["--worker".into(), "--threads".into(), threads.to_string()]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_worker_gets_the_analysis_options_and_not_the_executors() {
        let args: Vec<String> = [
            "xtask",
            "analyze",
            "--executor",
            "slurm",
            "--partition=short",
            "--data",
            "a b.root",
            "--sbatch-arg",
            "--qos=x",
            "--threads",
            "8",
            "--bins",
            "44",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let w = super::worker_command(&args, 1).unwrap();
        assert_eq!(
            &w[1..],
            [
                "analyze",
                "--data",
                "a b.root",
                "--bins",
                "44",
                "--worker",
                "--threads",
                "1"
            ]
        );
        let script = super::task_script(&w);
        assert!(script.contains("'a b.root'"), "{script}");
        assert!(script.contains("--until \"$TARGET\""), "{script}");
    }
}
