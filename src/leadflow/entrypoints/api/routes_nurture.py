"""Routes of nurture."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
