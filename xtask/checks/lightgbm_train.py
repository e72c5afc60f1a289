#!/usr/bin/env python3
"""The anchor of `cargo xtask bench-train`: LightGBM trained and scored on the sample that
bench-train wrote (DIR/sample.csv: 12 features, label, weight, fold; DIR/score.csv: the
features of every selected event), with the same two folds (the model of fold k learns from
the other fold, with its own early-stopping validation split) and the same class balance.
Prints one JSON line: train and score seconds (in process, after loading), held-out AUC.

    python3 -m venv /tmp/lgbm && /tmp/lgbm/bin/pip install lightgbm numpy scikit-learn
    cargo xtask bench-train --python /tmp/lgbm/bin/python
"""

import json
import sys
import time

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score


def main(d):
    s = np.loadtxt(f"{d}/sample.csv", delimiter=",")
    x, y, w, fold, inner = s[:, :12], s[:, 12], s[:, 13], s[:, 14], s[:, 15]
    score_x = np.loadtxt(f"{d}/score.csv", delimiter=",", ndmin=2)
    # Balanced classes, as ours.
    w = np.where(y > 0.5, w * w[y < 0.5].sum() / w[y > 0.5].sum(), w)
    params = dict(objective="binary", learning_rate=0.1, num_leaves=15, max_depth=4,
                  min_child_samples=20, lambda_l2=1.0, verbose=-1, seed=42, deterministic=True)
    t0 = time.perf_counter()
    models = []
    for k in (0, 1):
        tr = (fold != k) & (inner == 0)
        va = (fold != k) & (inner == 1)
        train = lgb.Dataset(x[tr], y[tr], weight=w[tr])
        valid = lgb.Dataset(x[va], y[va], weight=w[va], reference=train)
        models.append(lgb.train(params, train, num_boost_round=300, valid_sets=[valid],
                                callbacks=[lgb.early_stopping(10, verbose=False)]))
    t_train = time.perf_counter() - t0
    held = np.zeros(len(y))
    for k in (0, 1):
        held[fold == k] = models[k].predict(x[fold == k], num_iteration=models[k].best_iteration)
    t0 = time.perf_counter()
    half = len(score_x) // 2
    models[0].predict(score_x[:half], num_iteration=models[0].best_iteration)
    models[1].predict(score_x[half:], num_iteration=models[1].best_iteration)
    t_score = time.perf_counter() - t0
    auc = roc_auc_score(y, held, sample_weight=w)
    trees = [m.best_iteration for m in models]
    print(json.dumps({"train_s": t_train, "score_s": t_score, "auc": auc, "trees": trees}))


if __name__ == "__main__":
    main(sys.argv[1])
