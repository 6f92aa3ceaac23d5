"""Page text in English and French.

Templates and routes write English text and pass it to ``_``; each language other than English has
a folder of YAML catalogs (one per area of the app) mapping the English text to its
translation. A text missing from a catalog shows in English (tests/web list the missing ones).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("en", "fr")
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}

Translate = Callable[..., str]


@cache
def catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    folder = LOCALES / lang
    if lang == "en" or not folder.is_dir():
        return merged
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a catalog maps English text to its translation")
        merged.update({str(k): str(v) for k, v in data.items()})
    return merged


def translator(lang: str) -> Translate:
    """The translation of a text, then ``str.format`` with the keywords given (``n=3``)."""
    texts = catalog(lang)

    def translate(text: str, /, **values: Any) -> str:
        out = texts.get(text, text)
        return out.format(**values) if values else out
    return translate


def pick_language(*, chosen: str | None, accept_language: str | None) -> str:
    """The user's choice, else the first of the browser's languages we have, else English."""
    if chosen in LANGUAGES:
        return chosen
    best: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        lang = tag.strip().lower()[:2]
        if lang in LANGUAGES and quality > 0:
            best.append((quality, lang))
    return max(best, key=lambda x: x[0])[1] if best else "en"
