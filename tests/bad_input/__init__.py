"""Bad input across the package (cross-cutting): the convention that every error names the
bad value, held by one table of invalid arguments per public area, written with the shared
helpers below, and by the fuzzers over every public callable (``api_fuzz``) and over CSV
text (``test_fuzz``). Tests of one module's own bad input that need none of these helpers
live beside that module's tests (``tests/linesearch/test_bad_input.py``,
``tests/test_cli_bad_input.py``).

Every case states the exception type it expects and a piece of text that must appear in
the message: the bad value itself (or, for a wrong type, the type's name), so that a user
reading the message knows what to change. Cases where descend does not yet do so are kept
as strict expected failures whose reason starts with "BUG:".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest


def raises_naming(error: type[BaseException], needle: str, fn: Callable[[], Any]) -> BaseException:
    """Call ``fn``; it must raise ``error`` with ``needle`` (taken literally) in the message."""
    with pytest.raises(error, match=re.escape(needle)) as info:
        fn()
    return info.value


def user_error(error: type[BaseException]) -> bool:
    """Whether ``error`` is a type a caller can catch as bad input (ValueError, TypeError, or
    descend's GradientError, a RuntimeError by design); IndexError follows NumPy for indexing."""
    from descend.errors import GradientError

    return issubclass(error, ValueError | TypeError | GradientError | IndexError)


def case(
    name: str,
    fn: Callable[[], Any],
    error: type[BaseException],
    needle: str,
    bug: str | None = None,
) -> Any:
    """One row of a table: ``fn()`` must raise ``error`` naming ``needle``. With ``bug`` the row
    is a strict expected failure: it documents what descend does wrong today."""
    marks: list = []  # every bug this table once pinned is fixed
    return pytest.param(fn, error, needle, id=name, marks=marks)
