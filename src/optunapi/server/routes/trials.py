"""``/v1/studies/{name}/trials``: ask, tell, heartbeat, report, list and read trials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status
from pydantic import BeforeValidator

from optunapi.schemas import (
    MAX_NUMBER,
    SPACE_EXHAUSTED_HEADER,
    STUDY_UID_HEADER,
    Lease,
    PruneAdvice,
    StudyName,
    TrialAsk,
    TrialList,
    TrialRead,
    TrialReport,
    TrialStateName,
    TrialTell,
)
from optunapi.server.concurrency import run_service
from optunapi.server.deps import TrialsDep, ViewsDep, query_once_each
from optunapi.server.problems import responses
from optunapi.server.services.trials import Trials

router = APIRouter(
    prefix="/v1/studies/{name}/trials",
    tags=["trials"],
    responses=responses(404, 409, 422, 503),
    dependencies=[Depends(query_once_each)],
)


def _digits(value: object) -> object:
    # Python's int() also reads "1_0", "+7" and " 7 ": a trial number is written in digits.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("a trial number is written in digits only")
    return value


Digits = BeforeValidator(_digits)
# Sent back with a trial's heartbeats, reports and tell: see ``STUDY_UID_HEADER``.
StudyUid = Annotated[
    str | None,
    Header(
        alias=STUDY_UID_HEADER,
        description="The study uid the ask answered: a 404 if the study was deleted since.",
    ),
]
Number = Annotated[
    int, Digits, Path(ge=0, le=MAX_NUMBER, description="The trial's number in its study.")
]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TrialRead)
async def ask(
    name: StudyName,
    request: Request,
    body: Annotated[TrialAsk | None, Body()] = None,
) -> Response:
    """Start a trial (201); a worker that holds a running trial gets it back (200).

    When every point of a discrete space is in flight, the trial repeats one, and the
    answer's ``Optunapi-Space-Exhausted`` header names the trial in flight with its params.
    """
    return await asked(request.app.state.trials, name, body)


@router.post("/{number}/tell", response_model=TrialRead)
async def tell(
    name: StudyName, number: Number, body: TrialTell, request: Request, study_uid: StudyUid = None
) -> Response:
    """Finish a trial; an identical repeat is a 200, a different outcome a 409."""
    return await told(request.app.state.trials, name, number, body, study_uid)


# What ask and tell do once their request is valid; also called by ``server/fastpath.py``.


async def asked(trials: Trials, name: str, body: TrialAsk | None) -> Response:
    """The answer to a valid ask."""
    quick = trials.quick_lock(name, asking=True)
    answer = await run_service(quick, trials.ask, name, body.worker if body else None)
    created = answer.created
    response = _json(answer.trial, status.HTTP_201_CREATED if created else status.HTTP_200_OK)
    response.headers[STUDY_UID_HEADER] = answer.study_uid
    if answer.twin is not None:
        response.headers[SPACE_EXHAUSTED_HEADER] = str(answer.twin)
    return response


async def told(
    trials: Trials, name: str, number: int, body: TrialTell, study_uid: str | None = None
) -> Response:
    """The answer to a valid tell."""
    quick = trials.quick_lock(name, asking=False)
    return _json(await run_service(quick, trials.tell, name, number, body, study_uid))


def _json(trial: TrialRead, status_code: int = status.HTTP_200_OK) -> Response:
    # Serialized here: FastAPI would validate the model it was just built from once more.
    return Response(trial.model_dump_json(), status_code, media_type="application/json")


@router.post("/{number}/heartbeat")
async def heartbeat(
    name: StudyName, number: Number, trials: TrialsDep, study_uid: StudyUid = None
) -> Lease:
    """Renew the trial's lease; 409 when it is no longer running (stop working on it)."""
    quick = trials.quick_lock(name, asking=False)
    expires = await run_service(quick, trials.heartbeat, name, number, study_uid)
    return Lease(lease_expires_at=expires)


@router.post("/{number}/report")
def report(
    name: StudyName,
    number: Number,
    body: TrialReport,
    trials: TrialsDep,
    study_uid: StudyUid = None,
) -> PruneAdvice:
    """Store an intermediate value and renew the lease; says whether to prune the trial.

    A step that already has a value keeps it, as in Optuna: the answer says ``stored: false``.
    """
    return trials.report(name, number, body.step, body.value, study_uid)


@router.get("")
def list_trials(
    name: StudyName,
    views: ViewsDep,
    state: TrialStateName | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TrialList:
    """A page of the study's trials, ordered by number."""
    page, total = views.page(name, state, offset, limit)
    return TrialList(trials=page, total=total)


@router.get("/{number}")
def get_trial(name: StudyName, number: Number, views: ViewsDep) -> TrialRead:
    """One trial."""
    return views.get(name, number)
