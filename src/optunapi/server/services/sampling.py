"""From a study definition to Optuna objects: samplers, pruners, distributions, suggestions."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, Trial, TrialState

from optunapi.errors import InvalidSpaceError
from optunapi.server.storage import queued_params
from optunapi.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    SearchSpace,
    StudyDefinition,
)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class _RandomSampler(optuna.samplers.RandomSampler):
    """Optuna's random sampler, faster: Optuna builds a search-space transform and draws from
    NumPy once per value, which was half the time of an ask. Here the transforms are built once,
    and the unconditional parameters given to ``draw_together`` are drawn in one call, as
    relative parameters. Each value is uniform over its distribution either way."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._together: dict[str, BaseDistribution] = {}
        self._transform: _SearchSpaceTransform | None = None
        self._transforms: dict[str, tuple[BaseDistribution, _SearchSpaceTransform]] = {}

    def draw_together(self, space: dict[str, BaseDistribution]) -> None:
        """Draw these parameters (every ask has them all) in one call at the start of an ask."""
        self._together = space
        self._transform = _SearchSpaceTransform(space) if space else None

    @property
    def together(self) -> dict[str, BaseDistribution]:
        """The parameters drawn in one call (see ``draw_together``)."""
        return self._together

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._together

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self._transform is None or not search_space:
            return {}
        return self._draw(self._transform)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        cached = self._transforms.get(param_name)
        if cached is None or cached[0] != param_distribution:
            cached = (param_distribution, _SearchSpaceTransform({param_name: param_distribution}))
            self._transforms[param_name] = cached
        return self._draw(cached[1])[param_name]

    def _draw(self, transform: _SearchSpaceTransform) -> dict[str, Any]:
        bounds = transform.bounds
        return transform.untransform(self._rng.rng.uniform(bounds[:, 0], bounds[:, 1]))


# Sampler type -> (factory, modules it needs beyond optuna, the pip package that provides them).
_SAMPLERS: dict[str, tuple[Callable[..., BaseSampler], tuple[str, ...], str]] = {
    "tpe": (optuna.samplers.TPESampler, (), ""),
    "random": (_RandomSampler, (), ""),
    "cmaes": (optuna.samplers.CmaEsSampler, ("cmaes",), "cmaes"),
    "gp": (optuna.samplers.GPSampler, ("torch", "scipy"), "torch scipy"),
    "qmc": (optuna.samplers.QMCSampler, ("scipy",), "scipy"),
    "nsga2": (optuna.samplers.NSGAIISampler, (), ""),
    "nsga3": (optuna.samplers.NSGAIIISampler, (), ""),
    "grid": (optuna.samplers.GridSampler, (), ""),
    "bruteforce": (optuna.samplers.BruteForceSampler, (), ""),
}
# Options that take Python callables or objects: never from a study definition.
_OBJECT_OPTIONS = {
    "gamma", "weights", "constraints_func", "independent_sampler", "crossover",
    "restart_strategy", "source_trials", "search_space", "callbacks",
}  # fmt: skip
MAX_GRID = 10**6
_MAX_REDRAW_VALUES = 10_000
# Past TPE's and CMA-ES's default startup trials, so that their models run once.
_REHEARSAL_TRIALS = 12
_PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "nop": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "patient": optuna.pruners.PatientPruner,
    "wilcoxon": optuna.pruners.WilcoxonPruner,
}


def served(sampler: BaseSampler) -> ServedSampler:
    """The sampler of a study loaded by the server (``build_sampler`` made it)."""
    assert isinstance(sampler, ServedSampler)
    return sampler


# The random sampler reads neither the study nor the trial: the quick path draws without one.
_NO_TRIAL: Any = None


def build_sampler(definition: StudyDefinition, seed_offset: int = 0) -> BaseSampler:
    """The sampler a definition asks for, wrapped so stepped floats come out as short decimals.

    ``seed_offset`` (the number of trials already in the study when the process loads it) keeps
    a seeded sampler from replaying the samples it gave before a restart.

    Raises:
        InvalidSpaceError: unknown options, a missing optional dependency, or a grid over a
            continuous parameter.
    """
    options = dict(definition.sampler)
    kind = options.pop("type")
    factory, modules, package = _SAMPLERS[kind]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise _invalid("sampler", f"{kind} needs {', '.join(missing)}: pip install {package}")
    if options.get("seed") is not None:
        if isinstance(options["seed"], bool) or not isinstance(options["seed"], int):
            raise _invalid("sampler", f"seed must be a whole number, not {options['seed']!r}")
        options["seed"] = (options["seed"] + seed_offset) % 2**32
    if kind == "tpe":
        # Over HTTP, trials are in flight while others are asked: constant liar counts them as
        # pending, so parallel workers are not sent to the same region.
        options.setdefault("constant_liar", True)
    if _OBJECT_OPTIONS & set(options):
        named = ", ".join(sorted(_OBJECT_OPTIONS & set(options)))
        raise _invalid(
            "sampler",
            f"{named}: Optuna takes a Python object here (a function, a sampler, a class), "
            "which a study file cannot hold",
        )
    if kind in ("grid", "bruteforce"):
        grid = _grid(definition.space, kind)
        if kind == "grid":
            options["search_space"] = grid
    try:
        inner = factory(**options)
    except (TypeError, ValueError) as exc:
        raise _invalid("sampler", f"{kind} does not accept these options: {exc}") from None
    # Grid and brute force enumerate the space themselves: their points are not redrawn.
    distinct = kind not in ("grid", "bruteforce")
    if isinstance(inner, _RandomSampler) and not _finite_values(definition.space):
        # (Points of a small discrete space are redrawn one parameter at a time, below.)
        params = definition.space.params
        inner.draw_together({p.name: distribution(p) for p in params if not p.when})
    return ServedSampler(inner, definition.space, options.get("seed"), distinct)


def build_pruner(spec: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    """The pruner a definition's ``pruner`` asks for (none: never prune).

    ``patient`` wraps another pruner, given as ``wrapped_pruner: {type: median, ...}``.
    """
    if spec is None:
        return optuna.pruners.NopPruner()
    options = dict(spec)
    kind = options.pop("type")
    if kind not in _PRUNERS:
        raise _invalid("pruner", f"{kind!r} is not one of {', '.join(_PRUNERS)}")
    try:
        if kind == "patient":
            wrapped = options.pop("wrapped_pruner", None)
            inner = build_pruner(wrapped) if isinstance(wrapped, dict) else None
            return optuna.pruners.PatientPruner(inner, **options)
        return _PRUNERS[kind](**options)
    except (TypeError, ValueError) as exc:
        raise _invalid("pruner", f"{kind} does not accept these options: {exc}") from None


def distribution(param: Param) -> BaseDistribution:
    """The Optuna distribution of one parameter."""
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    return CategoricalDistribution(param.encoded_choices())


def rehearse(definition: StudyDefinition) -> None:
    """Run a short search in memory with the definition's sampler and pruner.

    Some options fail only once used (a TPE option at its first model-based sample, a pruner
    option at its first report); rehearsed at creation, they are a 422 then, not a 500 later.
    """
    study = optuna.create_study(
        directions=[StudyDirection[d.upper()] for d in definition.directions],
        sampler=build_sampler(definition),
        pruner=build_pruner(definition.pruner),
    )
    rng = random.Random(0)
    try:
        for _ in range(_REHEARSAL_TRIALS):
            trial = study.ask()
            suggest_all(trial, definition.space)
            if not definition.is_multi_objective:
                for step in range(3):
                    trial.report(rng.random(), step)
                    trial.should_prune()
            study.tell(trial, [rng.random() for _ in definition.directions])
    except Exception as exc:
        raise _invalid(
            "sampler",
            f"the sampler or pruner fails with these options: {type(exc).__name__}: {exc}",
        ) from None


def suggest_all(trial: Trial, space: SearchSpace) -> None:
    """Sample every active parameter of ``space`` into ``trial``, in order (define-by-run, so
    conditional parameters follow the values of the ones they depend on)."""
    chosen: dict[str, Any] = {}
    for param in space.params:
        if not space.active(param, chosen):
            continue
        value: Any
        if isinstance(param, FloatParam):
            value = trial.suggest_float(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        elif isinstance(param, IntParam):
            value = trial.suggest_int(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        else:
            value = trial.suggest_categorical(param.name, param.encoded_choices())
        chosen[param.name] = decode(param, value)


def encode(param: Param, value: Any) -> Any:
    """A client's parameter value as the sampler and the storage hold it."""
    if isinstance(param, CategoricalParam):
        return param.encode(value)
    if isinstance(param, IntParam):
        return int(value)
    return float(value)


def decode(param: Param, value: Any) -> Any:
    """A stored parameter value as the client sees it (the exact choice, the exact type)."""
    if isinstance(param, CategoricalParam):
        return param.decode(value)
    if isinstance(param, IntParam):
        return int(value)
    return float(value)


def _grid(space: SearchSpace, kind: str) -> dict[str, list[Any]]:
    """Every value of every parameter, for the samplers that enumerate the space."""
    sizes = [_size(p, kind) for p in space.params]
    if math.prod(sizes) > MAX_GRID:
        raise _invalid(
            "sampler",
            f"{kind} would enumerate {math.prod(sizes)} points, more than "
            f"{MAX_GRID}; use larger steps or another sampler",
        )
    grid: dict[str, list[Any]] = {}
    for p in space.params:
        if isinstance(p, CategoricalParam):
            grid[p.name] = list(p.encoded_choices())
        elif isinstance(p, IntParam):
            grid[p.name] = list(range(p.low, p.high + 1, p.step))
        else:
            assert p.step is not None
            n = round((p.high - p.low) / p.step)
            grid[p.name] = [p.snap(p.low + k * p.step) for k in range(n + 1)]
    return grid


def _size(p: Param, kind: str) -> int:
    if isinstance(p, CategoricalParam):
        return len(p.choices)
    if isinstance(p, IntParam):
        return (p.high - p.low) // p.step + 1
    if p.step is None:
        raise _invalid(
            "sampler",
            f"{kind} needs every parameter discrete; {p.name} is a "
            "continuous float (give it a step)",
        )
    return round((p.high - p.low) / p.step) + 1


def point_count(space: SearchSpace) -> int | None:
    """How many points the space has, when it is discrete and has no condition (else None)."""
    continuous = (p for p in space.params if isinstance(p, FloatParam) and p.step is None)
    if not space.params or any(p.when for p in space.params) or any(continuous):
        return None  # (checked first: every ask comes here, and an exception costs more)
    return math.prod(_size(p, "counting points") for p in space.params)


def _finite_values(space: SearchSpace) -> dict[str, list[Any]]:
    """Every parameter's values, as the sampler holds them, when every parameter is discrete,
    none is conditional and none has too many values (else empty: nothing is redrawn)."""
    if not space.params or any(p.when for p in space.params):
        return {}
    try:
        sizes = [_size(p, "distinct sampling") for p in space.params]
    except InvalidSpaceError:
        return {}  # a continuous float: points hardly ever repeat
    if max(sizes) > _MAX_REDRAW_VALUES or math.prod(sizes) > MAX_GRID:
        return {}
    return _grid(space, "distinct sampling")


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _invalid(part: str, message: str) -> InvalidSpaceError:
    return InvalidSpaceError(
        f"The study definition is invalid: {message}.",
        errors=[{"param": part, "message": message}],
    )


class ServedSampler(BaseSampler):
    """Delegates to a sampler, with two corrections for serving many workers.

    * Stepped floats are put on their decimal grid. Optuna computes ``low + k * step`` in binary
      floating point, 0.30000000000000004 for 0.3; the nearest short decimal is returned
      instead, so the value the client receives is the value stored and the value listed.
    * In a small discrete space, parallel asks easily draw the same point. When the space has
      no condition and every parameter is discrete, a value that leaves no point free of the
      other running and queued trials is redrawn among the values that do, so that the trials
      in flight hold distinct points while the space has free ones.
    """

    def __init__(
        self, inner: BaseSampler, space: SearchSpace, seed: int | None, distinct: bool = True
    ) -> None:
        self._inner = inner
        self._stepped = {
            p.name: p for p in space.params if isinstance(p, FloatParam) and p.step is not None
        }
        self._order = [p.name for p in space.params]
        self._distributions = {p.name: distribution(p) for p in space.params}
        self._values = _finite_values(space) if distinct else {}
        self._rng = random.Random(seed)
        self._taken: tuple[int, list[list[str]]] | None = None  # (trial number, points)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        sampled = self._inner.sample_relative(study, trial, search_space)
        return {k: self._snap(k, v) for k, v in sampled.items()}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        value = self._snap(
            param_name,
            self._inner.sample_independent(study, trial, param_name, param_distribution),
        )
        if self._values and param_name in self._values:
            value = self._distinct(study, trial, param_name, value)
        return value

    def _distinct(self, study: Study, trial: FrozenTrial, name: str, value: Any) -> Any:
        """``value``, or another value of ``name`` that still leaves this trial a point that no
        other trial in flight holds (when there is such a value)."""
        i = self._order.index(name)
        prefix = [_key(trial.params.get(n)) for n in self._order[:i]]
        taken = self._points_in_flight(study, trial)
        room = math.prod(len(self._values[n]) for n in self._order[i + 1 :])

        def has_room(v: Any) -> bool:
            head = [*prefix, _key(v)]
            return sum(1 for point in taken if point[: i + 1] == head) < room

        if has_room(value):
            return value
        free = [v for v in self._values[name] if has_room(v)]
        return self._rng.choice(free) if free else value  # every point in flight: exhausted

    def _points_in_flight(self, study: Study, trial: FrozenTrial) -> list[list[str]]:
        """The distinct points the other trials in flight hold (two trials on one point hold
        one: counted twice, they would make a row look full that has a free point)."""
        if self._taken is None or self._taken[0] != trial.number:  # once per trial
            points: dict[tuple[str, ...], None] = {}
            for other in study.get_trials(
                deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)
            ):
                params = queued_params(other)
                if other.number != trial.number and all(n in params for n in self._order):
                    points[tuple(_key(params[n]) for n in self._order)] = None
            self._taken = (trial.number, [list(point) for point in points])
        return self._taken[1]

    def draw_all(
        self, study: Study, space: SearchSpace
    ) -> tuple[dict[str, Any], dict[str, BaseDistribution]] | None:
        """Every active parameter of a new trial, with its distribution, when the sampler is
        random and nothing is redrawn (the values of a trial depend on no other trial): the
        ask then writes the trial once, not once per parameter. None for other samplers."""
        inner = self._inner
        if not isinstance(inner, _RandomSampler) or self._values or not inner.together:
            return None
        drawn = inner.sample_relative(study, _NO_TRIAL, inner.together)
        params: dict[str, Any] = {}
        distributions: dict[str, BaseDistribution] = {}
        chosen: dict[str, Any] = {}
        for param in space.params:
            if not space.active(param, chosen):
                continue
            dist = self._distributions[param.name]
            value = (
                drawn[param.name]
                if param.name in drawn
                else inner.sample_independent(study, _NO_TRIAL, param.name, dist)
            )
            params[param.name] = value = self._snap(param.name, value)
            distributions[param.name] = dist
            chosen[param.name] = decode(param, value)
        return params, distributions

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._inner.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        try:
            self._inner.after_trial(study, trial, state, values)
        except RuntimeError as exc:
            # Grid and brute-force samplers call ``study.stop()`` once every point is
            # covered, which Optuna only allows inside ``optimize()``. Over HTTP there is
            # nothing to stop: later asks repeat points.
            if "Study.stop" not in str(exc):
                raise

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()

    def _snap(self, name: str, value: Any) -> Any:
        param = self._stepped.get(name)
        return value if param is None else param.snap(value)
