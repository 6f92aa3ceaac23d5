"""Email templates: Jinja2, HTML and text, one folder per language (English and French
shipped, English when a language has no template). HTML escapes every value; a template sets
its ``subject``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from markupsafe import Markup

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "mail"
LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=8)
def _environment(language: str, autoescape: bool) -> Environment:
    return Environment(loader=FileSystemLoader([str(TEMPLATE_DIR / language), str(TEMPLATE_DIR)]),
                       autoescape=autoescape, undefined=StrictUndefined, trim_blocks=autoescape,
                       keep_trailing_newline=True)


class JinjaRenderer:
    def render(self, template: str, language: str | None, values: dict[str, Any]) -> Rendered:
        lang = language if language in LANGUAGES else "en"
        html_env, text_env = _environment(lang, True), _environment(lang, False)
        try:
            html_template = html_env.get_template(f"{template}.html")
            text_template = text_env.get_template(f"{template}.txt")
        except TemplateNotFound as exc:
            raise LookupError(f"no email template {template!r}: {exc}") from None
        context = {"language": lang, "subject": "", **values}
        module = html_template.make_module(context)
        subject = " ".join(Markup(getattr(module, "subject", "")).unescape().split())
        html = html_template.render({**context, "subject": subject})
        text = text_template.render({**context, "subject": subject})
        return Rendered(subject=subject, text=text, html=html)
