"""``optunapi worker``: run any program once per trial, in any language.

For each trial the program gets the params

* as environment variables, one per param: ``lr`` as ``LR`` (upper case, other characters ``_``);
* as JSON in ``OPTUNAPI_PARAMS``, and in the file named by ``OPTUNAPI_PARAMS_FILE``;
* optionally as arguments, ``--lr 0.01`` (``--args``).

It reports its objective by writing it to the file named by ``OPTUNAPI_RESULT_FILE``, or as its
last line of output: one number, or several separated by spaces or commas. A line
``optunapi:report STEP VALUE`` reports an intermediate value; when the study's pruner says stop,
the program is terminated and the trial told ``pruned``. A non-zero exit is told as ``fail``,
with the exit code and the tail of stderr kept in the trial's user attrs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from optunapi.client import Client, Trial, TrialPruned
from optunapi.errors import (
    InvalidValueError,
    OptunapiError,
    TrialFinishedError,
    TrialNotRunningError,
)

_PROTECTED = {
    "PATH", "HOME", "USER", "SHELL", "PWD", "LANG", "TMPDIR", "TERM", "PYTHONPATH",
    "PYTHONHOME", "LD_LIBRARY_PATH", "LD_PRELOAD", "VIRTUAL_ENV",
}  # fmt: skip
REPORT_LINE = re.compile(r"^optunapi:report\s+(\d+)\s+(\S+)\s*$")
_STDERR_TAIL_LINES = 20
_GRACE_SECONDS = 5.0


def env_name(param: str) -> str:
    """The environment variable of a param: ``lr`` -> ``LR``, ``drop-out`` -> ``DROP_OUT``."""
    return re.sub(r"[^A-Z0-9_]", "_", param.upper())


def as_text(value: Any) -> str:
    """A param value as text: strings as they are, anything else as JSON (``true``, ``0.1``)."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_objective(line: str) -> list[float] | None:
    """One number, or several separated by spaces or commas; None if the line is not that."""
    parts = [p for p in re.split(r"[\s,]+", line.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    return values or None


def param_env(params: dict[str, Any]) -> dict[str, str]:
    """One variable per param, leaving out names that would clobber the program's own
    environment (``path`` is not ``PATH``) or that no environment can hold; every param is in
    ``OPTUNAPI_PARAMS`` anyway."""
    env = {}
    for name, value in params.items():
        key = env_name(name)
        if "\0" in name or key in _PROTECTED or key.startswith("OPTUNAPI_"):
            continue
        env[key] = as_text(value)
    return env


@dataclass
class Outcome:
    """How one run of the program ended."""

    state: str  # complete | fail | pruned | lost
    values: list[float] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


class Worker:
    """Runs ``command`` once per trial of ``study`` until ``n_trials`` ran or it is stopped.

    Args:
        client: The client of the server.
        study: The study's name.
        command: The program and its arguments.
        worker_id: This worker's name; a restarted worker with the same name resumes its trial.
        pass_args: Also pass each param as ``--name value`` arguments.
    """

    def __init__(
        self,
        client: Client,
        study: str,
        command: Sequence[str],
        worker_id: str | None = None,
        pass_args: bool = False,
        log: IO[str] = sys.stderr,
    ) -> None:
        self.client = client
        self.study = study
        self.command = list(command)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.pass_args = pass_args
        self.log = log
        self.stopping = threading.Event()
        #: Why the worker cannot go on (its command cannot be started), if it cannot.
        self.broken: str | None = None
        self._process: subprocess.Popen[str] | None = None

    def run(self, n_trials: int | None) -> int:
        """Run trials; returns how many ran."""
        ran = 0
        while (n_trials is None or ran < n_trials) and not self.stopping.is_set():
            try:
                with self.client.trial(self.study, worker=self.worker_id) as trial:
                    ran += 1
                    outcome = self.run_trial(trial)
                    self._tell(trial, outcome)
            except (TrialNotRunningError, TrialFinishedError) as exc:
                self._say(f"trial {trial.number}: {exc.detail}")
        return ran

    def stop(self) -> None:
        """Stop after the current trial, terminating the program."""
        self.stopping.set()
        self._terminate()

    def run_trial(self, trial: Trial) -> Outcome:
        """Run the program for one trial and read its outcome."""
        with tempfile.TemporaryDirectory(prefix="optunapi-") as tmp:
            params_file = Path(tmp, "params.json")
            params_file.write_text(json.dumps(trial.params))
            result_file = Path(tmp, "result")
            env = {
                **os.environ,
                **param_env(trial.params),
                "OPTUNAPI_PARAMS": json.dumps(trial.params),
                "OPTUNAPI_PARAMS_FILE": str(params_file),
                "OPTUNAPI_RESULT_FILE": str(result_file),
                "OPTUNAPI_STUDY": self.study,
                "OPTUNAPI_TRIAL_NUMBER": str(trial.number),
                "OPTUNAPI_SERVER": self.client.url,
            }
            args = [*self.command]
            if self.pass_args:
                for k, v in trial.params.items():
                    args += [f"--{k}", as_text(v)]
            try:
                # Its own process group, so that stopping it stops whatever it started too.
                self._process = subprocess.Popen(
                    args,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="backslashreplace",  # a program may print bytes of any encoding
                    start_new_session=True,
                )
            except OSError as exc:
                self.broken = f"cannot start {args[0]}: {exc}"
                self.stopping.set()  # it will not start for the next trial either
                return Outcome("fail", attrs={"error": self.broken})
            return self._watch(trial, self._process, result_file)

    def _watch(self, trial: Trial, process: subprocess.Popen[str], result_file: Path) -> Outcome:
        assert process.stdout is not None and process.stderr is not None
        stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        relay = threading.Thread(target=_relay_stderr, args=(process.stderr, stderr_tail))
        relay.start()
        # The trial's lease is renewed in the background; if the server takes it away anyway,
        # the program is stopped.
        done = threading.Event()
        guard = threading.Thread(target=self._stop_if_lost, args=(trial, done))
        guard.start()
        last_line, pruned = "", False
        try:
            for line in process.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                report = REPORT_LINE.match(line)
                if report and not pruned:
                    pruned = self._report(trial, int(report[1]), report[2])
                    if pruned:
                        self._terminate()
                elif line.strip():
                    last_line = line
            code = process.wait()
        finally:
            done.set()
            guard.join()
            relay.join()
        if trial.lost.is_set():
            return Outcome("lost")
        if pruned:
            return Outcome("pruned")
        if code != 0:
            tail = "".join(stderr_tail)[-4000:]
            return Outcome("fail", attrs={"exit_code": code, "stderr_tail": tail})
        text = result_file.read_text().strip() if result_file.exists() else ""
        values = parse_objective(text or last_line)
        if values is None:
            where = "the result file" if text else "its last line of output"
            shown = (text or last_line).strip()[:200]
            return Outcome("fail", attrs={"error": f"no objective in {where}: {shown!r}"})
        return Outcome("complete", values=values)

    def _report(self, trial: Trial, step: int, raw: str) -> bool:
        try:
            value = float(raw)
        except ValueError:
            return False  # not a number: an ordinary line of output
        try:
            trial.report(step, value)
        except TrialPruned:
            return True
        except OptunapiError as exc:
            self._say(f"report of trial {trial.number} failed: {exc.detail}")
        return False

    def _stop_if_lost(self, trial: Trial, done: threading.Event) -> None:
        while not done.wait(0.1):
            if trial.lost.is_set():
                self._say(f"trial {trial.number} was taken away (its lease expired); stopping it")
                self._terminate()
                return

    def _terminate(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _tell(self, trial: Trial, outcome: Outcome) -> None:
        if outcome.state == "pruned":
            self._say(f"trial {trial.number} pruned")
            raise TrialPruned()  # the trial context tells it
        if outcome.state == "lost":
            trial.fail()  # already failed by the server: this only settles the context
            return
        if outcome.state == "complete" and not self.stopping.is_set():
            assert outcome.values is not None
            try:
                told = trial.tell(outcome.values)
            except InvalidValueError as exc:  # NaN, infinity, or not one value per objective
                outcome = Outcome(
                    "fail",
                    attrs={
                        "error": f"the objective {outcome.values} cannot be stored: {exc.detail}"
                    },
                )
            else:
                shown = ", ".join(f"{v:.6g}" for v in told.values or [])
                self._say(f"trial {trial.number} complete: {shown}")
                return
        attrs = outcome.attrs or {"error": "the worker was stopped"}
        trial.fail(user_attrs=attrs)
        self._say(f"trial {trial.number} failed: {attrs}")

    def _say(self, message: str) -> None:
        print(f"optunapi worker: {message}", file=self.log, flush=True)


def _relay_stderr(stream: IO[str], tail: deque[str]) -> None:
    for line in stream:
        sys.stderr.write(line)
        tail.append(line)


def main(args: Any) -> int:
    """``optunapi worker``: returns 0 when it ran what it was asked to."""
    with Client(args.server) as client:
        worker = Worker(client, args.study, args.command, args.worker_id, args.args)
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        # The first ask checks the study and the server before any trial runs; it also creates
        # a study that a space file in the server's config directory defines.
        try:
            ran = worker.run(args.n_trials)
        except KeyboardInterrupt:
            worker.stop()
            return 130
    print(f"optunapi worker: {ran} trial(s) run", file=sys.stderr)
    if worker.broken:
        print(f"optunapi worker: {worker.broken}", file=sys.stderr)
        return 1
    return 0
