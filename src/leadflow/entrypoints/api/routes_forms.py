"""Landing pages (``/p/<form>``), the endpoint for forms on other sites (``/v1/forms/<form>``)
and the forms API (``/api/v1/forms``).

Pages are rendered on the server by Jinja2 with autoescape on, load nothing from elsewhere
and forbid every script through their Content-Security-Policy. Public endpoints are limited
per client, carry a honeypot field (a submission that fills it is answered as a success and
stored nowhere), and answer a person who asked to be forgotten exactly as anyone else, so a
form cannot be used to learn who did.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from dataclasses import asdict, replace
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from leadflow.bootstrap import App
from leadflow.domain.access import TRACK
from leadflow.domain.errors import (
    ConcurrentChange,
    InvalidInput,
    LeadflowError,
    NotFound,
    Suppressed,
    TooLarge,
)
from leadflow.domain.forms import Form
from leadflow.domain.mail_links import LinkSigner
from leadflow.domain.nurture_config import PROFILE_FIELDS
from leadflow.entrypoints.api.auth import AppDep, Reader, Writer, get_app, token_of
from leadflow.entrypoints.api.errors import error_body, error_response, status_of
from leadflow.entrypoints.api.rate_limit import RateLimiter
from leadflow.entrypoints.api.schemas_forms import (
    FormCreate,
    FormRead,
    FormUpdate,
    SubmissionAnswer,
)
from leadflow.services import forms
from leadflow.services.api_keys import authenticate

log = logging.getLogger("leadflow.forms")
router = APIRouter()

HONEYPOT = "homepage"  # hidden from people; bots fill it in
MAX_BODY = 64 * 1024
# Per client address: page views 2 a second (a minute's burst), submissions one every
# 5 seconds (ten at once).
PAGE_RATE, PAGE_BURST = 2.0, 30.0
SUBMIT_RATE, SUBMIT_BURST = 0.2, 50.0
HIDDEN = ("t", "submission", "anonymous_id", "utm_source", "utm_medium", "utm_campaign")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a profile link's token stays here
    "Cache-Control": "no-store",
}

TEXT = {
    "en": {
        "email": "Work email", "gated": "Fill in the form and we email you:",
        "welcome_back": "Welcome back, {name}. A few more questions, if you have a moment.",
        "not_you": "Not {name}? Use the form without your details.",
        "newsletter": "Subscribe me to the newsletter.", "submit": "Send",
        "submit_item": "Email it to me", "honeypot": "Leave this empty",
        "check_fields": "Please check the fields below.", "thanks_title": "Thank you!",
        "on_its_way": "It is on its way to your inbox:",
        "check_inbox": "If it does not arrive within a few minutes, look in your spam folder.",
        "received": "We received your answers.",
        "missing_title": "Page not found",
        "missing": "This page does not exist or is no longer available.",
        "slow_title": "Too many requests",
        "slow": "Please wait {seconds} seconds and try again.",
        "error_title": "Something went wrong",
        "busy": "We are busy right now: please send the form again in a moment.",
    },
    "fr": {
        "email": "Email professionnel",
        "gated": "Remplissez le formulaire et nous vous envoyons par email :",
        "welcome_back": "Bonjour {name}. Encore quelques questions, si vous avez un instant.",
        "not_you": "Vous n'êtes pas {name} ? Utilisez le formulaire sans vos informations.",
        "newsletter": "Je m'abonne à la newsletter.", "submit": "Envoyer",
        "submit_item": "Recevoir par email", "honeypot": "Laissez ce champ vide",
        "check_fields": "Merci de vérifier les champs ci-dessous.",
        "thanks_title": "Merci !", "on_its_way": "Il arrive dans votre boîte mail :",
        "check_inbox": "S'il n'est pas là d'ici quelques minutes, regardez dans les spams.",
        "received": "Nous avons bien reçu vos réponses.",
        "missing_title": "Page introuvable",
        "missing": "Cette page n'existe pas ou n'est plus disponible.",
        "slow_title": "Trop de demandes",
        "slow": "Merci d'attendre {seconds} secondes avant de réessayer.",
        "error_title": "Une erreur est survenue",
        "busy": "Nous sommes très sollicités : renvoyez le formulaire dans un instant.",
    },
}
LABELS_FR = {
    "first_name": "Prénom", "last_name": "Nom", "company": "Entreprise", "title": "Fonction",
    "phone": "Téléphone", "country": "Pays (deux lettres)",
    "company_size": "Taille de l'entreprise (salariés)", "industry": "Secteur",
    "budget": "Budget", "timeline": "Quand pensez-vous acheter ? (AAAA-MM-JJ)",
    "authority": "Votre rôle dans la décision",
}

pages = Environment(loader=PackageLoader("leadflow", "templates/pages"),
                    autoescape=select_autoescape(default=True, default_for_string=True))
_limiters_lock = threading.Lock()


def _text(language: str) -> dict[str, str]:
    return TEXT.get(language, TEXT["en"])


def _page(template: str, status: int = 200, headers: dict[str, str] | None = None,
          **values: Any) -> HTMLResponse:
    values.setdefault("lang", "en")
    values.setdefault("text", _text(values["lang"]))
    html = pages.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS,
                                                           **(headers or {})})


def _message(status: int, title: str, message: str, lang: str = "en",
             headers: dict[str, str] | None = None) -> HTMLResponse:
    return _page("message.html", status, headers, title=title, message=message, lang=lang)


def _missing(lang: str = "en") -> HTMLResponse:
    text = _text(lang)
    return _message(404, text["missing_title"], text["missing"], lang)


def _limiter(request: Request, name: str, rate: float, burst: float) -> RateLimiter:
    """This app's limiter of that name, made on first use (like the app's own limiters)."""
    state = request.app.state
    with _limiters_lock:
        limiter: RateLimiter | None = getattr(state, name, None)
        if limiter is None:
            limiter = RateLimiter(rate, get_app(request).clock.now, burst_seconds=burst)
            setattr(state, name, limiter)
    return limiter


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _wait(request: Request, name: str, rate: float, burst: float) -> int | None:
    """None when the client may go on; else whole seconds to wait (never 0)."""
    wait = _limiter(request, name, rate, burst).allow(_client(request))
    return None if wait is None else max(1, math.ceil(wait))


def _signer(app: App) -> LinkSigner:
    return LinkSigner(app.settings.signing_key, app.settings.public_url)


def _token_contact(app: App, form_key: str, token: str | None) -> int | None:
    if not token or len(token) > 200:
        return None
    return _signer(app).contact_of(form_key, token)


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise TooLarge(f"the body is larger than {MAX_BODY // 1024} KB", field="body")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BODY:
            raise TooLarge(f"the body is larger than {MAX_BODY // 1024} KB", field="body")
    return bytes(raw)


def _form_fields(raw: bytes) -> dict[str, str]:
    """An url-encoded body; the first value of each name."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=200,
                          strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8", field="body") from None
    except ValueError:
        raise InvalidInput("the form has too many fields", field="body") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _url(app: App, form: Form) -> str:
    return f"{app.settings.public_url.rstrip('/')}/p/{quote(form.key)}"


def _read(app: App, form: Form) -> dict[str, Any]:
    asks, at_most = forms.effective_fields(app.ctx, form)
    return {**asdict(form), "fields": list(form.fields), "url": _url(app, form), "asks": asks,
            "asks_at_most": at_most}


# -- landing pages ----------------------------------------------------------------------------

def _landing(app: App, form_key: str, *, token: str | None,
             hidden: dict[str, str | None], values: dict[str, Any],
             errors: dict[str, str], status: int) -> HTMLResponse:
    """The page; sent back with errors, it also shows every field that was filled in, so
    that nothing typed is lost and each problem sits next to its field."""
    contact_id = _token_contact(app, form_key, token)
    try:
        page = forms.landing_page(uow=app.reader(), ctx=app.ctx, form_key=form_key,
                                  contact_id=contact_id)
    except NotFound:
        return _missing()
    lang = page.form.language
    asked = {f.name for f in page.fields}
    fields = page.fields + [forms.field_spec(app.ctx, name) for name in PROFILE_FIELDS
                            if name not in asked and (values.get(name) or name in errors)]
    if lang == "fr":
        fields = [replace(f, label=LABELS_FR.get(f.name, f.label)) for f in fields]
    shown = {f.name for f in fields} | {"consent", "newsletter"}
    if page.ask_email:
        shown.add("email")
    hidden = {**hidden, "t": token if page.contact_id is not None else None}
    return _page("landing.html", status, lang=lang, form=page.form, item=page.item,
                 fields=fields, ask_email=page.ask_email, first_name=page.first_name,
                 hidden=hidden, values=values, errors=errors, shown=shown,
                 honeypot=HONEYPOT, action=f"/p/{quote(page.form.key)}")


@router.get("/p/{form_key}", response_class=HTMLResponse, tags=["forms"])
def landing_page(form_key: str, request: Request, t: str | None = None,
                 aid: str | None = None, utm_source: str | None = None,
                 utm_medium: str | None = None, utm_campaign: str | None = None
                 ) -> HTMLResponse:
    """A form's public landing page: its pitch, the item it gates, and the fields still
    unknown about the visitor (``?t=`` from a profile link names them)."""
    app = get_app(request)
    wait = _wait(request, "form_page_limiter", PAGE_RATE, PAGE_BURST)
    if wait is not None:
        text = _text("en")
        return _message(429, text["slow_title"], text["slow"].format(seconds=wait),
                        headers={"Retry-After": str(wait)})
    hidden = {"submission": secrets.token_urlsafe(16), "anonymous_id": aid,
              "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign}
    return _landing(app, form_key, token=t, hidden=hidden, values={}, errors={},
                    status=200)


@router.post("/p/{form_key}", response_class=HTMLResponse, tags=["forms"])
async def landing_submit(form_key: str, request: Request) -> HTMLResponse:
    """The landing page's form (url-encoded): a thank-you page, or the form again with
    each problem next to its field (422)."""
    app = get_app(request)
    wait = _wait(request, "form_submit_limiter", SUBMIT_RATE, SUBMIT_BURST)
    if wait is not None:
        text = _text("en")
        return _message(429, text["slow_title"], text["slow"].format(seconds=wait),
                        headers={"Retry-After": str(wait)})
    try:
        data = _form_fields(await _body(request))
    except LeadflowError as exc:
        return _message(status_of(exc), _text("en")["error_title"], exc.message)
    token = data.get("t") or request.query_params.get("t")
    if data.get(HONEYPOT):
        log.info("form honeypot filled", extra={"form": form_key, "client": _client(request)})
        return await run_in_threadpool(_thanks_if_exists, app, form_key)
    submission_id = data.get("submission") or secrets.token_urlsafe(16)
    try:
        result = await run_in_threadpool(lambda: forms.submit(
            uow=app.uow(), ctx=app.ctx, form_key=form_key, data=data,
            anonymous_id=data.get("anonymous_id"),
            profile_token_contact=_token_contact(app, form_key, token), at=app.clock.now(),
            submission_id=submission_id))
    except InvalidInput as exc:
        hidden = {name: data.get(name) for name in HIDDEN if name != "t"}
        hidden["submission"] = submission_id
        values = {k: v for k, v in data.items() if k not in HIDDEN and k != HONEYPOT}
        errors = {exc.field or "form": exc.message}
        return await run_in_threadpool(lambda: _landing(
            app, form_key, token=token, hidden=hidden, values=values, errors=errors,
            status=422))
    except Suppressed:
        # Answered as any other person: the form must not tell who asked to be forgotten.
        log.info("form from a suppressed person: nothing stored", extra={"form": form_key})
        return await run_in_threadpool(_thanks_if_exists, app, form_key)
    except NotFound:
        return _missing()
    except ConcurrentChange:
        text = _text("en")
        return _message(503, text["error_title"], text["busy"], headers={"Retry-After": "1"})
    except LeadflowError as exc:
        return _message(status_of(exc), _text("en")["error_title"], exc.message)
    return _page("thanks.html", lang=result.form.language, item=result.item)


def _thanks_if_exists(app: App, form_key: str) -> HTMLResponse:
    """The page a real submission gets, for one that stored nothing."""
    try:
        page = forms.landing_page(uow=app.reader(), ctx=app.ctx, form_key=form_key,
                                  contact_id=None)
    except NotFound:
        return _missing()
    return _page("thanks.html", lang=page.form.language, item=page.item)


# -- forms on other sites ---------------------------------------------------------------------

def _answer(form: Form, item_title: str | None) -> dict[str, Any]:
    text = _text(form.language)
    return {"ok": True, "form": form.key, "asset": "emailed" if item_title else None,
            "message": f"{text['on_its_way']} {item_title}" if item_title
            else text["received"]}


def _answer_if_exists(app: App, form_key: str) -> JSONResponse:
    try:
        page = forms.landing_page(uow=app.reader(), ctx=app.ctx, form_key=form_key,
                                  contact_id=None)
    except NotFound as exc:
        return error_response(exc)
    return JSONResponse(_answer(page.form, page.item.title if page.item else None))


@router.post("/v1/forms/{key}", response_model=SubmissionAnswer, tags=["forms"])
async def form_post(key: str, request: Request) -> Response:
    """A form on another site posts here, JSON or url-encoded, with the public write key
    (``Authorization: Basic <key>:`` or ``Bearer``, or a ``writeKey`` field). Fields: ``email``,
    the profiling fields, ``consent`` and ``newsletter`` (ticked boxes), ``anonymous_id``,
    ``submission_id`` (the same for a retry: nothing is done twice), ``utm_*``. Errors are
    JSON naming the field; nothing is stored then."""
    app = get_app(request)
    try:
        raw = await _body(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            data: dict[str, Any] = _form_fields(raw)
        else:
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                raise InvalidInput("the body is neither JSON nor a url-encoded form",
                                   field="body") from None
            if not isinstance(body, dict):
                raise InvalidInput("the body must be a JSON object", field="body")
            data = body
        token = token_of(request.headers.get("authorization")) or data.get("writeKey")
        await run_in_threadpool(lambda: authenticate(
            uow=app.reader(), ctx=app.ctx, token=token if isinstance(token, str) else None,
            needs=TRACK))
    except LeadflowError as exc:
        return error_response(exc, 422 if isinstance(exc, InvalidInput) else None)
    wait = _wait(request, "form_submit_limiter", SUBMIT_RATE, SUBMIT_BURST)
    if wait is not None:
        return JSONResponse(error_body("rate_limited", "too many requests; slow down"),
                            status_code=429, headers={"Retry-After": str(wait)})
    if data.get(HONEYPOT):
        log.info("form honeypot filled", extra={"form": key, "client": _client(request)})
        return await run_in_threadpool(_answer_if_exists, app, key)
    submission_id = data.get("submission_id") or request.headers.get("idempotency-key") \
        or secrets.token_urlsafe(16)
    anonymous_id = data.get("anonymous_id") or data.get("anonymousId")
    try:
        result = await run_in_threadpool(lambda: forms.submit(
            uow=app.uow(), ctx=app.ctx, form_key=key, data=data,
            anonymous_id=anonymous_id if isinstance(anonymous_id, str) else None,
            profile_token_contact=None, at=app.clock.now(),
            submission_id=submission_id if isinstance(submission_id, str) else ""))
    except Suppressed:
        log.info("form from a suppressed person: nothing stored", extra={"form": key})
        return await run_in_threadpool(_answer_if_exists, app, key)
    except ConcurrentChange as exc:
        return JSONResponse(error_body(exc.code, exc.message), status_code=503,
                            headers={"Retry-After": "1"})
    except LeadflowError as exc:
        return error_response(exc)
    return JSONResponse(_answer(result.form, result.item.title if result.item else None))


# -- the forms API ----------------------------------------------------------------------------

@router.get("/api/v1/forms", response_model=list[FormRead], tags=["forms"])
def forms_list(app: AppDep, who: Reader) -> list[dict[str, Any]]:
    """Every form, with its landing page's URL."""
    who.need_role("admin", "marketer", what="see forms")
    return [_read(app, f) for f in forms.list_forms(uow=app.reader())]


@router.post("/api/v1/forms", response_model=FormRead, status_code=201, tags=["forms"])
def forms_create(body: FormCreate, app: AppDep, who: Writer) -> dict[str, Any]:
    """A form and its landing page (/p/<key>)."""
    who.need_role("admin", "marketer", what="create forms")
    return _read(app, forms.create_form(uow=app.uow(), ctx=app.ctx,
                                        data=forms.FormIn(**body.model_dump())))


@router.get("/api/v1/forms/{key}", response_model=FormRead, tags=["forms"])
def forms_get(key: str, app: AppDep, who: Reader) -> dict[str, Any]:
    who.need_role("admin", "marketer", what="see forms")
    return _read(app, forms.get_form(uow=app.reader(), key=key))


@router.patch("/api/v1/forms/{key}", response_model=FormRead, tags=["forms"])
def forms_update(key: str, body: FormUpdate, app: AppDep, who: Writer) -> dict[str, Any]:
    """Change the fields given; ``active: false`` takes the page down (404)."""
    who.need_role("admin", "marketer", what="change forms")
    return _read(app, forms.update_form(uow=app.uow(), ctx=app.ctx, key=key,
                                        changes=body.model_dump(exclude_unset=True)))
