"""Fixtures shared by every test layer: field-case data and unique study names."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

# The field cases live beside the repository (../shared/cases, as CI lays it out), or where
# OPTUNAPI_CASES points; tests read them, the product never.
CASES = (
    Path(os.environ.get("OPTUNAPI_CASES", Path(__file__).resolve().parents[2] / "shared" / "cases"))
    / "spaces"
)


@pytest.fixture
def case_space() -> callable:  # type: ignore[valid-type]
    """Read a field-case space file by stem: ``case_space("step-with-log")``."""

    def read(stem: str) -> str:
        path = CASES / f"{stem}.yaml"
        if not path.exists():
            message = f"field case {path} is missing: set OPTUNAPI_CASES to shared/cases"
            if os.environ.get("CI"):
                pytest.fail(message)  # CI has them: a missing file there is a broken setup
            pytest.skip(message)
        return path.read_text()

    return read


@pytest.fixture
def study_name(request: pytest.FixtureRequest) -> str:
    """A study name unique to this test, valid under the naming rule."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:80].strip("-.")
    return f"{stem}-{uuid.uuid4().hex[:8]}"
