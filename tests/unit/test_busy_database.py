"""Which failures mean "the database was busy: run it again later", and the busy timeout a
SQLite URL may set."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from leadflow.adapters.db.engine import is_busy, make_engine, try_again_later
from leadflow.domain.errors import InvalidInput


def _locked() -> OperationalError:
    return OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))


def _wrapped() -> None:
    try:
        raise _locked()
    except OperationalError as exc:
        raise RuntimeError("the pass stopped") from exc


def _bug_while_busy() -> None:
    try:
        raise _locked()
    finally:
        raise KeyError("missing")


def test_a_locked_database_is_busy_and_so_is_what_it_caused() -> None:
    assert is_busy(_locked())
    with pytest.raises(RuntimeError) as wrapped:
        _wrapped()
    assert is_busy(wrapped.value)
    assert try_again_later(wrapped.value) == "the database was busy: database is locked"


def test_a_bug_met_while_handling_a_busy_database_is_a_failure_of_its_own() -> None:
    """A KeyError raised in a ``finally`` while "database is locked" was on its way up must be
    seen in full, not waved through as a busy database."""
    with pytest.raises(KeyError) as caught:
        _bug_while_busy()
    assert caught.value.__context__ is not None
    assert not is_busy(caught.value)
    assert try_again_later(caught.value) is None


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "soon", "100000"])
def test_a_bad_busy_timeout_is_named(tmp_path: object, value: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        make_engine(f"sqlite:///{tmp_path}/x.db?timeout={value}")
    assert "timeout=" in bad.value.message
