//! The step-4 classifier does not overfit a small sample: on the fixtures' 2.8k sideband and
//! 2.4k signal MC events, where boosted trees fit noise, its held-out AUC is at least that of
//! pT_γγ/m alone (the best single variable), and each fold says which model scores it.

use analysis::classify::{self, ClassifierConfig, FoldModel, Sample};
use analysis::stage::{Cuts, Reference};
use analysis::workflow::{open_input, select_file};
use tests::fixture;

fn selected(name: &str, data: bool) -> analysis::select::Diphotons {
    let file = open_input(&fixture(name)).unwrap();
    let file = if data { file.as_data() } else { file };
    select_file(&file, &Cuts::default(), 25_000, &Reference, &|_| {})
        .unwrap()
        .merged()
        .diphotons
}

#[test]
fn on_a_small_sample_the_classifier_is_no_worse_than_the_best_single_variable() {
    let cfg = ClassifierConfig::default();
    let mut sample = Sample::default();
    sample.add(
        &selected("data_2020_zlib.GamGam.root", true),
        false,
        1,
        &cfg,
    );
    sample.add(
        &selected("mc_343981.ggH125_gamgam_2020_zlib.GamGam.root", false),
        true,
        1,
        &cfg,
    );
    let c = classify::train(&sample, &cfg).unwrap();
    let pt_over_m: Vec<f64> = sample.x.iter().map(|x| x[5]).collect();
    let (single, _) = classify::roc(&pt_over_m, &sample.y, &sample.w);
    println!(
        "held-out AUC {:.4} ({} / {}), pT_γγ/m alone {single:.4}",
        c.auc,
        c.models[0].describe(),
        c.models[1].describe()
    );
    assert!(c.auc >= single - 1e-9, "{} < {single}", c.auc);
    assert!(single > 0.55, "pT_γγ/m separates: {single}");
    // Each fold's model: trees stopped early, or one variable through a proper map.
    for m in &c.models {
        match m {
            FoldModel::Gbdt { trees, .. } => assert!(*trees > 0 && *trees < cfg.trees),
            FoldModel::Single { scale, .. } => assert!(*scale > 0.0),
        }
    }
}
