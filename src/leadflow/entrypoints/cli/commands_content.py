"""Commands of content."""

from __future__ import annotations
