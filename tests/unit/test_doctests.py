"""Docstring examples are tests: every module of the package that has one runs it here."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import clickstream

ROOT = Path(clickstream.__file__).parent
MODULES = sorted(
    ".".join(("clickstream", *path.relative_to(ROOT).with_suffix("").parts))
    for path in ROOT.rglob("*.py")
    if ">>>" in path.read_text()
)


def test_the_package_has_doctests() -> None:
    assert "clickstream.sources" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
