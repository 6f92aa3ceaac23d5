"""The CLI working on the test's App (see tests/conftest.py), its messages unwrapped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadflow.bootstrap import App
from leadflow.entrypoints.cli import app as _registers_every_command  # noqa: F401
from leadflow.entrypoints.cli.base import set_app
from leadflow.entrypoints.cli.output import console, err_console


@pytest.fixture
def cli_app(app: App) -> Iterator[App]:
    """The runner is no terminal: widen the consoles so that messages are not wrapped."""
    set_app(app)
    widths = console.width, err_console.width
    console.width = err_console.width = 1000
    yield app
    console.width, err_console.width = widths
    set_app(None)
