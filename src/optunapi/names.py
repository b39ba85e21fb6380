"""Study names and resource paths: the one place they are checked and built.

A study name is used as a database key and, on the legacy routes, to find ``{name}.yaml`` in the
config directory, so the rule is strict and is checked before any file or database is touched.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from optunapi.errors import InvalidNameError

STUDY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_STUDY_NAME = re.compile(STUDY_NAME_PATTERN)


def check_study_name(name: str) -> str:
    """Return ``name`` if it is a valid study name, else raise ``InvalidNameError``.

    ``fullmatch`` is used because ``$`` alone would also accept a trailing newline.
    """
    if _STUDY_NAME.fullmatch(name):
        return name
    shown = name if len(name) <= 40 else name[:40] + "..."
    raise InvalidNameError(
        f"{shown!r} is not a valid study name: use 1 to 128 characters from A-Z, a-z, 0-9, "
        "'.', '_' and '-', starting with a letter or digit.",
        expected=STUDY_NAME_PATTERN,
    )


def study_path(name: str) -> str:
    """The v1 path of a study."""
    return f"/v1/studies/{quote(name, safe='')}"


def trials_path(name: str) -> str:
    """The v1 path of a study's trials."""
    return f"{study_path(name)}/trials"


def trial_path(name: str, number: int) -> str:
    """The v1 path of one trial."""
    return f"{trials_path(name)}/{int(number)}"
