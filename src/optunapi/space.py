"""Search spaces and study definitions: YAML or dict in, validated model out.

Pure: no optuna, no server. Two input forms are accepted:

* the original optunapi form, one top-level key per parameter
  (``lr: {name: lr, type: float, low: 1e-5, high: 1e-2, step:, log: true}``);
* the richer form, ``study:`` (directions, metric names, sampler, pruner, leases) next to
  ``params:`` (parameters, optionally conditional with ``when:``).

Everything is validated before anything is returned: ``InvalidSpaceError.extra["errors"]`` names
every bad parameter, so a client fixes its file in one round.
"""

from __future__ import annotations

import contextlib
import decimal
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from optunapi.errors import InvalidSpaceError

DIRECTIONS = ("minimize", "maximize")
SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "nsga2", "nsga3", "grid", "bruteforce")
PRUNERS = (
    "nop",
    "median",
    "percentile",
    "successive_halving",
    "hyperband",
    "threshold",
    "patient",
    "wilcoxon",
)
DEFAULT_SAMPLER: dict[str, Any] = {"type": "tpe"}
MAX_SAFE_INT = 2**53  # beyond, JSON numbers (IEEE doubles) are not exact integers
MAX_GRID_POINTS = 10**15
MAX_CHOICES = 1000  # samplers slow down with the number of choices (TPE: ~1 s an ask at 5,000)
MAX_FLOAT = 1e100  # beyond, samplers' arithmetic on the range overflows
MAX_LEASE_SECONDS = 366 * 24 * 3600
MAX_RETRIES = 1000
_PARAM_KEYS = {"name", "type", "low", "high", "step", "log", "choices", "when"}
_STUDY_KEYS = {
    "direction",
    "directions",
    "metric_names",
    "sampler",
    "pruner",
    "lease_seconds",
    "max_retries",
}

Choice = Any  # None, bool, int, float, str, or lists / mappings of them
Problem = dict[str, str]


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Condition:
    """``when: {parent: value}``: active only when ``parent`` took one of ``values``."""

    parent: str
    values: tuple[Choice, ...]

    def holds(self, chosen: Mapping[str, Any]) -> bool:
        """Whether the parent is active and took one of the values (compared by JSON type)."""
        if self.parent not in chosen:
            return False
        key = _choice_key(chosen[self.parent])
        return any(_choice_key(v) == key for v in self.values)


@dataclass(frozen=True)
class FloatParam:
    """A float in ``[low, high]``, optionally on a ``step`` grid or a ``log`` scale."""

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False
    when: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as stored with the study."""
        return _with_when(
            {
                "type": "float",
                "low": self.low,
                "high": self.high,
                "step": self.step,
                "log": self.log,
            },
            self.when,
        )

    def snap(self, value: float) -> float:
        """``value`` on the step grid, as the nearest short decimal: 0.3, not
        0.30000000000000004."""
        if self.step is None:
            return float(value)
        low, step = _decimal(self.low), _decimal(self.step)
        k = round((Decimal(repr(float(value))) - low) / step)
        return float(min(max(low + k * step, _decimal(self.low)), _decimal(self.high)))

    def describe(self) -> str:
        """What values this parameter takes, in words."""
        grid = f" on a grid of step {self.step}" if self.step is not None else ""
        return f"it is a float from {self.low} to {self.high}{grid}"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` can be a sample of this parameter."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not (self.low <= value <= self.high):
            return False
        return self.step is None or self.snap(value) == float(value)


@dataclass(frozen=True)
class IntParam:
    """An integer in ``[low, high]``, optionally on a ``step`` grid or a ``log`` scale."""

    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False
    when: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as stored with the study."""
        return _with_when(
            {"type": "int", "low": self.low, "high": self.high, "step": self.step, "log": self.log},
            self.when,
        )

    def describe(self) -> str:
        """What values this parameter takes, in words."""
        step = f" in steps of {self.step}" if self.step != 1 else ""
        return f"it is an int from {self.low} to {self.high}{step}"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` can be a sample of this parameter."""
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return self.low <= value <= self.high and (value - self.low) % self.step == 0


@dataclass(frozen=True)
class CategoricalParam:
    """One of ``choices``, each returned with its exact JSON type (``1``, ``true`` and ``1.0``
    stay three different choices)."""

    name: str
    choices: tuple[Choice, ...]
    when: tuple[Condition, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as stored with the study."""
        return _with_when({"type": "categorical", "choices": list(self.choices)}, self.when)

    @property
    def plain(self) -> bool:
        """Whether the choices can be handed to a sampler as they are.

        True when all are strings, all ints, all floats or all bools: no two of them compare
        equal. Otherwise (``1`` beside ``true``, ``null``, lists) the sampler sees each choice's
        JSON text instead, which keeps every choice distinct.
        """
        kinds = {type(c) for c in self.choices}
        return len(kinds) == 1 and kinds <= {str, int, float, bool}

    def encoded_choices(self) -> tuple[Any, ...]:
        """The choices as the sampler sees them (see ``plain``)."""
        return tuple(self.encode(c) for c in self.choices)

    def encode(self, choice: Choice) -> Any:
        """The value a sampler uses for ``choice`` (see ``plain``)."""
        return choice if self.plain else _choice_key(choice)

    def decode(self, encoded: Any) -> Choice:
        """The choice a sampler's value stands for."""
        if self.plain:
            return encoded
        return json.loads(encoded)

    def describe(self) -> str:
        """What values this parameter takes, in words."""
        return f"it is one of {_json_text(list(self.choices))[:200]}"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices, with the same JSON type."""
        key = _choice_key(value)
        return any(_choice_key(c) == key for c in self.choices)


Param = FloatParam | IntParam | CategoricalParam


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters; a conditional parameter follows the one it depends on."""

    params: tuple[Param, ...]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The canonical ``params`` mapping."""
        return {p.name: p.to_dict() for p in self.params}

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def active(self, param: Param, chosen: Mapping[str, Any]) -> bool:
        """Whether ``param`` is sampled, given the values ``chosen`` so far."""
        return all(c.holds(chosen) for c in param.when)

    def check_params(self, params: Mapping[str, Any]) -> list[Problem]:
        """Every reason why ``params`` is not a point of this space (empty when it is)."""
        problems: list[Problem] = []
        chosen: dict[str, Any] = {}
        for p in self.params:
            if not self.active(p, chosen):
                if p.name in params:
                    problems.append(_problem(p.name, "is given but its condition does not hold"))
                continue
            if p.name not in params:
                problems.append(_problem(p.name, "is missing"))
            elif not p.contains(params[p.name]):
                problems.append(
                    _problem(p.name, f"cannot be {_json_text(params[p.name])}: {p.describe()}")
                )
            else:
                chosen[p.name] = params[p.name]
        known = {p.name for p in self.params}
        problems += [
            _problem(k, "is not a parameter of this space") for k in params if k not in known
        ]
        return problems


@dataclass(frozen=True)
class StudyDefinition:
    """Everything that defines a study: its space and how it is searched."""

    space: SearchSpace
    directions: tuple[str, ...] = ("minimize",)
    metric_names: tuple[str, ...] | None = None
    sampler: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SAMPLER))
    pruner: dict[str, Any] | None = None
    lease_seconds: float | None = None
    max_retries: int = 0

    def identity(self) -> dict[str, Any]:
        """The parts that must match for a second create to be the same study."""
        return {
            "space": self.space.to_dict(),
            "directions": list(self.directions),
            "metric_names": None if self.metric_names is None else list(self.metric_names),
            "sampler": self.sampler,
            "pruner": self.pruner,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole definition, JSON-serializable; ``from_dict`` reads it back."""
        return {
            **self.identity(),
            "lease_seconds": self.lease_seconds,
            "max_retries": self.max_retries,
        }

    def differences(self, other: StudyDefinition) -> list[str]:
        """The names of the identity parts in which ``other`` differs from this one."""
        mine, theirs = self.identity(), other.identity()
        return [k for k in mine if _canonical(mine[k]) != _canonical(theirs[k])]

    @property
    def is_multi_objective(self) -> bool:
        """Whether the study has more than one objective."""
        return len(self.directions) > 1


# ---------------------------------------------------------------------------------------------
# Parsing


class _Loader(yaml.SafeLoader):
    """YAML 1.1 loader that also reads ``1e-5`` as a float, as YAML 1.2 and JSON do, and
    refuses aliases (``*name``): nested, a few lines of them stand for billions of values."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a space file", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # YAML keeps the last of two equal keys (``1`` and ``true`` are equal too): a parameter
        # or option written twice would silently replace the first.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # unhashable: SafeLoader says so itself
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{key!r} is written twice in one mapping", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text (a space file) into plain Python data."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InvalidSpaceError(
            f"The space file is not valid YAML: {exc}",
            errors=[_problem("(file)", str(exc))],
        ) from None


def parse_space_file(text: str) -> StudyDefinition:
    """A study definition from the text of a space file, in either form."""
    return parse_definition(load_yaml(text))


def parse_definition(data: Any) -> StudyDefinition:
    """A study definition from parsed YAML / JSON: the original flat form or ``study:`` +
    ``params:``."""
    if not isinstance(data, Mapping) or not data:
        raise InvalidSpaceError(
            "A space is a mapping of parameter names to their definitions.",
            errors=[_problem("(space)", "is empty or not a mapping")],
        )
    if _is_rich_form(data):
        study = data.get("study") or {}
        if not isinstance(study, Mapping):
            raise InvalidSpaceError(
                "'study' must be a mapping.", errors=[_problem("study", "is not a mapping")]
            )
        return build_definition(data.get("params"), **{str(k): v for k, v in study.items()})
    return build_definition(data)


def build_definition(params: Any, **options: Any) -> StudyDefinition:
    """A study definition from a ``params`` mapping and the study options, all validated at once.

    Raises:
        InvalidSpaceError: with ``errors`` naming every bad parameter and option.
    """
    problems: list[Problem] = []
    space = _parse_params(params, problems)
    for key in options:
        if key not in _STUDY_KEYS:
            problems.append(
                _problem(key, f"is not a study option ({', '.join(sorted(_STUDY_KEYS))})")
            )
    directions = _parse_directions(options, problems)
    metric_names = _parse_metric_names(options.get("metric_names"), len(directions), problems)
    sampler = _parse_component("sampler", options.get("sampler"), SAMPLERS, problems)
    pruner = _parse_component("pruner", options.get("pruner"), PRUNERS, problems)
    lease_seconds = _parse_lease(options.get("lease_seconds"), problems)
    max_retries = _parse_retries(options.get("max_retries"), problems)
    if problems:
        raise InvalidSpaceError(_summary(problems), errors=problems)
    return StudyDefinition(
        space=space,
        directions=directions,
        metric_names=metric_names,
        sampler=sampler or dict(DEFAULT_SAMPLER),
        pruner=pruner,
        lease_seconds=lease_seconds,
        max_retries=max_retries,
    )


def definition_from_dict(data: Mapping[str, Any]) -> StudyDefinition:
    """Read back what ``StudyDefinition.to_dict`` wrote."""
    return build_definition(
        data["space"],
        directions=data["directions"],
        metric_names=data.get("metric_names"),
        sampler=data.get("sampler"),
        pruner=data.get("pruner"),
        lease_seconds=data.get("lease_seconds"),
        max_retries=data.get("max_retries"),
    )


def split_form(data: Any) -> tuple[Any, dict[str, Any]]:
    """``(params, study options)`` of a space in either form."""
    if isinstance(data, Mapping) and data and _is_rich_form(data):
        study = data.get("study") or {}
        return data.get("params"), dict(study) if isinstance(study, Mapping) else {}
    return data, {}


def _is_rich_form(data: Mapping[str, Any]) -> bool:
    keys = set(data)
    if not keys <= {"study", "params"}:
        return False
    # A seed-format file may name a parameter "params" or "study": that one has a "type".
    return not any(isinstance(data.get(k), Mapping) and "type" in data[k] for k in keys)


def _parse_params(data: Any, problems: list[Problem]) -> SearchSpace:
    if not isinstance(data, Mapping) or not data:
        problems.append(_problem("params", "must be a non-empty mapping of parameters"))
        return SearchSpace(())
    params: list[Param] = []
    for key, spec in data.items():
        param = _parse_param(str(key), spec, params, problems)
        if param is None:
            continue
        if any(p.name == param.name for p in params):
            problems.append(_problem(param.name, "is defined twice"))
            continue
        params.append(param)
    return SearchSpace(tuple(params))


def _parse_param(
    key: str, spec: Any, earlier: list[Param], problems: list[Problem]
) -> Param | None:
    if not isinstance(spec, Mapping):
        problems.append(_problem(key, "must be a mapping with at least 'type'"))
        return None
    name = spec.get("name")
    if name is None:
        name = key
    if not isinstance(name, str) or not name.strip():
        problems.append(_problem(key, "'name' must be a non-empty string"))
        return None
    before = len(problems)
    unknown = sorted(str(k) for k in spec if k not in _PARAM_KEYS)
    if unknown:
        problems.append(_problem(name, f"has unknown field(s) {', '.join(unknown)}"))
    kind = spec.get("type")
    when = _parse_when(name, spec.get("when"), earlier, problems)
    param: Param | None
    if kind == "categorical":
        param = _parse_categorical(name, spec, when, problems)
    elif kind in ("float", "int"):
        param = _parse_numeric(name, kind, spec, when, problems)
    else:
        problems.append(_problem(name, f"'type' must be categorical, int or float, not {kind!r}"))
        return None
    return param if len(problems) == before else None


def _parse_categorical(
    name: str, spec: Mapping[str, Any], when: tuple[Condition, ...], problems: list[Problem]
) -> CategoricalParam | None:
    for k in ("low", "high", "step"):
        if spec.get(k) is not None:
            problems.append(_problem(name, f"is categorical: '{k}' does not apply, use 'choices'"))
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        problems.append(_problem(name, "needs a non-empty list of 'choices'"))
        return None
    if len(choices) > MAX_CHOICES:
        problems.append(
            _problem(
                name,
                f"has {len(choices)} choices, more than {MAX_CHOICES}: use an int "
                "parameter to index them",
            )
        )
        return None
    seen: set[str] = set()
    for choice in choices:
        try:
            key = _choice_key(choice)
        except ValueError as exc:
            problems.append(_problem(name, f"choice {choice!r} {exc}"))
            continue
        if key in seen:
            problems.append(_problem(name, f"lists the choice {key} twice"))
        seen.add(key)
    return CategoricalParam(name=name, choices=tuple(choices), when=when)


def _parse_numeric(
    name: str,
    kind: str,
    spec: Mapping[str, Any],
    when: tuple[Condition, ...],
    problems: list[Problem],
) -> Param | None:
    if spec.get("choices") is not None:
        problems.append(_problem(name, f"is {kind}: 'choices' is only for categorical"))
    integral = kind == "int"
    low = _number(name, "low", spec.get("low"), integral, problems, required=True)
    high = _number(name, "high", spec.get("high"), integral, problems, required=True)
    step = _number(name, "step", spec.get("step"), integral, problems, required=False)
    log = _flag(name, "log", spec.get("log"), problems)
    if low is None or high is None:
        return None
    if low > high:
        problems.append(_problem(name, f"low ({low}) is greater than high ({high})"))
        return None
    if integral and max(abs(low), abs(high)) > MAX_SAFE_INT:
        problems.append(
            _problem(
                name,
                f"has low or high beyond ±{MAX_SAFE_INT} (2^53), where JSON numbers "
                "stop being exact",
            )
        )
        return None
    if not integral and max(abs(low), abs(high)) > MAX_FLOAT:
        problems.append(
            _problem(
                name,
                f"has low or high beyond ±{MAX_FLOAT:g}, where samplers lose "
                "precision; rescale it (e.g. sample its logarithm)",
            )
        )
        return None
    if log and low <= 0:
        problems.append(_problem(name, f"has log: true, so low must be > 0, not {low}"))
    if step is not None:
        if step <= 0:
            problems.append(_problem(name, f"step must be > 0, not {step}"))
            return None
        if log and not (integral and step == 1):
            problems.append(
                _problem(name, "sets both step and log: a log scale has no fixed step; drop one")
            )
            return None
        fit = _step_problem(low, high, step, integral)
        if fit:
            problems.append(_problem(name, fit))
            return None
    if integral:
        return IntParam(name, int(low), int(high), int(step or 1), log, when)
    return FloatParam(
        name, float(low), float(high), None if step is None else float(step), log, when
    )


def _step_problem(low: float, high: float, step: float, integral: bool) -> str | None:
    lo, hi, st = _decimal(low), _decimal(high), _decimal(step)
    span = hi - lo
    try:
        with decimal.localcontext(decimal.Context(prec=60, traps=[InvalidOperation])):
            if span / st > MAX_GRID_POINTS:
                return (
                    f"step {step} makes more than {MAX_GRID_POINTS:.0e} values; use a larger step"
                )
            if span % st == 0:
                return None
    except InvalidOperation:
        return f"step {step} does not fit the range [{low}, {high}]; use a larger step"
    last = lo + (span // st) * st
    show = int if integral else float
    if st > span:
        return (
            f"step {show(st)} is larger than the range [{show(lo)}, {show(hi)}]: only {show(lo)} "
            f"could be sampled; use a step of at most {show(span)}, or set low equal to high"
        )
    return (
        f"step {show(st)} does not divide the range [{show(lo)}, {show(hi)}]: the largest value "
        f"on the grid is {show(last)}; use high: {show(last)} or high: {show(last + st)}, "
        f"or a step that divides {show(span)}"
    )


def _parse_when(
    name: str, data: Any, earlier: list[Param], problems: list[Problem]
) -> tuple[Condition, ...]:
    if data is None:
        return ()
    if not isinstance(data, Mapping) or not data:
        problems.append(_problem(name, "'when' must map a parameter to its value(s)"))
        return ()
    conditions = []
    for parent_name, wanted in data.items():
        parent = next((p for p in earlier if p.name == parent_name), None)
        if parent is None:
            problems.append(
                _problem(
                    name, f"'when' names {parent_name!r}, which is not a parameter defined above it"
                )
            )
            continue
        values = tuple(wanted) if isinstance(wanted, list) else (wanted,)
        bad = [v for v in values if isinstance(parent, FloatParam) or not parent.contains(v)]
        if bad:
            problems.append(
                _problem(
                    name,
                    f"'when' expects {parent_name} = {bad[0]!r}, which "
                    f"{parent_name} can never take",
                )
            )
            continue
        conditions.append(Condition(str(parent_name), values))
    return tuple(conditions)


def _parse_directions(options: Mapping[str, Any], problems: list[Problem]) -> tuple[str, ...]:
    raw = options.get("directions")
    if raw is None:
        raw = options.get("direction")
    elif options.get("direction") is not None:
        problems.append(_problem("direction", "give 'direction' or 'directions', not both"))
    if raw is None:
        return ("minimize",)
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for d in items:
        if isinstance(d, str) and d.lower() in DIRECTIONS:
            out.append(d.lower())
        else:
            problems.append(_problem("directions", f"{d!r} is not minimize or maximize"))
    if not items:
        problems.append(_problem("directions", "needs at least one direction"))
    return tuple(out) or ("minimize",)


def _parse_metric_names(raw: Any, n: int, problems: list[Problem]) -> tuple[str, ...] | None:
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(m, str) and m for m in items):
        problems.append(_problem("metric_names", "must be a list of non-empty strings"))
        return None
    if len(items) != n:
        problems.append(_problem("metric_names", f"has {len(items)} names for {n} direction(s)"))
    if len(set(items)) != len(items):
        problems.append(_problem("metric_names", "names must be distinct"))
    return tuple(items)


def _parse_component(
    what: str, raw: Any, known: tuple[str, ...], problems: list[Problem]
) -> dict[str, Any] | None:
    if raw is None:
        return None
    spec = {"type": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        problems.append(
            _problem(what, f"must be a name or a mapping with 'type' ({', '.join(known)})")
        )
        return None
    kind = spec["type"].lower()
    if kind not in known:
        problems.append(_problem(what, f"{spec['type']!r} is not one of {', '.join(known)}"))
        return None
    options = {str(k): v for k, v in spec.items() if k != "type"}
    try:
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError):
        problems.append(_problem(what, "options must be plain JSON values"))
        return None
    return {"type": kind, **dict(sorted(options.items()))}


def _parse_lease(raw: Any, problems: list[Problem]) -> float | None:
    if raw is None:
        return None
    if (
        isinstance(raw, bool)
        or not isinstance(raw, (int, float))
        or not (0 < raw <= MAX_LEASE_SECONDS)
    ):
        problems.append(
            _problem(
                "lease_seconds",
                f"must be a number of seconds above 0 and at most {MAX_LEASE_SECONDS}, not {raw!r}",
            )
        )
        return None
    return float(raw)


def _parse_retries(raw: Any, problems: list[Problem]) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_RETRIES:
        problems.append(
            _problem("max_retries", f"must be a whole number from 0 to {MAX_RETRIES}, not {raw!r}")
        )
        return 0
    return raw


# ---------------------------------------------------------------------------------------------
# Small pieces


def _number(
    name: str, key: str, raw: Any, integral: bool, problems: list[Problem], *, required: bool
) -> float | int | None:
    if raw is None:
        if required:
            problems.append(_problem(name, f"needs '{key}'"))
        return None
    value: float | int | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, (int, float)):
        value = raw
    elif isinstance(raw, str):
        try:
            value = float(raw) if any(c in raw for c in ".eEnN") else int(raw)
        except ValueError:
            value = None
    if value is None or not math.isfinite(value):
        problems.append(_problem(name, f"'{key}' must be a finite number, not {raw!r}"))
        return None
    if integral:
        if value != int(value):
            problems.append(_problem(name, f"is int, so '{key}' must be whole, not {raw!r}"))
            return None
        return int(value)
    return value


def _flag(name: str, key: str, raw: Any, problems: list[Problem]) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false", "yes", "no"):
        return raw.lower() in ("true", "yes")
    problems.append(_problem(name, f"'{key}' must be true or false, not {raw!r}"))
    return False


def _choice_key(choice: Any) -> str:
    """A choice's JSON text: equal only for the same value of the same JSON type."""
    if isinstance(choice, float) and choice == 0.0:
        choice = 0.0  # -0.0 is the same choice as 0.0
    try:
        return json.dumps(choice, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise ValueError(
            "is not a JSON value (null, boolean, number, string, list, mapping)"
        ) from None


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _decimal(x: float) -> Decimal:
    try:
        return Decimal(repr(x))
    except InvalidOperation:  # pragma: no cover - finite floats always convert
        return Decimal(x)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False)


def _with_when(d: dict[str, Any], when: Sequence[Condition]) -> dict[str, Any]:
    if when:
        # Always a list, so that a single choice that is itself a list round-trips.
        d["when"] = {c.parent: list(c.values) for c in when}
    return d


def _problem(param: str, message: str) -> Problem:
    return {
        "param": param,
        "message": f"{param} {message}" if not message[0].isupper() else message,
    }


def _summary(problems: list[Problem]) -> str:
    names = list(dict.fromkeys(p["param"] for p in problems))
    return (
        f"The study definition is invalid in {len(names)} place(s): {', '.join(names)}. "
        + " ".join(p["message"] + "." for p in problems[:5])
        + (" ..." if len(problems) > 5 else "")
    )
