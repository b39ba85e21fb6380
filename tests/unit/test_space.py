"""The search-space model: parsing, validation, canonical form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optunapi.errors import InvalidSpaceError
from optunapi.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    build_definition,
    definition_from_dict,
    parse_space_file,
)

# The configuration file of the original optunapi README, as published (typo "learning_rale",
# numbers YAML reads as strings, "True" for log).
SEED_README_YAML = """
optimizer:
  name    : optimizer
  type    : categorical
  choices :
            - RMSprop
            - Adam
num_layers:
  name : num_layers
  type : int
  low  : 1
  high : 3
num_channels:
  name : num_channels
  type : int
  low  : 32
  high : 52
  log  : True
num_units:
  name : num_units
  type : int
  low  : 10
  high : 100
  step : 5
dropout_rate:
  name : dropout_rate
  type : float
  low  : 0.0
  high : 1.0
learning_rate:
  name : learning_rale
  type : float
  low  : 1e-5
  high : 1e-2
  log  : True
drop_path_rate:
  name : drop_path_rate
  type : float
  low  : 0.0
  high : 1.0
  step : 0.1
"""


def problems_of(text: str) -> dict[str, str]:
    with pytest.raises(InvalidSpaceError) as caught:
        parse_space_file(text)
    return {p["param"]: p["message"] for p in caught.value.extra["errors"]}


def test_the_seed_readme_file_is_accepted_as_is() -> None:
    space = parse_space_file(SEED_README_YAML).space
    assert [p.name for p in space.params] == [
        "optimizer",
        "num_layers",
        "num_channels",
        "num_units",
        "dropout_rate",
        "learning_rale",
        "drop_path_rate",
    ]
    lr = space["learning_rale"]
    assert isinstance(lr, FloatParam) and (lr.low, lr.high, lr.log) == (1e-5, 1e-2, True)
    assert space["num_units"] == IntParam("num_units", 10, 100, step=5)
    assert space["optimizer"] == CategoricalParam("optimizer", ("RMSprop", "Adam"))


def test_empty_fields_mean_not_set(case_space) -> None:
    x = parse_space_file(case_space("paraboloid")).space["x"]
    assert x == FloatParam("x", -10.0, 10.0, step=None, log=False)


def test_step_with_log_names_both_parameters(case_space) -> None:
    """K8."""
    problems = problems_of(case_space("step-with-log"))
    assert set(problems) == {"lr", "batch"}
    assert all("step" in m and "log" in m for m in problems.values())


def test_step_not_dividing_says_what_would_fit(case_space) -> None:
    """K9."""
    problems = problems_of(case_space("step-not-dividing"))
    assert set(problems) == {"dropout", "units", "tiny"}
    assert "high: 0.9" in problems["dropout"]
    assert "high: 9" in problems["units"]
    assert "larger than the range" in problems["tiny"]


def test_choices_that_compare_equal_stay_distinct(case_space) -> None:
    """K10: 1 and true, 0 / false / null, nested lists: each its own choice and JSON type."""
    space = parse_space_file(case_space("mixed-categorical")).space
    for param in space.params:
        assert isinstance(param, CategoricalParam)
        encoded = param.encoded_choices()
        assert len(set(encoded)) == len(param.choices)
        for choice, enc in zip(param.choices, encoded, strict=True):
            back = param.decode(enc)
            assert json.dumps(back) == json.dumps(choice) and type(back) is type(choice)


def test_a_choice_listed_twice_is_refused() -> None:
    problems = problems_of("a: {type: categorical, choices: [x, y, x]}")
    assert '"x" twice' in problems["a"]


@pytest.mark.parametrize(
    ("low", "step", "raw", "snapped"),
    [
        (0.0, 0.1, 0.30000000000000004, "0.3"),
        (-0.3, 0.1, 5.551115123125783e-17, "0.0"),
        (0.0, 0.1, 0.7000000000000001, "0.7"),
        (1e-3, 1e-3, 0.0030000000000000005, "0.003"),
    ],
)
def test_stepped_floats_snap_to_short_decimals(
    low: float, step: float, raw: float, snapped: str
) -> None:
    """K12."""
    param = FloatParam("p", low, 1.0, step=step)
    assert repr(param.snap(raw)) == snapped


def test_every_bad_parameter_is_named_at_once() -> None:
    text = """
    a: {type: float, low: 1, high: 0}
    b: {type: int, low: 0.5, high: 3}
    c: {type: categorical}
    d: {type: floaty, low: 0, high: 1}
    e: {type: float, low: 0, high: 1, lgo: true}
    f: {type: float, low: 0, high: 1, log: true}
    g: {type: float, low: 1e-5, high: 1e-2}
    """
    assert set(problems_of(text)) == {"a", "b", "c", "d", "e", "f"}


def test_yaml_exponent_numbers_are_numbers_but_quoted_ones_stay_strings() -> None:
    d = parse_space_file("a: {type: categorical, choices: [1e-3, '1e-3']}")
    assert d.space["a"].choices == (0.001, "1e-3")


def test_rich_form_with_conditions_and_study_options() -> None:
    d = parse_space_file(
        """
        study:
          directions: [minimize, maximize]
          metric_names: [loss, accuracy]
          sampler: {type: tpe, seed: 42}
          pruner: {type: median, n_warmup_steps: 5}
          lease_seconds: 600
          max_retries: 2
        params:
          optimizer: {type: categorical, choices: [sgd, adam]}
          momentum: {type: float, low: 0.0, high: 0.99, when: {optimizer: sgd}}
        """
    )
    assert d.directions == ("minimize", "maximize")
    assert d.sampler == {"type": "tpe", "seed": 42}
    assert (d.lease_seconds, d.max_retries) == (600.0, 2)
    momentum = d.space["momentum"]
    assert d.space.active(momentum, {"optimizer": "sgd"})
    assert not d.space.active(momentum, {"optimizer": "adam"})
    assert definition_from_dict(json.loads(json.dumps(d.to_dict()))) == d


def test_bad_conditions_and_options_are_named() -> None:
    with pytest.raises(InvalidSpaceError) as caught:
        build_definition(
            {
                "a": {"type": "categorical", "choices": ["x", "y"]},
                "b": {"type": "int", "low": 0, "high": 3, "when": {"a": "z"}},
                "c": {"type": "int", "low": 0, "high": 3, "when": {"later": 1}},
                "later": {"type": "int", "low": 0, "high": 3},
            },
            directions=["up"],
            sampler={"type": "magic"},
            metric_names=["m1", "m2"],
        )
    named = {p["param"] for p in caught.value.extra["errors"]}
    assert named == {"b", "c", "directions", "sampler", "metric_names"}


def test_definitions_differ_in_what_changed() -> None:
    v1 = build_definition({"x": {"type": "float", "low": 0, "high": 1}})
    assert v1.differences(build_definition({"x": {"type": "float", "low": 0.0, "high": 1.0}})) == []
    v2 = build_definition({"x": {"type": "float", "low": 0, "high": 1}}, direction="maximize")
    assert v1.differences(v2) == ["directions"]


# -- properties ----------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), finite, st.text(max_size=5))


@st.composite
def params(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["float", "int", "categorical"]))
    if kind == "categorical":
        choices = draw(
            st.lists(
                json_scalars | st.lists(st.integers(0, 3), max_size=2),
                min_size=1,
                max_size=6,
                unique_by=lambda c: json.dumps(c),
            )
        )
        return {"type": kind, "choices": choices}
    if kind == "int":
        low = draw(st.integers(-100, 100))
        step = draw(st.integers(1, 5))
        return {
            "type": kind,
            "low": low,
            "high": low + step * draw(st.integers(0, 20)),
            "step": step,
        }
    low = draw(finite)
    if draw(st.booleans()):
        step = draw(st.sampled_from([0.1, 0.25, 0.5, 1.0, 0.001]))
        high = float(repr(round(low, 3) + step * draw(st.integers(0, 20))))
        return {"type": kind, "low": round(low, 3), "high": high, "step": step}
    return {"type": kind, "low": low, "high": low + abs(draw(finite))}


@given(
    st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), params(), min_size=1, max_size=5)
)
def test_any_valid_space_round_trips(space: dict) -> None:
    try:
        d = build_definition(space)
    except InvalidSpaceError as exc:
        # Only stepped floats built from binary sums may fail to divide; nothing else.
        assert all("step" in p["message"] for p in exc.extra["errors"]), exc.extra
        return
    again = definition_from_dict(json.loads(json.dumps(d.to_dict())))
    assert again.differences(d) == [] and again == d
    for p in d.space.params:
        if isinstance(p, CategoricalParam):
            assert all(p.contains(c) for c in p.choices)
        else:
            assert p.contains(p.low) and p.contains(p.high)


def test_seed_files_may_name_parameters_params_and_study() -> None:
    d = parse_space_file(
        "params: {type: int, low: 1, high: 3}\nstudy: {type: categorical, choices: [a, b]}"
    )
    assert [p.name for p in d.space.params] == ["params", "study"]


def test_yaml_aliases_are_refused_before_they_expand() -> None:
    """Nested aliases ("billion laughs") would stand for 10^9 values: a 422, at once."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("p: {type: categorical, choices: *a8}")
    with pytest.raises(InvalidSpaceError, match="aliases"):
        parse_space_file("\n".join(lines))


@pytest.mark.parametrize(
    "text",
    [
        "x: {type: float, low: 0, high: 1}\nx: {type: int, low: 0, high: 5}\n",
        "1: {type: float, low: 0, high: 1}\ntrue: {type: int, low: 0, high: 5}\n",
        "x: {type: float, low: 0, high: 1, high: 2}\n",
        "study: {direction: maximize}\nstudy: {direction: minimize}\n"
        "params: {x: {type: int, low: 0, high: 1}}\n",
    ],
)
def test_a_key_written_twice_is_refused_not_replaced(text: str) -> None:
    """YAML keeps the last of two equal keys: a parameter or option written twice would
    silently change the search."""
    with pytest.raises(InvalidSpaceError, match="written twice"):
        parse_space_file(text)
