"""The original optunapi routes, unchanged for its published clients: GET only, same keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from optunapi.schemas import (
    MAX_NUMBER,
    SPACE_EXHAUSTED_HEADER,
    LegacyHparams,
    LegacyScore,
    StudyName,
    TrialTell,
)
from optunapi.server.deps import StudiesDep, TrialsDep, ViewsDep, query_once_each
from optunapi.server.problems import responses
from optunapi.server.routes.trials import Digits

router = APIRouter(tags=["legacy"], dependencies=[Depends(query_once_each)])
# The seed README also spelled the prefix "/optuna"; both are served, one is documented.
_PREFIXES = ("/optunapi", "/optuna")
PING_MESSAGE = "The Optuna-server is alive!"


async def ping_server() -> str:
    """Liveness, as the original server answered it (``async``: it never waits for a thread)."""
    return PING_MESSAGE


def read_hparams(
    model_name: StudyName,
    studies: StudiesDep,
    trials: TrialsDep,
    views: ViewsDep,
    response: Response,
) -> LegacyHparams:
    """Create or load the study defined by ``{config_dir}/{model_name}.yaml`` and ask a trial.

    ``trial_id`` is the number of the trial this request created.
    """
    asked = trials.ask(model_name)
    if asked.twin is not None:
        response.headers[SPACE_EXHAUSTED_HEADER] = str(asked.twin)
    trial = asked.trial
    counts = views.counts(studies.get(model_name))
    return LegacyHparams(
        model_name=model_name,
        trial_id=trial.number,
        params=trial.params,
        running_trials=counts.running,
        completed_trials=counts.complete,
    )


def send_score(
    model_name: StudyName,
    trial_id: Annotated[int, Digits, Query(ge=0, le=MAX_NUMBER)],
    score: Annotated[float, Query(allow_inf_nan=False)],
    studies: StudiesDep,
    trials: TrialsDep,
    views: ViewsDep,
) -> LegacyScore:
    """Tell trial ``trial_id`` the value ``score``; answer with the study's best so far."""
    trial = trials.tell(model_name, trial_id, TrialTell(value=score))
    entry = studies.get(model_name)
    best = views.best(entry)
    best_read = views.read(entry, best[0]) if best else None
    counts = views.counts(entry)
    return LegacyScore(
        model_name=model_name,
        trial_id=trial_id,  # as told: a late result may be stored on another trial
        params=trial.params,
        score=score,
        best_trial=best_read.number if best_read else None,
        best_score_id=best_read.number if best_read else None,
        best_params=best_read.params if best_read else None,
        best_score=best_read.value if best_read else None,
        running_trials=counts.running,
        completed_trials=counts.complete,
    )


for _prefix in _PREFIXES:
    _shown = _prefix == "/optunapi"
    router.add_api_route(f"{_prefix}/ping", ping_server, include_in_schema=_shown)
    router.add_api_route(
        f"{_prefix}/hparams/{{model_name}}",
        read_hparams,
        include_in_schema=_shown,
        responses=responses(404, 409, 422, 503),
    )
    router.add_api_route(
        f"{_prefix}/score/{{model_name}}",
        send_score,
        include_in_schema=_shown,
        responses=responses(404, 409, 422, 503),
    )
