"""The original optunapi's design, rewritten from its README: the study is loaded on every request.

    python -m benchmarks.peers.original --storage sqlite:///PATH.db --config-dir DIR --sampler tpe

``GET /optunapi/hparams/{study}`` loads the study from SQLite, asks one trial and suggests every
parameter of ``{config_dir}/{study}.yaml`` (read on each request, like the original's
``suggest_from_config``); ``GET /optunapi/score/{study}?trial_id=N&score=X`` loads it again,
tells trial N, and answers with the best trial, as the README's keys show. The routes are
``async def`` as in the original, so each request's Optuna calls block the event loop and
requests are served one at a time. The original also rewrote a log file of the whole study on
every request; that is left out, which only flatters this peer.

The sampler is built per request, without a seed: a seeded one, rebuilt every time, would hand
every client the same parameters.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import optuna
import yaml
from fastapi import FastAPI
from optuna.trial import TrialState

from benchmarks.peers.listen import serve
from benchmarks.workloads import make_sampler, suggest


def create_app(storage: str, config_dir: Path, sampler: str) -> FastAPI:
    """The original's two routes over one SQLite file.

    Args:
        storage: ``sqlite:///PATH``, holding the studies.
        config_dir: Where ``{study}.yaml`` defines each study's parameters.
        sampler: ``random`` or ``tpe``.
    """
    app = FastAPI()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def load(name: str) -> optuna.Study:
        return optuna.load_study(
            study_name=name, storage=storage, sampler=make_sampler(sampler, None)
        )

    def counts(study: optuna.Study) -> dict[str, int]:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return {"running_trials": len(running), "completed_trials": len(complete)}

    @app.get("/optunapi/hparams/{model_name}")
    async def read_hparams(model_name: str) -> dict[str, Any]:
        study = load(model_name)
        trial = study.ask()
        space = yaml.safe_load((config_dir / f"{model_name}.yaml").read_text())
        params = suggest(trial, space)
        return {"model_name": model_name, "trial_id": trial.number, "params": params} | counts(
            study
        )

    @app.get("/optunapi/score/{model_name}")
    async def send_score(model_name: str, trial_id: int, score: float) -> dict[str, Any]:
        study = load(model_name)
        study.tell(trial_id, score)
        best = study.best_trial
        return {
            "model_name": model_name,
            "trial_id": trial_id,
            "params": study.get_trials(deepcopy=False)[trial_id].params,
            "score": score,
            "best_trial": best.number,
            "best_score_id": best.number,
            "best_params": best.params,
            "best_score": best.value,
        } | counts(study)

    return app


def main() -> None:
    """Parse the flags and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--config-dir", required=True, type=Path)
    parser.add_argument("--sampler", default="tpe")
    args = parser.parse_args()
    serve(create_app(args.storage, args.config_dir, args.sampler), "original", args.storage)


if __name__ == "__main__":
    main()
