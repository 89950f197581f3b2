"""Random binary test sets with scikit-learn's metrics, for tests/common/metrics_test.cpp. Scores are rounded to
create ties; sets include heavily imbalanced ones. Prints JSON."""
import json

import numpy as np
from sklearn import metrics

rng = np.random.default_rng(3)
cases = []
for i in range(40):
    n = int(rng.integers(5, 400))
    p = rng.uniform(0.05, 0.95)
    y = (rng.random(n) < p).astype(int)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    score = np.clip(rng.normal(0.5 + (y - 0.5) * rng.uniform(0, 1.5), 0.3), 0, 1)
    score = np.round(score, int(rng.integers(1, 4)))
    pred = (score >= 0.5).astype(int)
    if pred.sum() == 0:
        continue
    cases.append({
        "y": y.tolist(), "score": score.tolist(),
        "f1": metrics.f1_score(y, pred), "auroc": metrics.roc_auc_score(y, score),
        "auprc": metrics.average_precision_score(y, score), "precision": metrics.precision_score(y, pred),
        "recall": metrics.recall_score(y, pred), "accuracy": metrics.accuracy_score(y, pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y, pred), "mcc": metrics.matthews_corrcoef(y, pred),
    })
print(json.dumps(cases))
