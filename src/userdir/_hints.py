"""'Did you mean ...?' for a mistyped name (a provider, an option, a directory, a table)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``" — did you mean 'x'?"`` for the closest choice, ignoring case; else ``""``."""
    known = list(choices)
    text = str(word)
    by_case = {choice.casefold(): choice for choice in known}
    hint = by_case.get(text.casefold())
    if hint is None:
        matches = difflib.get_close_matches(text.casefold(), list(by_case), n=1)
        hint = by_case[matches[0]] if matches else None
    return f" — did you mean {hint!r}?" if hint is not None else ""
