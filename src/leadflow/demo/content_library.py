"""The demo's content library, landing pages and newsletter issue. Item URLs are the pages and
resources the generated contacts visit, so their history already counts as consumption."""

from __future__ import annotations

from leadflow.bootstrap import App
from leadflow.domain.content import ContentItem
from leadflow.services.content import create_item
from leadflow.services.forms import FormIn, create_form


def _item(key: str, title: str, url: str, maturity: str, fmt: str, topics: tuple[str, ...],
          *, premium: bool = False, language: str = "en", summary: str = "") -> ContentItem:
    return ContentItem(key=key, title=title, url=url, maturity=maturity, format=fmt,
                       premium=premium, topics=topics, language=language, summary=summary)


ITEMS = (
    _item("lead-capture-checklist", "The lead capture checklist",
          "/resources/checklist-lead-capture", "discovery", "article", ("capture", "forms"),
          summary="Twelve places where leads slip away, and how to keep them."),
    _item("scoring-guide", "A practical guide to lead scoring", "/resources/guide-scoring",
          "discovery", "article", ("scoring",),
          summary="Points for behaviour, fit for the persona: a first model in an afternoon."),
    _item("intro-video", "leadflow in three minutes", "/resources/video-intro", "discovery",
          "article", ("product",)),
    _item("lead-vs-prospect", "Lead, prospect, opportunity: who is who?",
          "/blog/lead-vs-prospect", "discovery", "article", ("funnel",)),
    _item("scoring-101", "Scoring 101", "/blog/scoring-101", "discovery", "article",
          ("scoring",)),
    _item("bant-explained", "BANT in practice", "/blog/bant", "discovery", "article",
          ("qualification",)),
    _item("nurture-that-works", "Nurture that works", "/blog/nurture-that-works", "discovery",
          "article", ("nurture", "email")),
    _item("funnel-metrics", "The five funnel metrics that matter", "/blog/funnel-metrics",
          "discovery", "article", ("funnel", "analytics")),
    _item("sales-handoff", "A sales hand-off nobody drops", "/blog/sales-handoff", "discovery",
          "article", ("sales",)),
    _item("comparison-grid", "CRM and marketing automation: the comparison grid",
          "/resources/comparison-grid", "evaluation", "white_paper", ("crm", "evaluation")),
    _item("roi-calculator", "The ROI calculator", "/resources/roi-calculator", "evaluation",
          "article", ("roi",)),
    _item("webinar-replay", "Webinar replay: scoring that sales trusts",
          "/resources/webinar-replay", "evaluation", "webinar", ("scoring", "sales")),
    _item("lifecycle-white-paper", "White paper: the lead lifecycle",
          "/resources/white-paper-lead-lifecycle", "evaluation", "white_paper",
          ("funnel", "nurture"), premium=True,
          summary="From suspect to customer: stages, milestones and the rules between them."),
    _item("retail-case-study", "How a retailer doubled its qualified pipeline",
          "/resources/case-study-retail", "decision", "case_study", ("retail", "roi")),
    _item("implementation-playbook", "The implementation playbook",
          "/resources/implementation-playbook", "decision", "white_paper", ("onboarding",),
          premium=True),
    _item("pricing", "Pricing and plans", "/pricing", "decision", "pricing", ("pricing",)),
    _item("demo", "Book a demo", "/demo", "decision", "demo", ("product",)),
    _item("guide-scoring-fr", "Le guide pratique du scoring", "/fr/ressources/guide-scoring",
          "discovery", "article", ("scoring",), language="fr"),
    _item("entonnoir-fr", "Prospect, lead, opportunité : qui est qui ?",
          "/fr/blog/lead-ou-prospect", "discovery", "article", ("funnel",), language="fr"),
    _item("grille-fr", "La grille comparative CRM", "/fr/ressources/grille-comparative",
          "evaluation", "white_paper", ("crm",), language="fr"),
    _item("cas-client-fr", "Étude de cas : un distributeur double son pipeline",
          "/fr/ressources/etude-de-cas", "decision", "case_study", ("retail",), language="fr"),
    _item("news-2026-11", "Newsletter, November: what the funnel taught us",
          "/newsletter/2026-11", "discovery", "newsletter_issue", ("funnel",)),
)

FORMS = (
    FormIn(key="lifecycle-white-paper", name="Lead lifecycle white paper",
           headline="Get the lead lifecycle white paper",
           pitch="Stages, milestones and the rules between them, from suspect to customer.",
           item_key="lifecycle-white-paper", newsletter=True),
    FormIn(key="implementation-playbook", name="Implementation playbook",
           headline="The implementation playbook",
           pitch="What the first ninety days look like, week by week.",
           item_key="implementation-playbook", fields=["company", "company_size", "timeline",
                                                       "budget"], max_fields=2),
)


def install_content(app: App) -> dict[str, int]:
    """The library and forms, unless the library holds items already."""
    with app.reader() as uow:
        if uow.content.active():
            return {"content_items": 0, "forms": 0}
    for item in ITEMS:
        create_item(uow=app.uow(), ctx=app.ctx, item=item)
    for form in FORMS:
        create_form(uow=app.uow(), ctx=app.ctx, data=form)
    return {"content_items": len(ITEMS), "forms": len(FORMS)}
