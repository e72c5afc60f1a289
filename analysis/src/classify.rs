//! Step 4, signal–background separation: per-event features that do not sculpt m_γγ, a
//! gradient-boosted decision tree (forust-ml) trained on weighted signal MC against the data
//! sidebands, and a score per event from a model that never saw it.
//!
//! Two folds: an event's fold is a hash of its own first photon ([`fold`]), so no other event —
//! the blinded window's included — can move it; the model of fold k is trained on the other
//! fold's training sample and scores fold k. So every score, and the held-out AUC, comes from
//! a model that did not see the event. Training runs on
//! one thread with a fixed seed: same inputs → the same trees, bytes and scores at any thread
//! count of the rest of the analysis.

use crate::select::Diphotons;
use forust_ml::gradientbooster::ImportanceMethod;
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

/// The features, in order. None of them is m_γγ; the momenta enter as ratios to it so that
/// a cut on the score does not sculpt the mass spectrum.
pub const FEATURES: [&str; 12] = [
    "pt1_over_m",
    "pt2_over_m",
    "eta1",
    "eta2",
    "delta_phi",
    "pt_yy_over_m",
    "ptt_over_m",
    "abs_cos_theta_cs",
    "track_iso1",
    "track_iso2",
    "calo_iso1",
    "calo_iso2",
];

/// The features of selected event `i`.
pub fn features(d: &Diphotons, i: usize) -> [f64; 12] {
    let k = &d.kinematics;
    let m = d.m_yy[i];
    let (pt1, pt2, phi1, phi2) = (k.pt1[i], k.pt2[i], k.phi1[i], k.phi2[i]);
    let mut dphi = (phi1 - phi2).abs() % std::f64::consts::TAU;
    if dphi > std::f64::consts::PI {
        dphi = std::f64::consts::TAU - dphi;
    }
    // pTt: the diphoton pT perpendicular to the thrust axis t = (pT1 − pT2)/|pT1 − pT2|.
    let (x1, y1, x2, y2) = (
        pt1 * phi1.cos(),
        pt1 * phi1.sin(),
        pt2 * phi2.cos(),
        pt2 * phi2.sin(),
    );
    let (tx, ty) = (x1 - x2, y1 - y2);
    let tn = (tx * tx + ty * ty).sqrt().max(1e-12);
    let ptt = ((x1 + x2) * ty - (y1 + y2) * tx).abs() / tn;
    // |cos θ*| in the Collins–Soper frame: 2 |p1⁺p2⁻ − p1⁻p2⁺| / (m √(m² + pT_γγ²)),
    // p± = (E ± pz)/√2.
    let pz = |pt: f64, eta: f64| pt * eta.sinh();
    let (pz1, pz2) = (pz(pt1, k.eta1[i]), pz(pt2, k.eta2[i]));
    let r2 = std::f64::consts::SQRT_2;
    let (p1p, p1m) = ((k.e1[i] + pz1) / r2, (k.e1[i] - pz1) / r2);
    let (p2p, p2m) = ((k.e2[i] + pz2) / r2, (k.e2[i] - pz2) / r2);
    let pt_yy = k.pt_yy[i];
    let cos_cs = 2.0 * (p1p * p2m - p1m * p2p) / (m * (m * m + pt_yy * pt_yy).sqrt());
    [
        pt1 / m,
        pt2 / m,
        k.eta1[i],
        k.eta2[i],
        dphi,
        pt_yy / m,
        ptt / m,
        cos_cs.abs().min(1.0),
        k.track_iso1[i],
        k.track_iso2[i],
        k.calo_iso1[i],
        k.calo_iso2[i],
    ]
}

/// A hash of selected event `i`'s own first photon (pT, η, φ as stored): a key of the event
/// itself, as an event number would be (the selection does not carry one). Removing or
/// changing other events — those of a blinded window — never changes it, so blinded results
/// do not depend on the window's content.
fn key(d: &Diphotons, i: usize) -> u64 {
    let k = &d.kinematics;
    let mut h = k.pt1[i].to_bits()
        ^ k.eta1[i].to_bits().rotate_left(21)
        ^ k.phi1[i].to_bits().rotate_left(42);
    // splitmix64's finaliser: every input bit reaches every bit used.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The fold (0 or 1) of selected event `i`, from its [`key`].
pub fn fold(d: &Diphotons, i: usize) -> u8 {
    (key(d, i) & 1) as u8
}

/// Whether selected event `i` is in its fold's validation split (one in five, from its
/// [`key`]): the events that decide when training stops.
pub fn validation(d: &Diphotons, i: usize) -> bool {
    (key(d, i) >> 1).is_multiple_of(5)
}

/// Whether m_γγ is in the sidebands (outside the blinded signal window).
pub fn in_sidebands(m: f64, window: (f64, f64)) -> bool {
    m < window.0 || m > window.1
}

/// How the classifier is trained (declared as the training rule's parameters).
///
/// Regularised for samples of a few thousand events (the fixtures' 2.8k sideband events
/// overfitted 150 trees of depth 5: held-out AUC 0.56, below pT_γγ/m alone): shallow trees, an
/// L2 penalty and a minimum leaf weight, and as many trees as keep improving the log-loss of a
/// validation split of the fold's training events (early stopping). `cargo xtask bench-train`
/// compares it with LightGBM and a single variable.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Most boosting iterations (trees); early stopping usually ends sooner.
    pub trees: usize,
    /// Maximum depth of each tree.
    pub max_depth: usize,
    /// Learning rate (shrinkage) of the booster.
    pub learning_rate: f32,
    /// L2 penalty on leaf weights.
    pub l2: f32,
    /// Least hessian weight in a leaf.
    pub min_leaf_weight: f32,
    /// Stop when the validation log-loss has not improved for this many trees.
    pub early_stopping: usize,
    /// Random seed of the booster.
    pub seed: u64,
    /// At most this many events of each class (signal MC, data sidebands) enter the
    /// training sample, shared evenly between the class's files (every k-th eligible event of
    /// each): memory and training time bounded whatever the number of files.
    pub max_per_class: usize,
    /// The signal window kept out of the background sample (and blinded in categorization).
    pub signal_window: (f64, f64),
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            trees: 300,
            max_depth: 3,
            learning_rate: 0.2,
            l2: 1.0,
            min_leaf_weight: 1.0,
            early_stopping: 10,
            seed: 42,
            max_per_class: 20_000,
            signal_window: (120.0, 130.0),
        }
    }
}

/// The training sample: features, label (1 signal), weight, fold.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Feature values per event, in [`FEATURES`] order.
    pub x: Vec<[f64; 12]>,
    /// Labels: 1 for signal, 0 for background.
    pub y: Vec<f64>,
    /// Training weights (the magnitudes of the events' weights).
    pub w: Vec<f64>,
    /// Fold per event ([`fold`]).
    pub fold: Vec<u8>,
    /// Whether the event is in its fold's validation split ([`validation`]).
    pub validation: Vec<bool>,
}

impl Sample {
    /// Adds a bounded, deterministic share of one file's selected events: signal MC (all
    /// masses) or data background (sidebands only); `files` is how many files the class has
    /// (each gets an equal share of `max_per_class`).
    pub fn add(&mut self, d: &Diphotons, signal: bool, files: usize, cfg: &ClassifierConfig) {
        let eligible: Vec<usize> = (0..d.len())
            .filter(|&i| signal || in_sidebands(d.m_yy[i], cfg.signal_window))
            .collect();
        let share = cfg.max_per_class.div_ceil(files.max(1)).max(1);
        let stride = eligible.len().div_ceil(share).max(1);
        for &i in eligible.iter().step_by(stride) {
            self.x.push(features(d, i));
            self.y.push(if signal { 1.0 } else { 0.0 });
            // Negative MC weights cannot train a tree: their magnitude is used.
            self.w.push(d.weight[i].abs().max(f64::MIN_POSITIVE));
            self.fold.push(fold(d, i));
            self.validation.push(validation(d, i));
        }
    }
}

/// The trained classifier: one model per fold (as forust-ml's JSON), what it achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classifier {
    /// The configuration it was trained with.
    pub config: ClassifierConfig,
    /// Feature names, in order ([`FEATURES`]).
    pub features: Vec<String>,
    /// `models[k]` scores fold k (trained on the other fold).
    pub models: [FoldModel; 2],
    /// BLAKE3 of the two models' JSON.
    pub hash: String,
    /// Weighted ROC AUC of the held-out scores of the training sample.
    pub auc: f64,
    /// The ROC curve of those scores: (background efficiency, signal efficiency) at each of
    /// 101 score thresholds.
    pub roc: Vec<(f64, f64)>,
    /// Total gain per feature, normalised to 1 (mean of the two folds).
    pub importance: Vec<(String, f64)>,
    /// Signal and background events in the training sample.
    pub n_signal: usize,
    /// Background (data sideband) events in the training sample.
    pub n_background: usize,
}

/// What scores one fold: the GBDT, or — where the GBDT did not beat it on the fold's validation
/// split — the single best feature through a monotone map to (0, 1) (a cut on one variable:
/// on a small sample the trees fit noise that a single variable does not).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoldModel {
    /// forust-ml's JSON of the booster, and the trees it kept (early stopping).
    Gbdt {
        /// The booster as forust-ml saves it.
        json: String,
        /// Trees used in predictions.
        trees: usize,
    },
    /// Feature `feature` alone: score = 1 / (1 + exp(−sign · (x − centre) / scale)).
    Single {
        /// Index into [`FEATURES`].
        feature: usize,
        /// +1: larger is more signal-like; −1: smaller is.
        sign: f64,
        /// The training sample's median of the feature.
        centre: f64,
        /// Half its interquartile range (positive).
        scale: f64,
    },
}

impl FoldModel {
    /// In words, for results.json.
    pub fn describe(&self) -> String {
        match self {
            FoldModel::Gbdt { trees, .. } => format!("GBDT, {trees} trees"),
            FoldModel::Single { feature, .. } => format!("{} alone", FEATURES[*feature]),
        }
    }
}

fn matrix_buffer(rows: &[&[f64; 12]]) -> Vec<f64> {
    // forust-ml's Matrix is column-major.
    let n = rows.len();
    let mut v = vec![0.0; n * 12];
    for (i, r) in rows.iter().enumerate() {
        for j in 0..12 {
            v[j * n + i] = r[j];
        }
    }
    v
}

fn booster(cfg: &ClassifierConfig) -> GradientBooster {
    GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(cfg.trees)
        .set_learning_rate(cfg.learning_rate)
        .set_max_depth(cfg.max_depth)
        .set_l2(cfg.l2)
        .set_min_leaf_weight(cfg.min_leaf_weight)
        .set_early_stopping_rounds(Some(cfg.early_stopping))
        .set_evaluation_metric(Some(Metric::LogLoss))
        .set_nbins(256)
        .set_seed(cfg.seed)
        .set_parallel(false)
        .set_num_threads(Some(1))
}

/// Probabilities from a model for `rows`.
fn predict(model: &GradientBooster, rows: &[&[f64; 12]]) -> Vec<f64> {
    if rows.is_empty() {
        return vec![];
    }
    let buf = matrix_buffer(rows);
    let m = Matrix::new(&buf, rows.len(), 12);
    model
        .predict(&m, false)
        .iter()
        .map(|z| 1.0 / (1.0 + (-z).exp()))
        .collect()
}

/// Weighted ROC AUC and curve of scores with labels.
pub fn roc(scores: &[f64], y: &[f64], w: &[f64]) -> (f64, Vec<(f64, f64)>) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let (ts, tb): (f64, f64) = idx.iter().fold((0.0, 0.0), |(s, b), &i| {
        if y[i] > 0.5 {
            (s + w[i], b)
        } else {
            (s, b + w[i])
        }
    });
    let (mut s, mut auc) = (0.0, 0.0);
    let mut k = 0;
    while k < idx.len() {
        // Ties move together (the trapezoid).
        let mut j = k;
        let (mut ds, mut db) = (0.0, 0.0);
        while j < idx.len() && scores[idx[j]] == scores[idx[k]] {
            if y[idx[j]] > 0.5 {
                ds += w[idx[j]];
            } else {
                db += w[idx[j]];
            }
            j += 1;
        }
        auc += db * (s + ds / 2.0);
        s += ds;
        k = j;
    }
    let auc = if ts > 0.0 && tb > 0.0 {
        auc / (ts * tb)
    } else {
        0.5
    };
    let curve = (0..=100)
        .map(|t| {
            let cut = t as f64 / 100.0;
            let (mut es, mut eb) = (0.0, 0.0);
            for i in 0..scores.len() {
                if scores[i] >= cut {
                    if y[i] > 0.5 {
                        es += w[i];
                    } else {
                        eb += w[i];
                    }
                }
            }
            (
                eb / tb.max(f64::MIN_POSITIVE),
                es / ts.max(f64::MIN_POSITIVE),
            )
        })
        .collect();
    (auc, curve)
}

/// Why a classifier could not be trained or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// Too few events of a class to train on.
    #[error(
        "too few events to train the classifier: {signal} signal (MC), {background} \
         background (data sidebands); at least 20 of each"
    )]
    TooFew {
        /// Signal (MC) events in the training sample.
        signal: usize,
        /// Background (data sideband) events in the training sample.
        background: usize,
    },
    /// Rows, labels and weights that do not fit together.
    #[error("{0}")]
    Shape(String),
    /// The booster failed to train, save or load a model.
    #[error("{0}")]
    Booster(String),
}

/// Trains the two fold models on `sample`.
pub fn train(sample: &Sample, cfg: &ClassifierConfig) -> Result<Classifier, ClassifyError> {
    let (n_signal, n_background) = (
        sample.y.iter().filter(|&&y| y > 0.5).count(),
        sample.y.iter().filter(|&&y| y < 0.5).count(),
    );
    if n_signal < 20 || n_background < 20 {
        return Err(ClassifyError::TooFew {
            signal: n_signal,
            background: n_background,
        });
    }
    // Balanced classes: signal weights (σ × L / ΣW, a few hundred events in all) rescaled so
    // that both classes weigh the same; the AUC uses the same weights.
    let total = |label: f64| -> f64 {
        (0..sample.y.len())
            .filter(|&i| sample.y[i] == label)
            .map(|i| sample.w[i])
            .sum()
    };
    let scale = total(0.0) / total(1.0);
    let weights: Vec<f64> = (0..sample.y.len())
        .map(|i| {
            if sample.y[i] > 0.5 {
                sample.w[i] * scale
            } else {
                sample.w[i]
            }
        })
        .collect();
    let sample = &Sample {
        w: weights,
        ..sample.clone()
    };
    // The model that scores fold k learns from the other fold: its training split grows the
    // trees, its validation split says when to stop. The two folds train side by side.
    let fit_fold = |k: u8| -> Result<(GradientBooster, String), ClassifyError> {
        let rows = |valid: bool| -> Vec<usize> {
            (0..sample.x.len())
                .filter(|&i| sample.fold[i] != k && sample.validation[i] == valid)
                .collect()
        };
        let (train, valid) = (rows(false), rows(true));
        let columns = |rows: &[usize]| {
            let x: Vec<&[f64; 12]> = rows.iter().map(|&i| &sample.x[i]).collect();
            let y: Vec<f64> = rows.iter().map(|&i| sample.y[i]).collect();
            let w: Vec<f64> = rows.iter().map(|&i| sample.w[i]).collect();
            (matrix_buffer(&x), y, w)
        };
        let (tx, ty, tw) = columns(&train);
        let (vx, vy, vw) = columns(&valid);
        let mut b = booster(cfg);
        let eval = vec![(
            Matrix::new(&vx, valid.len(), 12),
            vy.as_slice(),
            vw.as_slice(),
        )];
        b.fit(&Matrix::new(&tx, train.len(), 12), &ty, &tw, Some(eval))
            .map_err(|e| ClassifyError::Booster(format!("training: {e}")))?;
        let json = b
            .json_dump()
            .map_err(|e| ClassifyError::Booster(format!("saving the model: {e}")))?;
        Ok((b, json))
    };
    // Per fold, the GBDT or the single best feature, whichever scores the fold's validation
    // split better.
    let choose = |k: u8, (b, json): (GradientBooster, String)| -> FoldModel {
        let valid: Vec<usize> = (0..sample.x.len())
            .filter(|&i| sample.fold[i] != k && sample.validation[i])
            .collect();
        let (vy, vw): (Vec<f64>, Vec<f64>) =
            valid.iter().map(|&i| (sample.y[i], sample.w[i])).unzip();
        let x: Vec<&[f64; 12]> = valid.iter().map(|&i| &sample.x[i]).collect();
        let gbdt = roc(&predict(&b, &x), &vy, &vw).0;
        let trees = b.prediction_iteration.unwrap_or(b.trees.len());
        let single = single_feature(sample, &valid);
        let single_auc = {
            let scores: Vec<f64> = x.iter().map(|r| single.score(r)).collect();
            roc(&scores, &vy, &vw).0
        };
        // The simpler model unless the trees do better by more than the validation AUC's
        // standard error (the one-standard-error rule): a small split's noise must not pick
        // them.
        let n_s = vy.iter().filter(|&&y| y > 0.5).count();
        if gbdt > single_auc + auc_error(gbdt, n_s, vy.len() - n_s) {
            FoldModel::Gbdt { json, trees }
        } else {
            single
        }
    };
    let (a, b) = rayon::join(|| fit_fold(0), || fit_fold(1));
    let models = [choose(0, a?), choose(1, b?)];
    let scorer = Scorer::load(&models)?;
    // Held-out scores of the sample.
    let mut scores = vec![0.0; sample.x.len()];
    for fold in 0..2u8 {
        let rows: Vec<usize> = (0..sample.x.len())
            .filter(|&i| sample.fold[i] == fold)
            .collect();
        let x: Vec<&[f64; 12]> = rows.iter().map(|&i| &sample.x[i]).collect();
        for (i, s) in rows.iter().zip(scorer.models[fold as usize].predict(&x)) {
            scores[*i] = s;
        }
    }
    let (auc, roc) = roc(&scores, &sample.y, &sample.w);
    let mut importance = vec![0.0; 12];
    for m in &scorer.models {
        match m {
            Loaded::Gbdt(b) => {
                for (j, v) in b.calculate_feature_importance(ImportanceMethod::TotalGain, true) {
                    if j < 12 {
                        importance[j] += v as f64 / 2.0;
                    }
                }
            }
            Loaded::Single(FoldModel::Single { feature, .. }) => importance[*feature] += 0.5,
            Loaded::Single(_) => {}
        }
    }
    let json = serde_json::to_string(&models).expect("plain data");
    let hash = blake3::hash(json.as_bytes()).to_hex();
    Ok(Classifier {
        config: *cfg,
        features: FEATURES.iter().map(|s| s.to_string()).collect(),
        models,
        hash: hash[..16].to_string(),
        auc,
        roc,
        importance: FEATURES
            .iter()
            .zip(importance)
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        n_signal,
        n_background,
    })
}

/// The standard error of an AUC `a` measured on `n_s` signal and `n_b` background events
/// (Hanley & McNeil, 1982).
fn auc_error(a: f64, n_s: usize, n_b: usize) -> f64 {
    let (q1, q2) = (a / (2.0 - a), 2.0 * a * a / (1.0 + a));
    let (ns, nb) = (n_s.max(1) as f64, n_b.max(1) as f64);
    ((a * (1.0 - a) + (ns - 1.0) * (q1 - a * a) + (nb - 1.0) * (q2 - a * a)) / (ns * nb))
        .max(0.0)
        .sqrt()
}

/// The feature (and direction) that alone best separates the fold's validation events, with
/// its map to (0, 1).
fn single_feature(sample: &Sample, valid: &[usize]) -> FoldModel {
    let (vy, vw): (Vec<f64>, Vec<f64>) = valid.iter().map(|&i| (sample.y[i], sample.w[i])).unzip();
    let mut best = (f64::NEG_INFINITY, 0, 1.0);
    for j in 0..12 {
        let x: Vec<f64> = valid.iter().map(|&i| sample.x[i][j]).collect();
        let auc = roc(&x, &vy, &vw).0;
        for (a, sign) in [(auc, 1.0), (1.0 - auc, -1.0)] {
            if a > best.0 {
                best = (a, j, sign);
            }
        }
    }
    let (_, feature, sign) = best;
    // The map's centre and scale from the whole sample's values of the feature (no labels):
    // both folds choosing the same feature rank every event alike, as a single cut does.
    let mut x: Vec<f64> = sample.x.iter().map(|r| r[feature]).collect();
    x.sort_by(f64::total_cmp);
    let q = |f: f64| {
        x.get(((x.len() as f64 - 1.0) * f).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    FoldModel::Single {
        feature,
        sign,
        centre: q(0.5),
        scale: ((q(0.75) - q(0.25)) / 2.0).max(1e-9),
    }
}

impl FoldModel {
    fn score(&self, x: &[f64; 12]) -> f64 {
        match self {
            FoldModel::Single {
                feature,
                sign,
                centre,
                scale,
            } => 1.0 / (1.0 + (-sign * (x[*feature] - centre) / scale).exp()),
            FoldModel::Gbdt { .. } => unreachable!("a GBDT scores through its loaded booster"),
        }
    }
}

/// One model trained on labelled rows (`y` 1 for signal, weights as given) that scores
/// other rows: the reference `Separate` stage. Any number of features; rows must agree.
pub fn fit_predict(
    train: &[Vec<f64>],
    y: &[f64],
    w: &[f64],
    test: &[Vec<f64>],
    cfg: &ClassifierConfig,
) -> Result<Vec<f64>, ClassifyError> {
    let cols = train.first().map_or(0, Vec::len);
    if cols == 0 || train.len() != y.len() || train.len() != w.len() {
        return Err(ClassifyError::Shape(format!(
            "{} training rows, {} labels, {} weights, {cols} features: need rows, labels and \
             weights of one length and at least one feature",
            train.len(),
            y.len(),
            w.len()
        )));
    }
    if let Some(i) = train.iter().chain(test).position(|r| r.len() != cols) {
        return Err(ClassifyError::Shape(format!(
            "row {i} has not {cols} features"
        )));
    }
    let column_major = |rows: &[Vec<f64>]| -> Vec<f64> {
        let n = rows.len();
        let mut v = vec![0.0; n * cols];
        for (i, r) in rows.iter().enumerate() {
            for (j, x) in r.iter().enumerate() {
                v[j * n + i] = *x;
            }
        }
        v
    };
    // Every fifth training row decides when to stop adding trees, as in `train`.
    let (mut fit_rows, mut valid_rows) = (Vec::new(), Vec::new());
    for i in 0..train.len() {
        if i % 5 == 4 {
            &mut valid_rows
        } else {
            &mut fit_rows
        }
        .push(i);
    }
    let pick = |rows: &[usize]| -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
        (
            rows.iter().map(|&i| train[i].clone()).collect(),
            rows.iter().map(|&i| y[i]).collect(),
            rows.iter().map(|&i| w[i]).collect(),
        )
    };
    let ((fx, fy, fw), (vx, vy, vw)) = (pick(&fit_rows), pick(&valid_rows));
    let (fbuf, vbuf) = (column_major(&fx), column_major(&vx));
    let mut b = booster(cfg);
    let eval = (!vx.is_empty()).then(|| {
        vec![(
            Matrix::new(&vbuf, vx.len(), cols),
            vy.as_slice(),
            vw.as_slice(),
        )]
    });
    b.fit(&Matrix::new(&fbuf, fx.len(), cols), &fy, &fw, eval)
        .map_err(|e| ClassifyError::Booster(format!("training: {e}")))?;
    if test.is_empty() {
        return Ok(vec![]);
    }
    let buf = column_major(test);
    Ok(b.predict(&Matrix::new(&buf, test.len(), cols), false)
        .iter()
        .map(|z| 1.0 / (1.0 + (-z).exp()))
        .collect())
}

/// One fold's model, loaded.
enum Loaded {
    Gbdt(Box<GradientBooster>),
    Single(FoldModel),
}

impl Loaded {
    fn predict(&self, rows: &[&[f64; 12]]) -> Vec<f64> {
        match self {
            Loaded::Gbdt(b) => predict(b, rows),
            Loaded::Single(m) => rows.iter().map(|r| m.score(r)).collect(),
        }
    }
}

/// A loaded classifier that scores events.
pub struct Scorer {
    models: [Loaded; 2],
}

impl Scorer {
    /// Loads both fold models of `c`; errors if the booster cannot parse them.
    pub fn new(c: &Classifier) -> Result<Self, ClassifyError> {
        Self::load(&c.models)
    }

    fn load(models: &[FoldModel; 2]) -> Result<Self, ClassifyError> {
        let load = |m: &FoldModel| match m {
            FoldModel::Gbdt { json, .. } => GradientBooster::from_json(json)
                .map(|b| Loaded::Gbdt(Box::new(b)))
                .map_err(|e| ClassifyError::Booster(format!("loading the model: {e}"))),
            single => Ok(Loaded::Single(single.clone())),
        };
        Ok(Self {
            models: [load(&models[0])?, load(&models[1])?],
        })
    }

    /// The score of every selected event of a file, each from the model of its fold.
    pub fn score(&self, d: &Diphotons) -> Vec<f64> {
        // The two folds side by side.
        let of = |k: u8| {
            let rows: Vec<usize> = (0..d.len()).filter(|&i| fold(d, i) == k).collect();
            let feats: Vec<[f64; 12]> = rows.iter().map(|&i| features(d, i)).collect();
            let x: Vec<&[f64; 12]> = feats.iter().collect();
            let s = self.models[k as usize].predict(&x);
            (rows, s)
        };
        let (a, b) = rayon::join(|| of(0), || of(1));
        let mut scores = vec![0.0; d.len()];
        for (rows, s) in [a, b] {
            for (i, v) in rows.into_iter().zip(s) {
                scores[i] = v;
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Perfect separation: 1; reversed: 0; one tie between a signal and a background: ½.
        let y = [1.0, 1.0, 0.0, 0.0];
        let w = [1.0; 4];
        assert_eq!(roc(&[0.9, 0.8, 0.2, 0.1], &y, &w).0, 1.0);
        assert_eq!(roc(&[0.1, 0.2, 0.8, 0.9], &y, &w).0, 0.0);
        assert_eq!(roc(&[0.5, 0.5], &[1.0, 0.0], &[1.0, 1.0]).0, 0.5);
        // Weights count: s=(0.9, w 3), b=(0.95, w 1), b=(0.1, w 1) → 3·1 of 3·2 pairs right.
        assert_eq!(
            roc(&[0.9, 0.95, 0.1], &[1.0, 0.0, 0.0], &[3.0, 1.0, 1.0]).0,
            0.5
        );
    }
}
