//! `cargo xtask fetch-data`: download the real 2020 ATLAS Open Data GamGam files.
//!
//! Each file is streamed into `NAME.part` with a progress bar; an interrupted download resumes
//! from the bytes already there (HTTP `Range`). A finished file must open as a ROOT file with the
//! expected tree before it is renamed to `NAME`; files already present and valid are skipped.

use analysis::rootio::Ntuple;
use anyhow::{bail, Context};
use dataset::manifest::{files_2020, RemoteFile, BASE_URL_2020};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Open Data release (only 2020 is available for now).
    #[arg(long, default_value = "2020")]
    release: String,
    /// Also fetch the ggH and VBF H→γγ signal MC.
    #[arg(long)]
    mc: bool,
    /// Output folder.
    #[arg(long, default_value = "data/real")]
    out: PathBuf,
    /// Base URL of the release's files (a mirror, or a local server in tests).
    #[arg(long, default_value = BASE_URL_2020)]
    base_url: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.release != "2020" {
        bail!("release '{}' is not known; available: 2020", args.release);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .build();
    let files = files_2020(args.mc);
    let mut failed = Vec::new();
    for f in &files {
        let url = format!("{}/{}", args.base_url.trim_end_matches('/'), f.path);
        let dest = args.out.join(f.file_name());
        match fetch_one(&agent, &url, &dest, f) {
            Ok(msg) => println!("{}: {msg}", dest.display()),
            Err(e) => {
                eprintln!("error: {}: {e:#}", dest.display());
                failed.push(f.file_name());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} files failed: {}",
            failed.len(),
            files.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Checks that `path` opens as a ROOT file holding `f.tree`; returns its entry count.
fn check(path: &Path, f: &RemoteFile) -> anyhow::Result<u64> {
    Ok(Ntuple::open(path, &[f.tree])?.entries())
}

fn fetch_one(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    f: &RemoteFile,
) -> anyhow::Result<String> {
    if dest.exists() {
        if let Ok(n) = check(dest, f) {
            return Ok(format!("already present ({n} entries in '{}')", f.tree));
        }
        bail!(
            "exists but does not open as a ROOT file with tree '{}'; move it away to re-download",
            f.tree
        );
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.set("Range", &format!("bytes={have}-"));
    }
    let (resp, resumed) = match req.call() {
        Ok(r) if r.status() == 206 => {
            // The server must resume exactly where the part file ends.
            let start = r
                .header("Content-Range")
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(have) {
                bail!(
                    "{url}: asked to resume at byte {have}, server sent {:?}",
                    r.header("Content-Range")
                );
            }
            (Some(r), true)
        }
        Ok(r) => (Some(r), false),
        // The part file already holds everything: the server has nothing past its end.
        Err(ureq::Error::Status(416, _)) if have > 0 => (None, true),
        Err(ureq::Error::Status(code, r)) => bail!("{url}: HTTP {code} {}", r.status_text()),
        Err(e) => bail!("{url}: {e}"),
    };
    if let Some(resp) = resp {
        let len: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
        let start = if resumed { have } else { 0 };
        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(&part)
            .with_context(|| format!("opening {}", part.display()))?;
        let bar = ProgressBar::new(len.map_or(0, |l| l + start));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(f.file_name().to_string());
        bar.set_position(start);
        let mut reader = resp.into_reader();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("downloading {url} (rerun to resume)"))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .with_context(|| format!("writing {}", part.display()))?;
            got += n as u64;
            bar.inc(n as u64);
        }
        out.sync_all()?;
        bar.finish_and_clear();
        if let Some(l) = len {
            if got != l {
                bail!("{url}: connection closed after {got} of {l} bytes (rerun to resume)");
            }
        }
    }
    match check(&part, f) {
        Ok(n) => {
            std::fs::rename(&part, dest)?;
            Ok(format!(
                "downloaded{} ({n} entries in '{}')",
                if resumed { ", resumed" } else { "" },
                f.tree
            ))
        }
        Err(e) => {
            std::fs::remove_file(&part).ok();
            bail!("downloaded file failed its check and was removed: {e}")
        }
    }
}
