"""The make-believe business of the demo: names, companies, pages and content it draws from."""

from __future__ import annotations

from leadflow.domain.matching import EventShape

FIRST_NAMES = (
    "Alice", "Hugo", "Emma", "Louis", "Chloe", "Lucas", "Lea", "Gabriel", "Manon", "Arthur",
    "Camille", "Jules", "Sarah", "Adam", "Ines", "Paul", "Julia", "Nathan", "Laura", "Tom",
    "Anna", "Max", "Lena", "Felix", "Marie", "Jonas", "Sophie", "Leon", "Hannah", "Noah",
    "Olivia", "James", "Amelia", "Oliver", "Isla", "Harry", "Mia", "Jack", "Grace", "George",
    "Lucia", "Mateo", "Sofia", "Hugo", "Martina", "Pablo", "Elena", "Diego", "Valeria", "Alvaro",
    "Giulia", "Marco", "Chiara", "Luca", "Sara", "Matteo", "Fleur", "Daan", "Sanne", "Bram",
    "Priya", "Arjun", "Mei", "Wei", "Yuki", "Kenji", "Fatima", "Omar", "Amina", "Youssef",
)
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans",
    "Lopez", "Gonzalez", "Rodriguez", "Fernandez", "Sanchez", "Perez", "Rossi", "Russo",
    "Ferrari", "Esposito", "Bianchi", "Romano", "de Vries", "Jansen", "Bakker", "Visser",
    "Patel", "Sharma", "Chen", "Wang", "Tanaka", "Sato", "Haddad", "Benali", "Okafor", "Silva",
)
COMPANY_WORDS = (
    "Nordwind", "Azur", "Helios", "Granite", "Vertex", "Lumen", "Kestrel", "Orchid", "Atlas",
    "Cobalt", "Meridian", "Pioneer", "Quantum", "Riverside", "Summit", "Tundra", "Unity",
    "Vivid", "Willow", "Zenith", "Alder", "Beacon", "Cedar", "Delta", "Ember", "Falcon",
    "Harbor", "Iris", "Juniper", "Kinetic", "Lotus", "Mosaic", "Nimbus", "Onyx", "Prism",
)
COMPANY_KINDS = (
    "Logistics", "Software", "Finance", "Health", "Retail", "Foods", "Energy", "Labs",
    "Manufacturing", "Consulting", "Media", "Systems", "Partners", "Group", "Industries",
)
TARGET_INDUSTRIES = ("software", "finance", "manufacturing", "healthcare", "retail")
OTHER_INDUSTRIES = ("education", "government", "agriculture", "hospitality", "nonprofit")
SERVED_COUNTRIES = ("FR", "DE", "GB", "US", "ES", "IT", "NL", "BE", "CH", "CA")
OTHER_COUNTRIES = ("BR", "IN", "CN", "NG", "MX", "ID", "TR", "ZA")
LANGUAGE_OF = {"FR": "fr", "BE": "fr", "CH": "fr", "CA": "en", "DE": "de", "ES": "es",
               "MX": "es", "IT": "it", "NL": "nl", "BR": "pt"}
COMPETITOR_DOMAINS = ("rivalcrm.com", "hubspot.com", "mautic.org", "odoo.com")
SENIOR = ("director", "vp", "c_level", "head")
MANAGER = ("manager", "head")
JUNIOR = ("individual", "student", "intern", "assistant")
TITLES = {"director": "IT Director", "vp": "VP Engineering", "c_level": "CTO",
          "head": "Head of Operations", "manager": "Operations Manager",
          "individual": "Analyst", "student": "Student", "intern": "Intern",
          "assistant": "Office Assistant"}
KNOWN_SOURCES = ("website", "social", "trade_fair", "list_import", "referral", "outbound")
KNOWN_SOURCE_WEIGHTS = (0.45, 0.15, 0.12, 0.08, 0.10, 0.10)
SUSPECT_SOURCES = ("list_import", "trade_fair", "social")
CAMPAIGNS = ("spring_webinar", "pricing_ads", "newsletter", "trade_fair_paris", None)

BROWSE_PAGES = (
    "/", "/product", "/product/scoring", "/product/nurture", "/product/analytics",
    "/customers", "/about", "/blog/lead-vs-prospect", "/blog/scoring-101", "/blog/bant",
    "/blog/nurture-that-works", "/blog/funnel-metrics", "/blog/sales-handoff", "/docs",
    "/docs/api", "/integrations", "/security", "/contact",
)
PRICING_PAGE = "/pricing"
CAREERS_PAGE = "/careers"


def page(url: str, campaign: str | None = None) -> EventShape:
    utm = campaign is not None
    return EventShape(type="page_view", url=url, campaign=campaign,
                      utm_source="google" if utm else None, utm_medium="cpc" if utm else None,
                      utm_campaign=campaign)


def content(kind: str, stage: str, *, premium: bool, slug: str) -> EventShape:
    return EventShape(type=kind, url=f"/resources/{slug}", content_stage=stage, premium=premium)


OPEN_CONTENT = tuple(content("content_download", stage, premium=False, slug=slug) for stage, slug in
                     (("discovery", "checklist-lead-capture"), ("discovery", "guide-scoring"),
                      ("evaluation", "comparison-grid"), ("evaluation", "roi-calculator")))
CONTENT_VIEWS = tuple(content("content_view", stage, premium=False, slug=slug) for stage, slug in
                      (("discovery", "video-intro"), ("evaluation", "webinar-replay"),
                       ("decision", "case-study-retail")))
PREMIUM_CONTENT = tuple(content("content_download", stage, premium=True, slug=slug)
                        for stage, slug in (("evaluation", "white-paper-lead-lifecycle"),
                                            ("decision", "implementation-playbook")))
INTEREST = (EventShape(type="form_submitted", url="/contact"),
            EventShape(type="newsletter_signup", url="/blog"),
            EventShape(type="webinar_registered", url="/webinars/spring",
                       campaign="spring_webinar"),
            OPEN_CONTENT[0], OPEN_CONTENT[1])
WEBINAR = EventShape(type="webinar_attended", url="/webinars/spring", campaign="spring_webinar")
DEMO = EventShape(type="demo_request", url="/demo")
TRIAL = EventShape(type="trial_started", url="/signup")
PRODUCT_USE = EventShape(type="product_used", url="/app")
EMAIL_OPEN = EventShape(type="email_opened", campaign="newsletter")
EMAIL_CLICK = EventShape(type="email_clicked", campaign="newsletter")
EMAIL_REPLY = EventShape(type="email_replied")
CALL = EventShape(type="call_answered")
UNSUBSCRIBE = EventShape(type="unsubscribed", campaign="newsletter")
BOUNCE = EventShape(type="email_bounced")
DEAL = EventShape(type="deal_created")
PURCHASE = EventShape(type="purchase")
