//! The stage contract, as this crate uses it: everything of the `stage-api` crate (the
//! traits, their data types, [`STAGE_API_VERSION`], [`run_json`]) plus [`Reference`], the
//! implementation of all of them that agent-written stages are validated against. The contract
//! lives in its own crate so that agent-written stages can be compiled against it without
//! this crate (the reference) being linkable, includable or nameable.

pub use stage_api::*;
use std::path::Path;

/// The reference implementation of every stage, which agent-written stages are validated
/// against, and which itself agrees with ROOT on the fixtures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl Inspect for Reference {
    fn inspect(&self, file: &Path) -> Result<FileSummary, StageError> {
        crate::rootio::inspect(file).map_err(|e| e.to_string().into())
    }
}

impl Convert for Reference {
    fn convert(&self, input: &ConvertInput) -> Result<NpyManifest, StageError> {
        let nt = crate::rootio::Ntuple::open(&input.file, &crate::events::Release::TREES)
            .map_err(|e| StageError::from(e.to_string()))?;
        crate::convert::convert(&nt, input.branches.as_deref(), &input.out_dir)
            .map_err(|e| e.to_string().into())
    }
}

impl Select for Reference {
    fn select(&self, events: &PhotonEvents, cuts: &Cuts) -> Result<SelectOutput, StageError> {
        events.validate()?;
        let (diphotons, cut_flow) = crate::select::select(events, cuts);
        Ok(SelectOutput {
            diphotons,
            cut_flow,
        })
    }
}

impl MakeHistogram for Reference {
    fn histogram(&self, d: &Diphotons, binning: &Binning) -> Result<Histogram, StageError> {
        binning.validate()?;
        if d.m_yy.len() != d.weight.len() {
            return Err(format!("{} masses but {} weights", d.m_yy.len(), d.weight.len()).into());
        }
        let mut h = Histogram::new(*binning);
        for (&m, &w) in d.m_yy.iter().zip(&d.weight) {
            crate::histogram::fill(&mut h, m, w);
        }
        Ok(h)
    }
}

impl Fit for Reference {
    fn fit(&self, model: &FitModel, histogram: &Histogram) -> Result<FitResult, StageError> {
        crate::fit::fit(model, histogram).map_err(|e| e.to_string().into())
    }
}

impl Measure for Reference {
    fn measure(&self, input: &MeasureInput) -> Result<Measurement, StageError> {
        crate::measure::measure(input).map_err(|e| e.to_string().into())
    }
}

impl Separate for Reference {
    fn separate(&self, input: &SeparateInput) -> Result<Scores, StageError> {
        let t = &input.train;
        let y: Vec<f64> = t.signal.iter().map(|&s| f64::from(u8::from(s))).collect();
        let cfg = crate::classify::ClassifierConfig {
            seed: input.seed,
            ..Default::default()
        };
        let score = crate::classify::fit_predict(&t.x, &y, &t.weight, &input.test, &cfg)
            .map_err(|e| StageError::from(e.to_string()))?;
        Ok(Scores { score })
    }
}

impl Categorize for Reference {
    fn categorize(&self, input: &CategorizeInput) -> Result<Boundaries, StageError> {
        let n = input.signal.len();
        if n < 2 || input.background.len() != n {
            return Err(format!(
                "need at least 2 score bins and as many background as signal values (got {n} \
                 and {})",
                input.background.len()
            )
            .into());
        }
        if input
            .signal
            .iter()
            .chain(&input.background)
            .any(|x| !x.is_finite())
        {
            return Err("signal and background must be finite".into());
        }
        let (inner, _) = crate::categorize::optimal(
            &input.signal,
            &input.background,
            input.min_background,
            0.01,
            None,
            input.max_categories.max(1),
        );
        Ok(Boundaries {
            boundaries: inner.iter().map(|&e| e as f64 / n as f64).collect(),
        })
    }
}
