"""Every text the pages show in English has its French translation, placeholders included."""

from __future__ import annotations

import re
import string
from pathlib import Path

import yaml

from leadflow.domain.mail_policy import (
    CATEGORIES,
    CLAIMED,
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
)
from leadflow.domain.temperature import REASON_TEXTS
from leadflow.entrypoints.web.i18n import catalog, pick_language, translator

SRC = Path(__file__).resolve().parents[2] / "src" / "leadflow"
# _("text") or _('text') (also viewer._("...")); the text is the first argument, which Python
# code may write as literals side by side over several lines.
CALL = re.compile(r"""\b_\(\s*(?P<text>(?:(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?P=q)\s*)+)[,)]""")
PART = re.compile(r"""(?P<q>["'])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)""")


def _texts() -> dict[str, str]:
    found: dict[str, str] = {}
    files = sorted((SRC / "templates" / "web").glob("*.html")) + \
        sorted((SRC / "entrypoints" / "web").glob("*.py"))
    for path in files:
        for match in CALL.finditer(path.read_text(encoding="utf-8")):
            text = "".join(part.group("text") for part in PART.finditer(match.group("text")))
            if "\\" in text:
                text = text.encode().decode("unicode_escape")
            found.setdefault(text, path.name)
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_page_text_has_a_french_translation() -> None:
    french = catalog("fr")
    texts = _texts()
    assert len(texts) > 30  # the scan finds the texts at all
    missing = sorted(f"{where}: {text!r}" for text, where in texts.items() if text not in french)
    assert not missing, "texts without French (add them to locales/fr/*.yaml):\n" + \
        "\n".join(missing)


def test_why_a_contact_is_hot_or_cold_reads_in_french() -> None:
    """The temperature's reasons come from the domain, each a text with named values."""
    french = catalog("fr")
    missing = [text for text in REASON_TEXTS if text not in french]
    assert not missing, missing
    _ = translator("fr")
    assert _("engagement {score} >= {threshold}", score="45", threshold="25") == \
        "engagement 45 ≥ 25"


def test_an_emails_category_and_status_read_in_french() -> None:
    french = catalog("fr")
    shown = (*CATEGORIES, QUEUED, CLAIMED, SENDING, SENT, SKIPPED, FAILED)
    assert not [word for word in shown if word not in french]


def test_translations_keep_their_placeholders() -> None:
    wrong = [f"{en!r} → {fr!r}" for en, fr in catalog("fr").items()
             if _fields(en) != _fields(fr)]
    assert not wrong, wrong


def test_the_menu_and_temperatures_read_in_french() -> None:
    _ = translator("fr")
    assert [_(t) for t in ("hot", "warm", "cold")] == ["chaud", "tiède", "froid"]
    assert _("{t} ago", t="3 d") == "il y a 3 d"
    assert translator("en")("Dashboard") == "Dashboard"


def test_the_language_is_the_choice_then_the_browser_then_english() -> None:
    assert pick_language(chosen="fr", accept_language="en") == "fr"
    assert pick_language(chosen=None, accept_language="de-DE,fr;q=0.8,en;q=0.5") == "fr"
    assert pick_language(chosen=None, accept_language="en;q=0.9,fr;q=0.95") == "fr"
    assert pick_language(chosen=None, accept_language="de,es") == "en"
    assert pick_language(chosen="xx", accept_language=None) == "en"


def test_no_text_has_two_translations() -> None:
    """The catalogs of all areas are merged: one English text, one French text."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted((SRC / "entrypoints" / "web" / "locales" / "fr").glob("*.yaml")):
        for english, french in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            first = seen.setdefault(english, (path.name, french))
            if first[1] != french:
                clashes.append(f"{english!r}: {first} vs {(path.name, french)}")
    assert not clashes, clashes
