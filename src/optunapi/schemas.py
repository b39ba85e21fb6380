"""Wire models of the HTTP API, named by role and direction (``StudyCreate`` in, ``StudyRead`` out).

Shared by the server (validation, OpenAPI) and the client (parsing answers). Pydantic only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from optunapi.names import STUDY_NAME_PATTERN

# Trial numbers and steps are 32-bit integers in Optuna's tables on PostgreSQL.
MAX_NUMBER = 2**31 - 1
#: On an ask's answer: the number of another trial in flight with the same params, given when
#: a discrete space has no free point left.
SPACE_EXHAUSTED_HEADER = "Optunapi-Space-Exhausted"
#: On an ask's answer: which study (of its name) the trial belongs to. Sent back with the
#: trial's heartbeats, reports and tell, it makes them a 404 once the study was deleted, even
#: if a new study of the same name has a trial of the same number.
STUDY_UID_HEADER = "Optunapi-Study-Uid"
StudyName = Annotated[
    str, Field(pattern=STUDY_NAME_PATTERN, description="A study name.", examples=["mnist-v2"])
]
# JSON has no NaN or infinity; Python's parser accepts the tokens anyway, so they are refused here.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MAX_ATTRS_BYTES = 64 * 1024
MAX_ATTRS_DEPTH = 32


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """User attrs must stay readable: finite numbers, shallow nesting, a bounded size."""

    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: a deep value must not exhaust the interpreter's stack
        item, level = stack.pop()
        if level > MAX_ATTRS_DEPTH:
            raise ValueError(f"nests deeper than {MAX_ATTRS_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, (dict, list)):
            stack.extend((child, level + 1) for child in children)
    try:
        size = len(json.dumps(value, allow_nan=False))
    except ValueError:
        raise ValueError("holds NaN or an infinite number, which JSON cannot") from None
    if size > MAX_ATTRS_BYTES:
        raise ValueError(f"is {size} bytes as JSON, more than {MAX_ATTRS_BYTES}")
    return value


UserAttrs = Annotated[dict[str, Any], AfterValidator(_plain_json)]
TrialStateName = Literal["running", "waiting", "complete", "pruned", "fail"]


class _In(BaseModel):
    """A request body: unknown fields are an error, not silently dropped, and every string is
    text that can be stored and sent back (no lone UTF-16 surrogates)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(
                        f"{item[:20]!r} is not valid Unicode text (a lone surrogate)"
                    ) from None
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return data


class StudyCreate(_In):
    """``POST /v1/studies``: a study name, its space and how to search it."""

    name: StudyName
    space: dict[str, Any]
    direction: str | None = None
    directions: list[str] | None = None
    metric_names: list[str] | None = None
    sampler: dict[str, Any] | str | None = None
    pruner: dict[str, Any] | str | None = None
    lease_seconds: float | None = None
    max_retries: int | None = None

    def options(self) -> dict[str, Any]:
        """The study options that were given, as ``space.build_definition`` takes them."""
        return self.model_dump(exclude={"name", "space"}, exclude_none=True)


class TrialAsk(_In):
    """``POST /v1/studies/{name}/trials``: ask for a trial, optionally as a named worker."""

    worker: str | None = Field(default=None, min_length=1, max_length=256)


class _WithValues(_In):
    """A body that may carry objective values: ``value`` or ``values``, not both."""

    value: FiniteFloat | None = None
    values: list[FiniteFloat] | None = None
    user_attrs: UserAttrs | None = None

    @model_validator(mode="after")
    def _one_of_value_or_values(self) -> _WithValues:
        if self.value is not None and self.values is not None:
            raise ValueError("give 'value' or 'values', not both")
        return self

    def all_values(self) -> list[float] | None:
        """``values``, or ``[value]``, or None."""
        if self.values is not None:
            return list(self.values)
        return None if self.value is None else [self.value]


class TrialTell(_WithValues):
    """``POST .../trials/{number}/tell``: the outcome of a trial."""

    state: Literal["complete", "fail", "pruned"] = "complete"
    constraints: list[FiniteFloat] | None = None


class TrialEnqueue(_WithValues):
    """``POST /v1/studies/{name}/enqueue``: params to try first (a warm start), or, with a
    value, a finished trial from an earlier run."""

    params: dict[str, Any]
    skip_if_exists: bool = False


class Enqueued(BaseModel):
    """The answer to an enqueue: the trial's number, and whether an existing one was kept."""

    number: int
    skipped: bool = False


class TrialReport(_In):
    """``POST .../trials/{number}/report``: an intermediate value at a step."""

    step: int = Field(ge=0, le=MAX_NUMBER, strict=True)
    value: FiniteFloat


class PruneAdvice(BaseModel):
    """The answer to a report."""

    should_prune: bool
    stored: bool = Field(
        True,
        description="False when the step already had a value: a step's first value stays, "
        "as in Optuna, and this one was not stored.",
    )


class Lease(BaseModel):
    """The answer to a heartbeat."""

    lease_expires_at: datetime


class StateCounts(BaseModel):
    """How many trials a study holds in each state."""

    running: int = 0
    waiting: int = 0
    complete: int = 0
    pruned: int = 0
    fail: int = 0


class TrialRead(BaseModel):
    """One trial, as every route returns it."""

    number: int
    state: TrialStateName
    params: dict[str, Any]
    values: list[float] | None
    value: float | None
    intermediate_values: dict[int, float]
    datetime_start: datetime | None
    datetime_complete: datetime | None
    worker: str | None
    lease_expires_at: datetime | None
    user_attrs: dict[str, Any]
    constraints: list[float] | None = None


class StudySummary(BaseModel):
    """A study in the list of studies."""

    name: str
    directions: list[str]
    metric_names: list[str] | None
    counts: StateCounts


class StudyRead(StudySummary):
    """A study: its definition, its counts per state and its best trial(s)."""

    space: dict[str, Any]
    sampler: dict[str, Any]
    pruner: dict[str, Any] | None
    lease_seconds: float | None
    max_retries: int
    best: TrialRead | None = Field(
        description="The best trial of a single-objective study; null when none is complete "
        "or the study has several objectives (see best_trials)."
    )
    best_trials: list[TrialRead] = Field(description="The best trial, or the Pareto front.")


class StudyList(BaseModel):
    """``GET /v1/studies``."""

    studies: list[StudySummary]


class TrialList(BaseModel):
    """``GET /v1/studies/{name}/trials``: one page, ordered by number."""

    trials: list[TrialRead]
    total: int


class BestTrials(BaseModel):
    """``GET /v1/studies/{name}/best``: the best trial, or the Pareto front; empty when none."""

    trials: list[TrialRead]


class Health(BaseModel):
    """``GET /v1/health``."""

    status: Literal["ok"] = "ok"
    version: str
    storage: str


class Problem(BaseModel):
    """An RFC 9457 problem body; further fields (``errors``, ``stored``...) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str


class LegacyHparams(BaseModel):
    """``GET /optunapi/hparams/{model_name}``, with the original optunapi's keys."""

    model_name: str
    trial_id: int
    params: dict[str, Any]
    running_trials: int
    completed_trials: int


class LegacyScore(BaseModel):
    """``GET /optunapi/score/{model_name}``, with the original optunapi's keys."""

    model_name: str
    trial_id: int
    params: dict[str, Any]
    score: float
    best_trial: int | None
    best_score_id: int | None
    best_params: dict[str, Any] | None
    best_score: float | None
    running_trials: int
    completed_trials: int
