"""Commands of forms."""

from __future__ import annotations
