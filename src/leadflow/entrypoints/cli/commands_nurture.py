"""Commands of nurture."""

from __future__ import annotations
