"""A trainer: asks the server for trials of a study and scores each on the digits data."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from optunapi import Client

X, y = load_digits(return_X_y=True)


def accuracy(params: dict[str, Any]) -> float:
    """Mean 3-fold cross-validated accuracy of the model that ``params`` describe."""
    if params["classifier"] == "svc":
        classifier: Any = SVC(C=params["svc_c"], gamma=params["svc_gamma"])
    else:
        classifier = LogisticRegression(C=params["logreg_c"], max_iter=200)
    scaler = [StandardScaler()] if params["scale"] else []
    model = make_pipeline(*scaler, PCA(params["pca_components"]), classifier)
    return float(cross_val_score(model, X, y, cv=3, n_jobs=1).mean())


def main(url: str, study: str, n_trials: int, worker: str | None = None) -> None:
    """Run ``n_trials`` trials of ``study`` on the server at ``url``."""
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    with Client(url) as client:
        client.optimize(study, accuracy, n_trials, worker=worker)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("study", help="the study's name, e.g. digits")
    parser.add_argument("n_trials", type=int, help="how many trials to run")
    parser.add_argument("--worker", help="a name for this trainer, shown with its trials")
    args = parser.parse_args()
    main(args.url, args.study, args.n_trials, args.worker)
