"""``/v1/studies``: create, list, read, delete studies; their best trials."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import PlainTextResponse

from optunapi.schemas import (
    BestTrials,
    Enqueued,
    StudyCreate,
    StudyList,
    StudyName,
    StudyRead,
    TrialEnqueue,
)
from optunapi.server.deps import StudiesDep, TrialsDep, ViewsDep, query_once_each
from optunapi.server.problems import responses
from optunapi.space import build_definition

router = APIRouter(
    prefix="/v1/studies",
    tags=["studies"],
    responses=responses(404, 409, 422, 503),
    dependencies=[Depends(query_once_each)],
)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_study(
    body: StudyCreate, response: Response, studies: StudiesDep, views: ViewsDep
) -> StudyRead:
    """Create a study; 200 if it exists with the same definition, 409 if with another."""
    definition = build_definition(body.space, **body.options())
    entry, created = studies.create(body.name, definition)
    if not created:
        response.status_code = status.HTTP_200_OK
    return views.describe(entry)


@router.get("")
def list_studies(views: ViewsDep) -> StudyList:
    """Every study with its trial counts per state."""
    return StudyList(studies=views.summaries())


@router.get("/{name}")
def get_study(name: StudyName, studies: StudiesDep, views: ViewsDep) -> StudyRead:
    """A study: its definition, counts per state and best trial(s)."""
    return views.describe(studies.get(name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_study(name: StudyName, studies: StudiesDep) -> Response:
    """Delete a study and all its trials."""
    studies.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/enqueue", status_code=status.HTTP_201_CREATED)
def enqueue(name: StudyName, body: TrialEnqueue, response: Response, trials: TrialsDep) -> Enqueued:
    """Queue params for the next ask (a warm start); with a value, add a finished trial.
    With ``skip_if_exists``, a trial with the same params is kept instead (200)."""
    number, created = trials.enqueue(name, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return Enqueued(number=number, skipped=not created)


@router.get(
    "/{name}/export",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def export(
    name: StudyName,
    views: ViewsDep,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
) -> Response:
    """Every trial of the study, as a CSV or JSON file."""
    media = "text/csv" if format == "csv" else "application/json"
    return Response(
        views.export(name, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'},
    )


@router.get("/{name}/best")
def best_trials(name: StudyName, studies: StudiesDep, views: ViewsDep) -> BestTrials:
    """The best trial, or the Pareto front; empty when no trial is complete."""
    entry = studies.get(name)
    return BestTrials(trials=[views.read(entry, t) for t in views.best(entry)])
