"""``/v1/studies``: create, list, read, delete studies; their best trials."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from optunapi.schemas import BestTrials, StudyCreate, StudyList, StudyName, StudyRead
from optunapi.server.deps import StudiesDep, ViewsDep
from optunapi.server.problems import responses
from optunapi.space import build_definition

router = APIRouter(
    prefix="/v1/studies",
    tags=["studies"],
    responses=responses(404, 409, 422, 503),
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


@router.get("/{name}/best")
def best_trials(name: StudyName, studies: StudiesDep, views: ViewsDep) -> BestTrials:
    """The best trial, or the Pareto front; empty when no trial is complete."""
    entry = studies.get(name)
    return BestTrials(trials=[views.read(entry, t) for t in views.best(entry)])
