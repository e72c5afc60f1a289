//! Datasets: the SYNTHETIC default dataset ([`synth`], generated on first use into
//! `data/generated/`) and the manifest of the real ATLAS Open Data files ([`manifest`]).

pub mod manifest;
pub mod synth;

use std::path::{Path, PathBuf};

/// The default dataset: one data file, one signal MC file and one continuum (background-only)
/// file, all SYNTHETIC.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct DefaultDataset {
    /// Path of the SYNTHETIC data file.
    pub data: PathBuf,
    /// Path of the SYNTHETIC signal MC file.
    pub mc: PathBuf,
    /// Path of the SYNTHETIC continuum file (background only, the spurious-signal test's
    /// template); `None` when the configuration asks for none.
    #[serde(default)]
    pub continuum: Option<PathBuf>,
    /// Always true: these files are simulated, not real ATLAS data.
    pub synthetic: bool,
    /// Seed the files were generated with.
    pub seed: u64,
    /// The generator's version ([`synth::GENERATOR_VERSION`]); 0 in manifests older than it.
    #[serde(default)]
    pub generator: u32,
    /// What the generator wrote (event counts, the MC's sum of weights).
    pub written: synth::Written,
}

/// `data/generated/` in this repository.
pub fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("generated")
}

/// File names say SYNTHETIC, so the label survives copying.
pub const DATA_FILE: &str = "SYNTHETIC_data_A.GamGam.root";
/// File name of the SYNTHETIC ggH (m_H = 125 GeV) signal MC file.
pub const MC_FILE: &str = "SYNTHETIC_mc_343981.ggH125_gamgam.GamGam.root";
/// File name of the SYNTHETIC continuum (background-only) file.
pub const CONTINUUM_FILE: &str = "SYNTHETIC_continuum.GamGam.root";
const MANIFEST: &str = "manifest.json";

/// Returns the default dataset in `dir`, generating it first if it is missing or was made with
/// another configuration. `on_generate` is called before a (slow, seconds) generation.
pub fn ensure_default(
    dir: &Path,
    cfg: &synth::Config,
    on_generate: impl FnOnce(),
) -> Result<DefaultDataset, synth::WriteError> {
    let manifest = dir.join(MANIFEST);
    let want = |written: synth::Written| DefaultDataset {
        data: dir.join(DATA_FILE),
        mc: dir.join(MC_FILE),
        continuum: (cfg.continuum_events > 0).then(|| dir.join(CONTINUUM_FILE)),
        synthetic: true,
        seed: cfg.seed,
        generator: synth::GENERATOR_VERSION,
        written,
    };
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        if let Ok(ds) = serde_json::from_str::<DefaultDataset>(&text) {
            let same = ds.seed == cfg.seed
                && ds.generator == synth::GENERATOR_VERSION
                && ds.written.data_signal_generated
                    == (cfg.signal_strength * synth::XSECTION_PB * synth::LUMI_PB).round() as usize
                && ds.written.data_events == cfg.data_events
                && ds.written.mc_events == cfg.mc_events
                && ds.written.continuum_events == cfg.continuum_events;
            let continuum = ds.continuum.as_ref().is_none_or(|c| c.exists());
            if same && ds.data.exists() && ds.mc.exists() && continuum {
                return Ok(ds);
            }
        }
    }
    on_generate();
    let err = |e: std::io::Error| synth::WriteError {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    // The manifest is the commit marker: it is removed first and written last, so a run that
    // is interrupted leaves no manifest and the next one regenerates. (Files are written under
    // their final names because ROOT records a file's own name inside it.)
    std::fs::remove_file(&manifest).ok();
    let ds = want(synth::write_dataset(
        cfg,
        &dir.join(DATA_FILE),
        &dir.join(MC_FILE),
        &dir.join(CONTINUUM_FILE),
    )?);
    let text = serde_json::to_string_pretty(&ds).expect("plain data serialises");
    std::fs::write(&manifest, text).map_err(err)?;
    Ok(ds)
}
