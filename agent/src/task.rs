//! Tasks as data: `templates/tasks/NAME.toml` holds the instruction (in the style of the
//! paper's prompts: what to compute, inputs, outputs, cuts), the stage it asks for, the input
//! file and the validation tolerances. [`Task::prepare`]
//! turns it into the stage's input document and, with the reference stages, the expected
//! output — which stays on this side: it is never put in a prompt.
//!
//! Against memorisation (the reference, a known-good answer and this repository are public),
//! a task may declare parameters drawn per trial (`[vary]`, e.g. `"cuts.pt_min" = [25.0,
//! 30.0]`): [`Task::draw`] picks one value per key from a seed and the trial, and the
//! instruction ([`Task::instruction_for`]), the input document and the reference output all
//! follow the draw.

use crate::stage_crate::StageKind;
use analysis::stage::{
    Binning, Categorize, Cuts, FitModel, HistogramInput, MakeHistogram, Reference, Select,
    SelectInput,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One trial's drawn parameters: `"doc.field"` → value (`doc` is `cuts`, `binning` or
/// `model`, the stage documents' parameter parts). Empty: the defaults.
pub type Variant = BTreeMap<String, serde_json::Value>;

/// The built-in tasks, by name.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("select", include_str!("../../templates/tasks/select.toml")),
    (
        "histogram",
        include_str!("../../templates/tasks/histogram.toml"),
    ),
    ("fit", include_str!("../../templates/tasks/fit.toml")),
    (
        "categorize",
        include_str!("../../templates/tasks/categorize.toml"),
    ),
];

/// A task file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    pub stage: StageKind,
    /// What the user asks for; the supervisor turns it into the coder's task.
    pub instruction: String,
    pub input: InputSpec,
    pub tolerances: Tolerances,
    /// Parameters drawn per trial: `"doc.field"` → the values to draw from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vary: BTreeMap<String, Vec<serde_json::Value>>,
}

/// Where the stage's input comes from: a ROOT file of the repository (relative paths are from
/// the workspace root), read by the reference reader and, for later stages, run through the
/// reference stages before this one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub file: PathBuf,
    /// Signal MC, for the steps that need it (categorize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mc: Option<PathBuf>,
}

/// How close the stage's output must be to the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// Relative tolerance on floating-point outputs (m_γγ, weights, bin contents).
    #[serde(default = "default_rel")]
    pub rel: f64,
    /// Fit: largest |value − reference| in units of the reference's error.
    #[serde(default = "default_sigma")]
    pub value_sigma: f64,
    /// Fit: largest relative difference of the errors.
    #[serde(default = "default_error_rel")]
    pub error_rel: f64,
    /// Categorize: the stage's boundaries must reach this fraction of the reference's Z.
    #[serde(default = "default_z_fraction")]
    pub z_fraction: f64,
}

fn default_rel() -> f64 {
    1e-6
}
fn default_sigma() -> f64 {
    0.01
}
fn default_error_rel() -> f64 {
    0.02
}
fn default_z_fraction() -> f64 {
    0.98
}

/// A task made concrete: the input document and the reference output.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub input: String,
    /// `None` when no reference covers what was asked (a user's own instruction).
    pub reference: Option<serde_json::Value>,
}

impl Task {
    /// A built-in task by name, or a task file by path.
    pub fn load(name_or_path: &str) -> Result<Task, String> {
        let text = match BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, t)) => t.to_string(),
            None => std::fs::read_to_string(name_or_path).map_err(|e| {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                format!(
                    "task '{name_or_path}': not one of {} and not a readable file: {e}",
                    names.join(", ")
                )
            })?,
        };
        let task: Task =
            toml::from_str(&text).map_err(|e| format!("task '{name_or_path}': {e}"))?;
        // Every value a draw can give must apply, so a bad `[vary]` fails here, not in a cell.
        for (key, values) in &task.vary {
            if values.is_empty() {
                return Err(format!("task '{name_or_path}': vary.{key} has no values"));
            }
            for v in values {
                let one = Variant::from([(key.clone(), v.clone())]);
                Params::new(&one).map_err(|e| format!("task '{name_or_path}': {e}"))?;
            }
        }
        Ok(task)
    }

    /// BLAKE3 of the task as data (its TOML re-serialised): what the benchmark records so a
    /// changed task is not mixed with old cells.
    pub fn hash(&self) -> String {
        let doc = serde_json::to_string(self).expect("a task serialises");
        blake3::hash(doc.as_bytes()).to_hex()[..16].to_string()
    }

    /// The parameters of trial `trial`: for each `[vary]` key, one value chosen by a hash of
    /// `seed`, the task's name, the trial and the key (so adding a key or a trial leaves the
    /// other draws as they were).
    pub fn draw(&self, seed: u64, trial: u32) -> Variant {
        self.vary
            .iter()
            .map(|(key, values)| {
                let h = blake3::hash(format!("{seed}/{}/{trial}/{key}", self.name).as_bytes());
                let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
                (
                    key.clone(),
                    values[(n % values.len() as u64) as usize].clone(),
                )
            })
            .collect()
    }

    /// The instruction for `variant`: the task's, plus the drawn values when there are any.
    pub fn instruction_for(&self, variant: &Variant) -> String {
        let mut text = self.instruction.trim().to_string();
        if !variant.is_empty() {
            let values: Vec<String> = variant.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            text.push_str(&format!(
                "\n\nThis run's parameters (they are in the input document; read them from \
                 there): {}.",
                values.join(", ")
            ));
        }
        text
    }

    /// Reads the input file and runs the reference stages with `variant`'s parameters: the
    /// stage's input document and (when `with_reference`) the expected output.
    pub fn prepare(
        &self,
        repo: &Path,
        with_reference: bool,
        variant: &Variant,
    ) -> Result<Prepared, String> {
        let params = Params::new(variant)?;
        let path = if self.input.file.is_absolute() {
            self.input.file.clone()
        } else {
            repo.join(&self.input.file)
        };
        let file = analysis::events::EventFile::open(&path).map_err(|e| e.to_string())?;
        let events = file.read(0..file.entries()).map_err(|e| e.to_string())?;
        let Params {
            cuts,
            binning,
            model,
        } = params;
        let selected = Reference.select(&events, &cuts).map_err(|e| e.message)?;
        let (input, reference) = match self.stage {
            StageKind::Select => {
                let i = SelectInput { events, cuts };
                (
                    to_json(&i),
                    serde_json::to_value(&selected).expect("plain data"),
                )
            }
            StageKind::Histogram => {
                // The selection's masses are all inside the window and weigh 1: add the edge
                // cases the instruction defines (below lo, at lo, just below and at hi, above
                // hi) with non-unit and negative weights, so the stage must handle them.
                let mut diphotons = selected.diphotons;
                // A histogram needs only masses and weights.
                diphotons.kinematics = Default::default();
                let (lo, hi) = (binning.lo, binning.hi);
                for (m, w) in [
                    (lo - 0.5, 0.5),
                    (lo, 2.0),
                    (hi - 1e-9, -1.0),
                    (hi, 1.5),
                    (hi + 3.0, 0.25),
                    (0.5 * (lo + hi), 3.0),
                ] {
                    diphotons.m_yy.push(m);
                    diphotons.weight.push(w);
                }
                let h = Reference
                    .histogram(&diphotons, &binning)
                    .map_err(|e| e.message)?;
                let i = HistogramInput { diphotons, binning };
                (to_json(&i), serde_json::to_value(&h).expect("plain data"))
            }
            StageKind::Categorize => {
                let mc = self
                    .input
                    .mc
                    .as_ref()
                    .ok_or("the categorize task needs [input] mc")?;
                let mc = if mc.is_absolute() {
                    mc.clone()
                } else {
                    repo.join(mc)
                };
                let f = analysis::events::EventFile::open(&mc).map_err(|e| e.to_string())?;
                let mc_events = f.read(0..f.entries()).map_err(|e| e.to_string())?;
                let mc_selected = Reference.select(&mc_events, &cuts).map_err(|e| e.message)?;
                let input = analysis::categorize::categorize_input(
                    &selected.diphotons,
                    &mc_selected.diphotons,
                    &binning,
                )?;
                let out = Reference.categorize(&input).map_err(|e| e.message)?;
                // The reference document carries the input: validation computes Z from it.
                let mut reference = serde_json::to_value(&out).expect("plain data");
                reference["input"] = serde_json::to_value(&input).expect("plain data");
                (to_json(&input), reference)
            }
            StageKind::Fit => {
                use analysis::stage::Fit;
                let h = Reference
                    .histogram(&selected.diphotons, &binning)
                    .map_err(|e| e.message)?;
                let f = Reference.fit(&model, &h).map_err(|e| e.message)?;
                let i = analysis::stage::FitInput {
                    model,
                    histogram: h,
                };
                (to_json(&i), serde_json::to_value(&f).expect("plain data"))
            }
        };
        // The reference must pass its own validation (JSON has no NaN: a reference with a
        // non-finite value would not read back), or no answer could.
        let own = crate::validate::validate(
            self.stage,
            &reference.to_string(),
            Some(&reference),
            &self.tolerances,
        );
        if !own.passed {
            return Err(format!(
                "the reference output for these parameters does not validate against itself: {}",
                own.details()
            ));
        }
        Ok(Prepared {
            input,
            reference: with_reference.then_some(reference),
        })
    }
}

/// The stage documents' parameter parts, defaults overridden by a variant.
struct Params {
    cuts: Cuts,
    binning: Binning,
    model: FitModel,
}

impl Params {
    fn new(variant: &Variant) -> Result<Self, String> {
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

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("stage documents are plain data")
}
