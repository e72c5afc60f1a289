//! One module per stage kind: all the agent knows of a stage beyond the contract. Each
//! implements `StageCase`: how a task's case is prepared (the stage's input document and
//! the reference output, computed with `analysis::stage::Reference`), what an output must
//! satisfy on its own (`sanity`: also the only checks of a user's own instruction) and how it
//! is compared with the reference (`compare`). `prepare` and [`validate`] dispatch on the
//! [`StageKind`] here, and nowhere else; the checks' framework (and what a hint may say) is
//! [`crate::validate`].

mod categorize;
mod convert;
mod fit;
mod histogram;
mod inspect;
mod select;
mod separate;

use crate::validate::{Checks, Tolerances, Validation};
use analysis::stage::{Binning, Cuts, FitModel};
use serde::Serialize;
use serde_json::Value;
use stage_api::StageKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A trial's drawn parameters (`crate::task::Variant`): `"doc.field"` → value.
type Variant = BTreeMap<String, Value>;

/// What one stage kind is to the agent.
pub(crate) trait StageCase {
    /// The stage's output document.
    type Output: serde::de::DeserializeOwned;
    /// The input document and the reference output of one case.
    fn prepare(ctx: &mut Ctx) -> Result<(String, Value), String>;
    /// What an output must satisfy whatever the input.
    fn sanity(c: &mut Checks, out: &Self::Output);
    /// The output against the reference's.
    fn compare(c: &mut Checks, out: &Self::Output, reference: &Self::Output, tol: &Tolerances);
    /// Checks of the files the run wrote beside its output (`dir`: its output directory).
    fn files(_c: &mut Checks, _dir: &Path, _reference: &Value) {}
}

/// What preparing one case has to hand.
pub(crate) struct Ctx<'a> {
    /// The stage's name (for messages).
    pub stage: &'static str,
    /// The task's input file (data).
    pub path: &'a Path,
    /// Its signal MC, for the stages that need one.
    pub mc: Option<&'a Path>,
    pub params: Params,
    /// Whether this is a held-out case (categorize reverses its score table).
    pub held_out: bool,
    /// Files the stage reads beside its input document (name, host path).
    pub files: Vec<(String, PathBuf)>,
    /// Where the reference wrote files that validation reads back (convert).
    pub scratch: Option<tempfile::TempDir>,
}

impl Ctx<'_> {
    /// Every event of `path`.
    pub fn read(&self, path: &Path) -> Result<analysis::stage::PhotonEvents, String> {
        let file = analysis::events::EventFile::open(path).map_err(|e| e.to_string())?;
        file.read(0..file.entries()).map_err(|e| e.to_string())
    }
    /// The reference selection of every event of `path` with the case's cuts.
    pub fn selected(&self, path: &Path) -> Result<analysis::stage::SelectOutput, String> {
        use analysis::stage::Select;
        analysis::stage::Reference
            .select(&self.read(path)?, &self.params.cuts)
            .map_err(|e| e.message)
    }
    /// The signal MC file.
    pub fn mc(&self) -> Result<&Path, String> {
        self.mc
            .ok_or(format!("the {} task needs [input] mc", self.stage))
    }
    /// A file the stage reads, as the input document names it (`../in/NAME`).
    pub fn give(&mut self, path: &Path) -> String {
        let name = path
            .file_name()
            .map_or("input.root".into(), |n| n.to_string_lossy().into_owned());
        self.files.push((name.clone(), path.to_path_buf()));
        format!("../in/{name}")
    }
}

/// The input document and the reference output of `kind` for one case.
pub(crate) fn prepare(kind: StageKind, ctx: &mut Ctx) -> Result<(String, Value), String> {
    match kind {
        StageKind::Inspect => inspect::InspectStage::prepare(ctx),
        StageKind::Convert => convert::ConvertStage::prepare(ctx),
        StageKind::Select => select::SelectStage::prepare(ctx),
        StageKind::Histogram => histogram::HistogramStage::prepare(ctx),
        StageKind::Fit => fit::FitStage::prepare(ctx),
        StageKind::Separate => separate::SeparateStage::prepare(ctx),
        StageKind::Categorize => categorize::CategorizeStage::prepare(ctx),
    }
}

/// Compares `output` (the stage's JSON) with `reference` (when there is one). `dir` is the
/// directory the stage ran in (its output directory), for stages that write files (convert).
pub fn validate(
    kind: StageKind,
    output: &str,
    dir: Option<&Path>,
    reference: Option<&Value>,
    tol: &Tolerances,
) -> Validation {
    let mut c = Checks::default();
    let args = (kind, output, dir, reference, tol);
    match kind {
        StageKind::Inspect => checks::<inspect::InspectStage>(&mut c, args),
        StageKind::Convert => checks::<convert::ConvertStage>(&mut c, args),
        StageKind::Select => checks::<select::SelectStage>(&mut c, args),
        StageKind::Histogram => checks::<histogram::HistogramStage>(&mut c, args),
        StageKind::Fit => checks::<fit::FitStage>(&mut c, args),
        StageKind::Separate => checks::<separate::SeparateStage>(&mut c, args),
        StageKind::Categorize => checks::<categorize::CategorizeStage>(&mut c, args),
    }
    c.finish(reference.is_some())
}

/// Parses the output, then runs the sanity checks and (with a reference) the comparison and
/// the files' checks.
fn checks<S: StageCase>(
    c: &mut Checks,
    (kind, output, dir, reference, tol): (
        StageKind,
        &str,
        Option<&Path>,
        Option<&Value>,
        &Tolerances,
    ),
) {
    let out: S::Output = match serde_json::from_str(output) {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("the output is not a valid {} document: {e}", kind.name());
            c.add("output parses", false, msg.clone(), msg);
            return;
        }
    };
    S::sanity(c, &out);
    let Some(r) = reference else { return };
    let r: S::Output = match serde_json::from_value(r.clone()) {
        Ok(r) => r,
        Err(e) => {
            // Task::prepare refuses such a reference before any model sees the task.
            let detail = format!("the reference is not a valid {} document: {e}", kind.name());
            c.add(
                "reference parses",
                false,
                detail,
                "the harness failed".into(),
            );
            return;
        }
    };
    S::compare(c, &out, &r, tol);
    if let (Some(dir), Some(reference)) = (dir, reference) {
        S::files(c, dir, reference);
    }
}

/// The stage documents' parameter parts, defaults overridden by a variant.
pub(crate) struct Params {
    pub cuts: Cuts,
    pub binning: Binning,
    pub model: FitModel,
}

impl Params {
    /// The defaults with `variant`'s values set; a key that names no parameter is an error.
    pub(crate) fn new(variant: &Variant) -> Result<Self, String> {
        Ok(Self {
            cuts: apply("cuts", Cuts::default(), variant)?,
            binning: apply("binning", Binning::default(), variant)?,
            model: apply("model", FitModel::default(), variant)?,
        })
        .and_then(|p| {
            match variant.keys().find(|k| {
                !["cuts.", "binning.", "model."]
                    .iter()
                    .any(|d| k.starts_with(d))
            }) {
                Some(k) => Err(format!(
                    "vary key '{k}' names no parameter (use cuts.FIELD, binning.FIELD or \
                     model.FIELD)"
                )),
                None => Ok(p),
            }
        })
    }
}

/// `default` with the variant's `doc.field` values set (through JSON, so any field of the
/// document's type can vary and a wrong name or type is an error naming the key).
fn apply<T: Serialize + serde::de::DeserializeOwned>(
    doc: &str,
    default: T,
    variant: &Variant,
) -> Result<T, String> {
    let mut value = serde_json::to_value(default).expect("plain data");
    for (key, v) in variant {
        let Some(field) = key.strip_prefix(doc).and_then(|k| k.strip_prefix('.')) else {
            continue;
        };
        match value.get_mut(field) {
            Some(slot) => *slot = v.clone(),
            None => return Err(format!("vary key '{key}': {doc} has no field '{field}'")),
        }
    }
    serde_json::from_value(value).map_err(|e| format!("vary ({doc}): {e}"))
}

/// A stage document as the stage reads it.
pub(super) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stage documents are plain data")
}
