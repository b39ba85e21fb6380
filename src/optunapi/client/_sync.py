"""The synchronous Python client."""

from __future__ import annotations

import logging
import math
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from optunapi.errors import (
    InvalidValueError,
    NotFoundError,
    OptunapiError,
    ServerUnreachableError,
    StorageBusyError,
    TrialNotRunningError,
)
from optunapi.names import study_path, trial_path, trials_path
from optunapi.schemas import (
    SPACE_EXHAUSTED_HEADER,
    STUDY_UID_HEADER,
    BestTrials,
    Lease,
    PruneAdvice,
    StudyList,
    StudyRead,
    StudySummary,
    TrialList,
    TrialRead,
)
from optunapi.space import load_yaml, split_form

Objective = Callable[[dict[str, Any]], "float | Sequence[float]"]
_PAGE = 1000
_log = logging.getLogger("optunapi.client")


class TrialPruned(Exception):
    """Raised by ``Trial.report`` when the study's pruner stops the trial; ``Client.trial()``
    catches it and tells the trial ``pruned``."""


class Trial:
    """A trial handed out by ``Client.trial()``: its ``params``, ``report`` for intermediate
    values, ``tell`` for its outcome. Its lease is renewed in the background while it runs."""

    def __init__(
        self, client: Client, study: str, read: TrialRead, study_uid: str | None = None
    ) -> None:
        self.client = client
        self.study = study
        #: Which study of this name the trial belongs to; sent back with every request about
        #: it, so that a study deleted and created again does not take this trial's results.
        self.study_uid = study_uid
        self.number = read.number
        self.params: dict[str, Any] = read.params
        self.told: TrialRead | None = None
        #: Set when the server says the trial is no longer running (its lease expired).
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._lease_expires_at = read.lease_expires_at

    def report(self, step: int, value: float) -> None:
        """Report an intermediate value; raises ``TrialPruned`` when the trial should stop."""
        if self.client.report(self.study, self.number, step, value, study_uid=self.study_uid):
            raise TrialPruned(f"trial {self.number} pruned at step {step}")

    def tell(self, value: float | Sequence[float], **fields: Any) -> TrialRead:
        """Complete the trial with one objective value (a float, an int, a NumPy scalar), or a
        sequence of them for several objectives."""
        fields["study_uid"] = self.study_uid
        if isinstance(value, Sequence):
            self.told = self.client.tell(self.study, self.number, values=list(value), **fields)
        else:  # a float, an int or a NumPy scalar (also a numbers.Real)
            self.told = self.client.tell(self.study, self.number, float(value), **fields)
        return self.told

    def fail(self, **fields: Any) -> TrialRead:
        """Record that the trial failed."""
        self.told = self.client.tell(
            self.study, self.number, state="fail", study_uid=self.study_uid, **fields
        )
        return self.told

    def _heartbeat_every(self) -> float:
        if self._lease_expires_at is None:
            return 60.0
        remaining = (self._lease_expires_at - datetime.now(timezone.utc)).total_seconds()
        return max(0.2, remaining / 3)

    def _keep_alive(self) -> None:
        """Heartbeat at a third of the lease until stopped or told the trial is gone."""
        while not self._stop.wait(self._heartbeat_every()):
            try:
                self._lease_expires_at = self.client.heartbeat(
                    self.study, self.number, study_uid=self.study_uid
                )
            except (TrialNotRunningError, NotFoundError):  # reaped, or its study deleted
                self.lost.set()
                return
            except OptunapiError:
                continue  # unreachable or busy for now: the next beat tries again


class Client:
    """Talks to an optunapi server.

    Example::

        with Client("http://127.0.0.1:8000") as client:
            client.create_study("demo", {"x": {"type": "float", "low": -10, "high": 10}})
            client.optimize("demo", lambda p: (p["x"] - 2) ** 2, n_trials=20)
            print(client.best("demo")[0].params)

    Errors come back as the exception the server raised (``StudyNotFoundError``,
    ``TrialFinishedError``...). Connection failures and 503 answers are retried with backoff;
    retrying a tell is safe because an identical tell is idempotent.

    Args:
        url: The server's base URL.
        timeout: Seconds to wait for one answer.
        retries: How often a failed connection or a 503 is retried before giving up.
        token: The server's bearer token, if it needs one (default: ``OPTUNAPI_TOKEN``).
        verify: TLS verification: True (system CAs), False, or a CA bundle's path.
        transport: An httpx transport, e.g. to talk to an app in process.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        timeout: float = 30.0,
        retries: int = 6,
        token: str | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        token = token if token is not None else os.environ.get("OPTUNAPI_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        tls: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, headers=headers,
            verify=tls,
        )  # fmt: skip

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    # -- studies ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The server's ``/v1/health``."""
        return self._request("GET", "/v1/health").json()  # type: ignore[no-any-return]

    def create_study(
        self, name: str, space: Mapping[str, Any] | Path | str, **options: Any
    ) -> StudyRead:
        """Create a study, or load it if it exists with the same definition.

        Args:
            name: The study's name.
            space: The space in either form (a ``params`` mapping, or ``{study:, params:}``),
                or the path of a space file.
            **options: ``directions``, ``metric_names``, ``sampler``, ``pruner``,
                ``lease_seconds``, ``max_retries``; they win over the space's ``study:`` part.
        """
        data = space
        if isinstance(space, (str, Path)):
            data = load_yaml(Path(space).read_text(encoding="utf-8"))
        params, study_options = split_form(data)
        body = {"name": name, "space": params, **study_options, **options}
        return StudyRead.model_validate(self._request("POST", "/v1/studies", json=body).json())

    def study(self, name: str) -> StudyRead:
        """A study: definition, counts per state, best trial(s)."""
        return StudyRead.model_validate(self._request("GET", study_path(name)).json())

    def studies(self) -> list[StudySummary]:
        """Every study on the server."""
        return StudyList.model_validate(self._request("GET", "/v1/studies").json()).studies

    def delete_study(self, name: str) -> None:
        """Delete a study and its trials."""
        self._request("DELETE", study_path(name))

    # -- trials ----------------------------------------------------------------------------

    def ask(self, study: str, worker: str | None = None) -> TrialRead:
        """Start a trial and return it with its params."""
        return self._ask(study, worker)[0]

    def _ask(self, study: str, worker: str | None) -> tuple[TrialRead, str | None]:
        """A new trial, and the uid of the study it belongs to (see ``Trial.study_uid``)."""
        body = {} if worker is None else {"worker": worker}
        response = self._request(
            "POST", trials_path(study), json=body, idempotent=worker is not None
        )
        trial = TrialRead.model_validate(response.json())
        twin = response.headers.get(SPACE_EXHAUSTED_HEADER)
        if twin is not None:
            _log.warning(
                "study %s: every point of its space is in flight; trial %d repeats the params "
                "of trial %s",
                study,
                trial.number,
                twin,
            )
        return trial, response.headers.get(STUDY_UID_HEADER)

    def tell(
        self,
        study: str,
        number: int,
        value: float | None = None,
        *,
        values: Sequence[float] | None = None,
        state: str = "complete",
        constraints: Sequence[float] | None = None,
        user_attrs: Mapping[str, Any] | None = None,
        study_uid: str | None = None,
    ) -> TrialRead:
        """Finish trial ``number`` of ``study``: ``complete`` with its value(s), ``fail`` or
        ``pruned``. ``study_uid``, as the ask answered it, makes the tell a 404 if the study
        was deleted since (``Trial`` sends it)."""
        body: dict[str, Any] = {"state": state}
        for key, given in (
            ("value", None if value is None else _finite(value, "value")),
            ("values", None if values is None else [_finite(v, "values") for v in values]),
            (
                "constraints",
                None if constraints is None else [_finite(c, "constraints") for c in constraints],
            ),
            ("user_attrs", None if user_attrs is None else dict(user_attrs)),
        ):
            if given is not None:
                body[key] = given
        response = self._request(
            "POST", f"{trial_path(study, number)}/tell", json=body, headers=_uid(study_uid)
        )
        return TrialRead.model_validate(response.json())

    def heartbeat(self, study: str, number: int, *, study_uid: str | None = None) -> datetime:
        """Renew a trial's lease; returns when it now expires.

        Raises:
            TrialNotRunningError: the trial is finished or was reaped: stop working on it.
        """
        response = self._request(
            "POST", f"{trial_path(study, number)}/heartbeat", headers=_uid(study_uid)
        )
        return Lease.model_validate(response.json()).lease_expires_at

    def report(
        self, study: str, number: int, step: int, value: float, *, study_uid: str | None = None
    ) -> bool:
        """Report an intermediate value (renewing the lease); returns whether to prune."""
        body = {"step": step, "value": _finite(value, "value")}
        response = self._request(
            "POST", f"{trial_path(study, number)}/report", json=body, headers=_uid(study_uid)
        )
        advice = PruneAdvice.model_validate(response.json())
        if not advice.stored:
            _log.warning(
                "study %s, trial %d: step %d already had a value; this one was not stored",
                study,
                number,
                step,
            )
        return advice.should_prune

    def trial_info(self, study: str, number: int) -> TrialRead:
        """One trial."""
        return TrialRead.model_validate(self._request("GET", trial_path(study, number)).json())

    def trials(self, study: str, state: str | None = None) -> list[TrialRead]:
        """All trials of a study (optionally in one state), by number."""
        out: list[TrialRead] = []
        while True:
            params: dict[str, Any] = {"offset": len(out), "limit": _PAGE}
            if state is not None:
                params["state"] = state
            page = TrialList.model_validate(
                self._request("GET", trials_path(study), params=params).json()
            )
            out += page.trials
            if not page.trials or len(out) >= page.total:
                return out

    def best(self, study: str) -> list[TrialRead]:
        """The best trial, or the Pareto front; empty while no trial is complete."""
        path = f"{study_path(study)}/best"
        return BestTrials.model_validate(self._request("GET", path).json()).trials

    def enqueue(
        self,
        study: str,
        params: Mapping[str, Any],
        *,
        skip_if_exists: bool = False,
        value: float | None = None,
        values: Sequence[float] | None = None,
    ) -> int:
        """Queue params for the next ask (a warm start); with ``value`` or ``values``, add them
        as a finished trial. Returns the trial's number."""
        body: dict[str, Any] = {"params": dict(params), "skip_if_exists": skip_if_exists}
        if value is not None:
            body["value"] = _finite(value, "value")
        if values is not None:
            body["values"] = [_finite(v, "values") for v in values]
        # Retried after a lost answer only when a second copy cannot result.
        response = self._request(
            "POST", f"{study_path(study)}/enqueue", json=body, idempotent=skip_if_exists
        )
        return int(response.json()["number"])

    def export(self, study: str, format: str = "csv") -> str:
        """Every trial of a study, as CSV or JSON text."""
        path = f"{study_path(study)}/export"
        return self._request("GET", path, params={"format": format}).text

    @contextmanager
    def trial(self, study: str, worker: str | None = None) -> Iterator[Trial]:
        """Ask a trial for the block; tell ``fail`` if the block raises or tells nothing.

        Example::

            with client.trial("mnist") as trial:
                trial.tell(train(**trial.params))
        """
        handle = Trial(self, study, *self._ask(study, worker))
        beating = threading.Thread(target=handle._keep_alive, daemon=True)
        beating.start()
        try:
            yield handle
        except TrialPruned:
            if handle.told is None:
                handle.told = self.tell(
                    study, handle.number, state="pruned", study_uid=handle.study_uid
                )
        except BaseException as exc:
            if handle.told is None:
                handle.fail(user_attrs={"error": f"{type(exc).__name__}: {exc}"[:1000]})
            raise
        finally:
            handle._stop.set()
            beating.join()
        if handle.told is None:
            handle.fail(user_attrs={"error": "the trial's block ended without a tell"})

    def optimize(
        self,
        study: str,
        objective: Objective,
        n_trials: int,
        *,
        worker: str | None = None,
        catch: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Run ``n_trials`` trials of ``objective(params) -> value(s)`` through the server.

        An exception in ``objective`` fails its trial; it stops the loop unless listed in
        ``catch``.
        """
        for _ in range(n_trials):
            try:
                with self.trial(study, worker) as handle:
                    handle.tell(objective(handle.params))
            except catch:
                continue

    # -- transport -------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        # A POST that creates (an anonymous ask) is retried only when it surely did not arrive.
        if idempotent is None:
            idempotent = method != "POST" or not path.endswith("/trials")
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            response: httpx.Response | None = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.ConnectError as exc:
                if last:
                    raise ServerUnreachableError(f"Cannot reach {self.url}: {exc}") from None
            except httpx.TransportError as exc:
                if last or not idempotent:
                    raise ServerUnreachableError(
                        f"No answer from {self.url} to {method} {path}: {exc}"
                    ) from None
            else:
                if response.is_success:
                    return response
                error = OptunapiError.from_problem(_json(response), response.status_code)
                if not isinstance(error, StorageBusyError) or last:
                    raise error
            time.sleep(_backoff(attempt, response))
        raise AssertionError("unreachable")


def _finite(number: Any, field: str) -> float:
    """A value as a JSON number, refused here as the server would refuse it."""
    value = float(number)
    if not math.isfinite(value):
        raise InvalidValueError(
            f"{field} must be finite, not {value}: tell state 'fail' for a diverged run."
        )
    return value


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text[:500] or response.reason_phrase}


def _backoff(attempt: int, response: httpx.Response | None) -> float:
    retry_after = "" if response is None else str(response.headers.get("Retry-After", ""))
    if retry_after.isdigit():
        return float(retry_after)
    return min(10.0, 0.1 * 2.0**attempt) * (0.5 + random.random() / 2)


def _uid(study_uid: str | None) -> dict[str, str]:
    return {} if study_uid is None else {STUDY_UID_HEADER: study_uid}
