//! The analysis as rules of the [`flow`] engine — how `cargo xtask analyze` runs. Per input
//! file (so adding a file runs only that file, and a cluster executor could map instances onto
//! jobs): `inspect/ROLE/FILE` (what the file is), `select/ROLE/FILE` (the selected diphotons
//! and cut flow), `histogram/ROLE/FILE`. Over them: `merge/ROLE` (histograms and cut flows
//! summed in file order), `fit`, `measure` (with signal MC), `results` (`results.json`) and
//! `plots`. A classifier would slot in the same way: a training rule over a bounded sample of
//! every `select/...` output, then per-file scoring rules beside `histogram/...`.
//!
//! Every rule declares only the parameters its output depends on: `select/data/...` the cuts
//! without the luminosity (data weights are 1), `select/mc/...` all cuts, `histogram` the
//! binning, `fit` the model, `measure` the luminosity. Its implementation identity is the hash
//! of the code it runs ([`workflow::identity`]), or the model-written stage's identity.
//!
//! A [`Chain`] is one set of these rules writing under one folder with one select
//! implementation: the reference's, or — `--stage select=PATH` — a compiled, sandboxed,
//! model-written stage, whose chain sits beside the reference's and a `compare` rule sets the
//! two results side by side.

use crate::events::Release;
use crate::histogram::Histogram;
use crate::select::CutFlow;
use crate::stage::{Reference, Select, SelectOutput, STAGE_API_VERSION};
use crate::workflow::{
    self, identity, AnalysisConfig, AnalysisResult, InputFile, Inputs, Provenance, RuleRef,
    WorkflowError, RESULTS_FORMAT_VERSION,
};
use flow::{Ctx, Rule};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A select implementation and its identity.
#[derive(Clone)]
pub struct SelectImpl {
    /// What runs: for the reference, the hash of its code; for a model-written stage, its
    /// source, toolchain and contract version.
    pub identity: String,
    pub stage: Arc<dyn Select + Send + Sync>,
}

impl SelectImpl {
    pub fn reference() -> Self {
        Self {
            identity: identity::SELECT.to_string(),
            stage: Arc::new(Reference),
        }
    }
}

/// One chain of rules.
pub struct Chain {
    /// Rule-name prefix (`""` for the reference, `"stage-select/"` for a model-written
    /// stage's).
    pub prefix: String,
    /// Folder of `results.json`, the plots and `work/`.
    pub dir: PathBuf,
    pub select: SelectImpl,
    /// Also convert every input to `.npy` columns (`convert/ROLE/FILE`, the paper's step 2).
    pub convert: bool,
}

/// What `inspect/...` writes: the file as the analysis sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub role: String,
    pub release: Release,
    pub tree: String,
    pub title: String,
    pub synthetic: bool,
    pub entries: u64,
    pub bytes: u64,
    pub blake3: String,
    /// Signal MC: (`channelNumber`, `XSection` in pb).
    pub process: Option<(u64, f64)>,
}

/// What `histogram/...` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHistogram {
    pub cut_flow: CutFlow,
    pub histogram: Histogram,
}

/// What `merge/ROLE` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    pub cut_flow: CutFlow,
    pub histogram: Histogram,
    /// Per file, in input order.
    pub cut_flows: Vec<CutFlow>,
}

/// Short, unique, stable rule names for input files: the file name without `.root`; a name
/// that two inputs share gets a hash of its full path.
fn file_names(paths: &[PathBuf]) -> Vec<String> {
    let base = |p: &PathBuf| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        n.strip_suffix(".root").unwrap_or(&n).replace('/', "_")
    };
    paths
        .iter()
        .map(|p| {
            let b = base(p);
            if paths.iter().filter(|q| base(q) == b).count() > 1 {
                let h = blake3::hash(p.to_string_lossy().as_bytes()).to_hex();
                format!("{b}-{}", &h[..8])
            } else {
                b
            }
        })
        .collect()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The score × m_γγ histograms of inputs `first..` summed by role: (signal MC, data).
fn sum_scores(
    ctx: &Ctx,
    first: usize,
    is_mc: &[bool],
    binning: crate::histogram::Binning,
) -> Result<(crate::categorize::ScoreMass, crate::categorize::ScoreMass), String> {
    use crate::categorize::ScoreMass;
    let (mut sig, mut data) = (ScoreMass::new(binning), ScoreMass::new(binning));
    for (i, mc) in is_mc.iter().enumerate() {
        let h: ScoreMass = ctx.read_json(first + i)?;
        if *mc {
            sig.add(&h)
        } else {
            data.add(&h)
        }
    }
    Ok((sig, data))
}

/// The rules of one chain. `progress` is told what each file's event loop does.
pub fn chain(
    inputs: &Inputs,
    cfg: &AnalysisConfig,
    c: &Chain,
    progress: Arc<dyn Fn(workflow::LoopEvent) + Send + Sync>,
) -> Result<Vec<Rule>, WorkflowError> {
    workflow::check_config(inputs, cfg)?;
    let work = c.dir.join("work");
    let p = &c.prefix;
    let mut rules = Vec::new();
    let mut merged: BTreeMap<&str, PathBuf> = BTreeMap::new();
    let mut inspected: Vec<PathBuf> = Vec::new();
    let mut implementations: BTreeMap<String, String> = BTreeMap::new();
    let mut selected_files: Vec<(&str, String, PathBuf)> = Vec::new();
    for (role, files) in [("data", &inputs.data), ("mc", &inputs.mc)] {
        if files.is_empty() {
            continue;
        }
        let mut histograms = Vec::new();
        for (file, name) in files.iter().zip(file_names(files)) {
            let info = work.join(format!("inspect/{role}/{name}.json"));
            let selected = work.join(format!("select/{role}/{name}.bin"));
            let hist = work.join(format!("histogram/{role}/{name}.json"));
            let role_s = role.to_string();
            rules.push(Rule {
                name: format!("{p}inspect/{role}/{name}"),
                after: vec![],
                inputs: vec![file.clone()],
                outputs: vec![info.clone()],
                params: json!({"role": role}),
                implementation: identity::INSPECT.into(),
                job: Box::new(move |ctx: &Ctx| {
                    let f = workflow::open_input(ctx.input(0)).map_err(err)?;
                    let process = if role_s == "mc" {
                        Some(workflow::mc_process(&f).map_err(err)?)
                    } else {
                        None
                    };
                    let bytes = std::fs::metadata(ctx.input(0)).map_err(err)?.len();
                    ctx.write_json(
                        0,
                        &FileInfo {
                            path: ctx.input(0).display().to_string(),
                            role: role_s.clone(),
                            release: f.release(),
                            tree: f.ntuple().tree_name().into(),
                            title: f.ntuple().title().into(),
                            synthetic: workflow::is_synthetic(&f),
                            entries: f.entries(),
                            bytes,
                            blake3: ctx.input_hash(0).into(),
                            process,
                        },
                    )
                }),
            });
            inspected.push(info.clone());

            if c.convert {
                // The columns go to a folder beside the manifest, moved into place by the job
                // before the engine renames the manifest (the record covers the manifest).
                let columns = work.join(format!("convert/{role}/{name}"));
                rules.push(Rule {
                    name: format!("{p}convert/{role}/{name}"),
                    // Beside the selections, after the inspections (as they are).
                    after: vec![info.clone()],
                    inputs: vec![file.clone()],
                    outputs: vec![work.join(format!("convert/{role}/{name}.manifest.json"))],
                    params: Value::Null,
                    implementation: identity::CONVERT.into(),
                    job: Box::new(move |ctx: &Ctx| {
                        let f = workflow::open_input(ctx.input(0)).map_err(err)?;
                        let tmp = columns.with_extension("flow-tmp-dir");
                        let _ = std::fs::remove_dir_all(&tmp);
                        let m = crate::convert::convert(f.ntuple(), None, &tmp).map_err(err)?;
                        let _ = std::fs::remove_dir_all(&columns);
                        std::fs::rename(&tmp, &columns).map_err(err)?;
                        ctx.write_json(0, &m)
                    }),
                });
            }

            // Data weights are 1: the luminosity cannot change a data file's selection.
            let mut cut_params = serde_json::to_value(&cfg.cuts).expect("plain data");
            let is_data = role == "data";
            if let (true, Some(o)) = (is_data, cut_params.as_object_mut()) {
                o.remove("lumi_pb");
            }
            let (cuts, batch, stage, bar) = (
                cfg.cuts.clone(),
                cfg.batch_entries,
                c.select.stage.clone(),
                progress.clone(),
            );
            rules.push(Rule {
                name: format!("{p}select/{role}/{name}"),
                // After the file's inspection: a file that cannot be inspected stops the run
                // before any event loop starts, and no file's loop shares its cores with
                // another's inspection. Order only: a new inspection never reruns a selection.
                after: vec![info.clone()],
                inputs: vec![file.clone()],
                outputs: vec![selected.clone()],
                params: json!({ "cuts": cut_params }),
                implementation: c.select.identity.clone(),
                job: Box::new(move |ctx: &Ctx| {
                    let f = workflow::open_input(ctx.input(0)).map_err(err)?;
                    let f = if is_data { f.as_data() } else { f };
                    // Written as the merged SelectOutput, without merging (see SelectedParts).
                    let out = workflow::select_file(&f, &cuts, batch, stage.as_ref(), &|e| bar(e))
                        .map_err(err)?;
                    ctx.write_with(0, |w| Ok(out.write_postcard(w)?))
                }),
            });

            selected_files.push((role, name.clone(), selected.clone()));
            let binning = cfg.binning;
            rules.push(Rule {
                name: format!("{p}histogram/{role}/{name}"),
                after: vec![],
                inputs: vec![selected],
                outputs: vec![hist.clone()],
                params: json!({ "binning": binning }),
                implementation: identity::HISTOGRAM.into(),
                job: Box::new(move |ctx: &Ctx| {
                    let s: SelectOutput = ctx.read_binary(0)?;
                    let histogram =
                        crate::stage::MakeHistogram::histogram(&Reference, &s.diphotons, &binning)
                            .map_err(|e| e.message)?;
                    ctx.write_json(
                        0,
                        &FileHistogram {
                            cut_flow: s.cut_flow,
                            histogram,
                        },
                    )
                }),
            });
            histograms.push(hist);
        }
        let out = work.join(format!("merge/{role}.json"));
        let binning = cfg.binning;
        rules.push(Rule {
            name: format!("{p}merge/{role}"),
            after: vec![],
            inputs: histograms,
            outputs: vec![out.clone()],
            params: json!({ "binning": binning }),
            implementation: identity::MERGE.into(),
            job: Box::new(move |ctx: &Ctx| {
                let parts: Vec<FileHistogram> = (0..ctx.inputs().len())
                    .map(|i| ctx.read_json(i))
                    .collect::<Result<_, _>>()?;
                let mut cut_flow = CutFlow::default();
                for p in &parts {
                    cut_flow.add(&p.cut_flow);
                }
                let hs: Vec<Histogram> = parts.iter().map(|p| p.histogram.clone()).collect();
                ctx.write_json(
                    0,
                    &Merged {
                        cut_flow,
                        histogram: workflow::merge_histograms(&hs, &binning),
                        cut_flows: parts.into_iter().map(|p| p.cut_flow).collect(),
                    },
                )
            }),
        });
        merged.insert(role, out);
    }

    // The fit (DSCB tails from the signal MC when there is one).
    let fit_out = work.join("fit.json");
    let mut fit_inputs = vec![merged["data"].clone()];
    fit_inputs.extend(merged.get("mc").cloned());
    let model = cfg.model;
    let blind = cfg.blind;
    rules.push(Rule {
        name: format!("{p}fit"),
        after: vec![],
        inputs: fit_inputs,
        outputs: vec![fit_out.clone()],
        params: json!({ "model": model, "blind": blind }),
        implementation: identity::FIT.into(),
        job: Box::new(move |ctx: &Ctx| {
            let data: Merged = ctx.read_json(0)?;
            let mc: Option<Merged> = (ctx.inputs().len() > 1)
                .then(|| ctx.read_json(1))
                .transpose()?;
            let fit = workflow::fit_data(
                &model,
                &data.histogram,
                mc.as_ref().map(|m| &m.histogram),
                blind,
                &Reference,
            )
            .map_err(err)?;
            ctx.write_json(0, &fit)
        }),
    });

    // The measurement, with signal MC (not when blinded: no signal yield is fitted).
    let measure_out = work.join("measure.json");
    if let (Some(mc), None) = (merged.get("mc"), cfg.blind) {
        let mc_infos: Vec<PathBuf> = inspected
            .iter()
            .filter(|p| p.to_string_lossy().contains("/inspect/mc/"))
            .cloned()
            .collect();
        let mut inputs_m = vec![fit_out.clone(), mc.clone()];
        inputs_m.extend(mc_infos);
        let lumi = cfg.cuts.lumi_pb;
        rules.push(Rule {
            name: format!("{p}measure"),
            after: vec![],
            inputs: inputs_m,
            outputs: vec![measure_out.clone()],
            params: json!({ "lumi_pb": lumi }),
            implementation: identity::MEASURE.into(),
            job: Box::new(move |ctx: &Ctx| {
                let fit = ctx.read_json(0)?;
                let mc: Merged = ctx.read_json(1)?;
                let mut processes = Vec::new();
                for i in 2..ctx.inputs().len() {
                    let info: FileInfo = ctx.read_json(i)?;
                    let (channel, xs) = info.process.ok_or("no XSection")?;
                    processes.push((info.path, channel, xs));
                }
                let xs = workflow::total_xsection(&processes).map_err(err)?;
                let m =
                    workflow::measure(&fit, &mc.histogram, xs, lumi, &Reference).map_err(err)?;
                ctx.write_json(0, &m)
            }),
        });
    }

    // Steps 4–5: the classifier (a bounded sample of every file), the scores (per file, into
    // score × m_γγ histograms), the categories.
    let steps45 = match (cfg.categorization, merged.contains_key("mc")) {
        (Some(c), true) => Some(c),
        _ => None,
    };
    let model_out = work.join("classify/model.json");
    let categories_out = work.join("categories.json");
    let combined_out = work.join("fit_categories.json");
    if let Some(cat) = steps45 {
        let roles: Vec<bool> = selected_files.iter().map(|(r, _, _)| *r == "mc").collect();
        let classifier = cat.classifier;
        rules.push(Rule {
            name: format!("{p}classify/train"),
            after: vec![],
            inputs: selected_files.iter().map(|(_, _, f)| f.clone()).collect(),
            outputs: vec![model_out.clone()],
            params: json!({ "classifier": classifier, "signal": roles }),
            implementation: identity::CLASSIFY.into(),
            job: Box::new(move |ctx: &Ctx| {
                let mut sample = crate::classify::Sample::default();
                let n_signal = roles.iter().filter(|&&s| s).count();
                let n_background = roles.len() - n_signal;
                // One file's selected events in memory at a time.
                for (i, &signal) in roles.iter().enumerate() {
                    let s: SelectOutput = ctx.read_binary(i)?;
                    let files = if signal { n_signal } else { n_background };
                    sample.add(&s.diphotons, signal, files, &classifier);
                }
                let c = crate::classify::train(&sample, &classifier)?;
                ctx.write_json(0, &c)
            }),
        });
        let mut scored: Vec<(bool, PathBuf)> = Vec::new();
        for (role, name, selected) in &selected_files {
            let out = work.join(format!("score/{role}/{name}.json"));
            let binning = cfg.binning;
            rules.push(Rule {
                name: format!("{p}score/{role}/{name}"),
                after: vec![],
                inputs: vec![selected.clone(), model_out.clone()],
                outputs: vec![out.clone()],
                params: json!({ "binning": binning }),
                implementation: identity::CLASSIFY.into(),
                job: Box::new(move |ctx: &Ctx| {
                    let s: SelectOutput = ctx.read_binary(0)?;
                    let c: crate::classify::Classifier = ctx.read_json(1)?;
                    let scores = crate::classify::Scorer::new(&c)?.score(&s.diphotons);
                    let mut h = crate::categorize::ScoreMass::new(binning);
                    for (i, score) in scores.iter().enumerate() {
                        h.fill(*score, s.diphotons.m_yy[i], s.diphotons.weight[i]);
                    }
                    ctx.write_json(0, &h)
                }),
            });
            scored.push((*role == "mc", out));
        }
        let is_mc: Vec<bool> = scored.iter().map(|(m, _)| *m).collect();
        let score_files: Vec<PathBuf> = scored.into_iter().map(|(_, p)| p).collect();
        let categorize = cat.categorize;
        let binning = cfg.binning;
        let flags = is_mc.clone();
        rules.push(Rule {
            name: format!("{p}categorize"),
            after: vec![],
            inputs: score_files.clone(),
            outputs: vec![categories_out.clone()],
            params: json!({ "categorize": categorize, "signal": is_mc }),
            implementation: identity::CATEGORIZE.into(),
            job: Box::new(move |ctx: &Ctx| {
                let (sig, data) = sum_scores(ctx, 0, &flags, binning)?;
                ctx.write_json(0, &crate::categorize::categorize(&sig, &data, &categorize))
            }),
        });

        // The simultaneous fit of the categories (shared μ and mass, a background per
        // category).
        let mut inputs_f = vec![categories_out.clone()];
        inputs_f.extend(score_files);
        rules.push(Rule {
            name: format!("{p}categories/fit"),
            after: vec![],
            inputs: inputs_f,
            outputs: vec![combined_out.clone()],
            params: json!({ "blind": blind, "signal": is_mc }),
            implementation: identity::FIT_CATEGORIES.into(),
            job: Box::new(move |ctx: &Ctx| {
                use crate::fit::simultaneous::{Channel, Model};
                let cats: crate::categorize::Categories = ctx.read_json(0)?;
                let (sig, data) = sum_scores(ctx, 1, &is_mc, binning)?;
                let channels: Vec<Channel> = cats
                    .bin_ranges(sig.score_bins)
                    .iter()
                    .enumerate()
                    .map(|(k, &(lo, hi))| Channel {
                        name: k.to_string(),
                        data: data.mass(lo, hi),
                        signal_yield: sig.mass(lo, hi).integral(),
                    })
                    .collect();
                let (_, sigma) =
                    crate::categorize::peak(&sig.mass(0, sig.score_bins), (115.0, 135.0));
                let one = vec![Channel {
                    name: "inclusive".into(),
                    data: data.mass(0, data.score_bins),
                    signal_yield: sig.mass(0, sig.score_bins).integral(),
                }];
                let window = cats.config.signal_window;
                let model = Model::new(channels, sigma, window, blind);
                let fits = crate::fit::simultaneous::Fits {
                    inclusive: Model::new(one, sigma, window, blind).fit()?,
                    combined: model.fit()?,
                    model,
                };
                ctx.write_json(0, &fits)
            }),
        });
    }

    // results.json: only what inputs, parameters and code determine.
    for r in &rules {
        implementations.insert(r.name.clone(), r.implementation.clone());
    }
    let results = c.dir.join("results.json");
    let mut inputs_r = inspected.clone();
    let n_inspected = inputs_r.len();
    inputs_r.push(merged["data"].clone());
    inputs_r.extend(merged.get("mc").cloned());
    inputs_r.push(fit_out);
    let has_mc = merged.contains_key("mc");
    let measured = has_mc && cfg.blind.is_none();
    let blind = cfg.blind;
    if measured {
        inputs_r.push(measure_out);
    }
    let has_categories = steps45.is_some();
    if has_categories {
        inputs_r.push(model_out.clone());
        inputs_r.push(categories_out.clone());
        inputs_r.push(combined_out.clone());
    }
    let rule_refs: BTreeMap<String, RuleRef> = implementations
        .iter()
        .map(|(name, implementation)| {
            (
                name.clone(),
                RuleRef {
                    implementation: implementation.clone(),
                    record: Some(format!("provenance/{}.json", name.replace('/', "."))),
                },
            )
        })
        .collect();
    let config = cfg.clone();
    rules.push(Rule {
        name: format!("{p}results"),
        after: vec![],
        inputs: inputs_r,
        outputs: vec![results.clone()],
        params: json!({ "config": config, "rules": rule_refs }),
        implementation: identity::RESULTS.into(),
        job: Box::new(move |ctx: &Ctx| {
            let infos: Vec<FileInfo> = (0..n_inspected)
                .map(|i| ctx.read_json(i))
                .collect::<Result<_, _>>()?;
            let mut next = n_inspected;
            let mut take = || {
                next += 1;
                next - 1
            };
            let data: Merged = ctx.read_json(take())?;
            let mc: Option<Merged> = if has_mc {
                Some(ctx.read_json(take())?)
            } else {
                None
            };
            let fit = ctx.read_json(take())?;
            let measurement = if measured {
                Some(ctx.read_json(take())?)
            } else {
                None
            };
            let (classifier, categories, combined) = if has_categories {
                let c: crate::classify::Classifier = ctx.read_json(take())?;
                let summary = crate::workflow::ClassifierSummary {
                    hash: c.hash,
                    auc: c.auc,
                    importance: c.importance,
                    n_signal: c.n_signal,
                    n_background: c.n_background,
                };
                let cats = ctx.read_json(take())?;
                let fits: crate::fit::simultaneous::Fits = ctx.read_json(take())?;
                (Some(summary), Some(cats), Some(fits))
            } else {
                (None, None, None)
            };
            let flows = data
                .cut_flows
                .iter()
                .chain(mc.iter().flat_map(|m| m.cut_flows.iter()));
            let files: Vec<InputFile> = infos
                .iter()
                .zip(flows)
                .map(|(i, flow)| InputFile {
                    path: i.path.clone(),
                    role: i.role.clone(),
                    release: i.release,
                    title: i.title.clone(),
                    synthetic: i.synthetic,
                    entries: i.entries,
                    bytes: i.bytes,
                    blake3: i.blake3.clone(),
                    cut_flow: flow.clone(),
                })
                .collect();
            let result = AnalysisResult {
                format_version: RESULTS_FORMAT_VERSION,
                synthetic_inputs: files.iter().any(|f| f.synthetic),
                cut_flow: data.cut_flow,
                histogram: match blind {
                    Some(window) => crate::histogram::blinded(data.histogram, window),
                    None => data.histogram,
                },
                fit,
                mc_cut_flow: mc.as_ref().map(|m| m.cut_flow.clone()),
                mc_histogram: mc.map(|m| m.histogram),
                measurement,
                classifier,
                categories,
                combined: combined.as_ref().map(|f| f.combined.clone()),
                combined_inclusive: combined.map(|f| f.inclusive),
                provenance: Provenance {
                    inputs: files,
                    config: config.clone(),
                    stage_api_version: STAGE_API_VERSION,
                    rules: rule_refs.clone(),
                },
            };
            ctx.write_json_pretty(0, &result)
        }),
    });

    #[cfg(feature = "plot")]
    if steps45.is_some() {
        // The categories' fits in one picture, a panel per category (how many categories
        // there are is known only after categorize, and a rule's outputs are fixed).
        let outputs: Vec<PathBuf> = ["score", "roc", "z_categories", "m_yy_categories"]
            .iter()
            .flat_map(|s| ["png", "svg"].map(|e| c.dir.join(format!("{s}.{e}"))))
            .collect();
        let scratch = c.dir.join(".plots-classifier");
        rules.push(Rule {
            name: format!("{p}plots/classifier"),
            after: vec![],
            inputs: vec![
                model_out.clone(),
                categories_out.clone(),
                combined_out.clone(),
            ],
            outputs,
            params: Value::Null,
            implementation: identity::PLOTS.into(),
            job: Box::new(move |ctx: &Ctx| {
                let model: crate::classify::Classifier = ctx.read_json(0)?;
                let cats: crate::categorize::Categories = ctx.read_json(1)?;
                let fits: crate::fit::simultaneous::Fits = ctx.read_json(2)?;
                std::fs::create_dir_all(&scratch).map_err(err)?;
                crate::plot::score_plot(
                    &cats,
                    "signal MC vs data sidebands",
                    &scratch.join("score"),
                )?;
                crate::plot::roc_plot(&model.roc, model.auc, &scratch.join("roc"))?;
                crate::plot::z_plot(&cats, &scratch.join("z_categories"))?;
                crate::plot::categories_fit_plot(&fits, &cats, &scratch.join("m_yy_categories"))?;
                let names = ["score", "roc", "z_categories", "m_yy_categories"]
                    .iter()
                    .flat_map(|s| ["png", "svg"].map(|e| format!("{s}.{e}")));
                for (i, name) in names.enumerate() {
                    std::fs::rename(scratch.join(name), ctx.output(i)).map_err(err)?;
                }
                let _ = std::fs::remove_dir(&scratch);
                Ok(())
            }),
        });
    }
    #[cfg(feature = "plot")]
    {
        let stems = ["m_yy", "cut_flow"];
        let outputs: Vec<PathBuf> = stems
            .iter()
            .flat_map(|s| ["png", "svg"].map(|e| c.dir.join(format!("{s}.{e}"))))
            .collect();
        let scratch = c.dir.join(".plots");
        rules.push(Rule {
            name: format!("{p}plots"),
            after: vec![],
            inputs: vec![results],
            outputs,
            params: Value::Null,
            implementation: identity::PLOTS.into(),
            job: Box::new(move |ctx: &Ctx| {
                let r: AnalysisResult = ctx.read_json(0)?;
                let label = if r.synthetic_inputs {
                    "SYNTHETIC data"
                } else {
                    "data"
                };
                // The plot functions name their files from a stem: draw into a scratch
                // folder, then move each file to the temporary name the engine renames.
                std::fs::create_dir_all(&scratch).map_err(err)?;
                let blind = r.provenance.config.blind;
                crate::plot::mass_plot(&r.histogram, &r.fit, blind, label, &scratch.join("m_yy"))?;
                crate::plot::cut_flow_plot(&r.cut_flow, label, &scratch.join("cut_flow"))?;
                for (i, name) in ["m_yy.png", "m_yy.svg", "cut_flow.png", "cut_flow.svg"]
                    .iter()
                    .enumerate()
                {
                    std::fs::rename(scratch.join(name), ctx.output(i)).map_err(err)?;
                }
                let _ = std::fs::remove_dir(&scratch);
                Ok(())
            }),
        });
    }
    Ok(rules)
}

/// One line of the comparison: the reference's value, the stage's, the difference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub quantity: String,
    pub reference: Value,
    pub stage: Value,
    /// stage − reference, for numbers.
    pub difference: Option<f64>,
}

/// What `compare` writes: the model-written stage's whole analysis next to the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub stage: String,
    pub identical: bool,
    pub differences: Vec<Difference>,
}

/// Compares two results: cut flow, histogram, fit parameters, Z, μ.
pub fn compare(reference: &AnalysisResult, stage: &AnalysisResult, what: &str) -> Comparison {
    let mut rows = Vec::new();
    let mut num = |q: String, a: f64, b: f64| {
        rows.push(Difference {
            quantity: q,
            reference: json!(a),
            stage: json!(b),
            difference: Some(b - a),
        })
    };
    for (a, b) in reference.cut_flow.0.iter().zip(&stage.cut_flow.0) {
        num(format!("cut flow: {}", a.cut), a.pass as f64, b.pass as f64);
    }
    num(
        "histogram: Σw".into(),
        reference.histogram.integral(),
        stage.histogram.integral(),
    );
    let worst = reference
        .histogram
        .sumw
        .iter()
        .zip(&stage.histogram.sumw)
        .map(|(a, b)| (b - a).abs())
        .fold(0.0, f64::max);
    num("histogram: largest |Δ| in a bin".into(), 0.0, worst);
    for (a, b) in reference.fit.params.iter().zip(&stage.fit.params) {
        num(format!("fit: {}", a.name), a.value, b.value);
    }
    num("fit: Z".into(), reference.fit.z, stage.fit.z);
    if let (Some(a), Some(b)) = (&reference.measurement, &stage.measurement) {
        num("μ".into(), a.mu, b.mu);
        num("σ×B (pb)".into(), a.xsec_br_pb, b.xsec_br_pb);
    }
    let identical = reference.cut_flow == stage.cut_flow
        && reference.histogram == stage.histogram
        && reference.fit == stage.fit
        && reference.measurement == stage.measurement;
    Comparison {
        stage: what.to_string(),
        identical,
        differences: rows,
    }
}

/// `comparison.md`.
pub fn comparison_markdown(c: &Comparison) -> String {
    let mut s = format!(
        "# {} against the reference\n\n{}\n\n| quantity | reference | stage | stage − reference |\n|---|---:|---:|---:|\n",
        c.stage,
        if c.identical {
            "Identical results: cut flow, histogram, fit and measurement."
        } else {
            "The results DIFFER from the reference's."
        }
    );
    for d in &c.differences {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            d.quantity,
            d.reference,
            d.stage,
            d.difference.map_or(String::new(), |x| format!("{x:+.6}"))
        ));
    }
    s
}

/// The `compare` rule: `reference/results.json` and the stage chain's, into
/// `comparison.json` and `comparison.md` in `out`.
pub fn compare_rule(reference: &Chain, stage: &Chain, out: &Path, what: &str) -> Rule {
    let what = what.to_string();
    Rule {
        name: "compare".into(),
        after: vec![],
        inputs: vec![
            reference.dir.join("results.json"),
            stage.dir.join("results.json"),
        ],
        outputs: vec![out.join("comparison.json"), out.join("comparison.md")],
        params: json!({ "stage": what }),
        implementation: identity::RESULTS.into(),
        job: Box::new(move |ctx: &Ctx| {
            let a: AnalysisResult = ctx.read_json(0)?;
            let b: AnalysisResult = ctx.read_json(1)?;
            let c = compare(&a, &b, &what);
            ctx.write_json_pretty(0, &c)?;
            std::fs::write(ctx.output(1), comparison_markdown(&c)).map_err(err)
        }),
    }
}
