"""Generate a believable business from a seed: accounts, contacts on every stage, six months of
behaviour and the stage history it led to. Columnar (numpy) so a million contacts stay cheap.

Each contact draws a profile (good fit, medium fit, poor fit, competitor) and a journey depth
(suspect … customer); its events are laid out so that the default rules explain its stage:
an interest event before it became a lead, a premium download or demo request before it became
a prospect, a deal before the opportunity, a purchase before it became a customer. Some
prospects are recycled or disqualified by a rep, some opportunities lose their deal and go
back to nurture (demo/sales_team.py writes the lost deals), a few leads ask to be erased.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from leadflow.demo import catalogue as cat
from leadflow.domain.config import LifecycleConfig
from leadflow.domain.engagement import ZERO_RANK
from leadflow.domain.fit import grade_at_least, persona_min_grade, score_fit
from leadflow.domain.matching import EventShape
from leadflow.domain.model import Account, Contact

DAY = 86400.0
HISTORY_DAYS = 182
GOOD, MEDIUM, POOR, COMPETITOR = 0, 1, 2, 3
PROFILE_WEIGHTS = (0.35, 0.30, 0.335, 0.015)
DEPTH_WEIGHTS = {  # suspect, lead, prospect, opportunity, customer
    GOOD: (0.36, 0.30, 0.14, 0.07, 0.13),
    MEDIUM: (0.44, 0.34, 0.12, 0.04, 0.06),
    POOR: (0.55, 0.45, 0.0, 0.0, 0.0),
}
PAGE_VIEWS_BY_DEPTH = np.array([7.0, 16.0, 30.0, 34.0, 34.0])


@dataclass
class Accounts:
    frame: pl.DataFrame
    target: np.ndarray  # ids of accounts in target industries and sizes
    small: np.ndarray
    other: np.ndarray
    objects: dict[int, Account]


@dataclass
class Chunk:
    contacts: pl.DataFrame
    scores: pl.DataFrame  # the contact_scores rows of ``contacts``
    identities: pl.DataFrame
    events: pl.DataFrame
    stage_changes: pl.DataFrame
    milestones: pl.DataFrame


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch if ch.isalnum() else "-" for ch in plain.lower()).strip("-")


def make_accounts(rng: np.random.Generator, n: int, now: float) -> Accounts:
    kind = rng.choice(3, size=n, p=(0.6, 0.25, 0.15))
    names, domains, industries, employees, countries = [], [], [], [], []
    for i in range(n):
        name = f"{cat.COMPANY_WORDS[rng.integers(len(cat.COMPANY_WORDS))]} " \
               f"{cat.COMPANY_KINDS[rng.integers(len(cat.COMPANY_KINDS))]}"
        names.append(name)
        domains.append(f"{ascii_slug(name)}-{i + 1}.example")
        if kind[i] == 0:
            industries.append(cat.TARGET_INDUSTRIES[rng.integers(len(cat.TARGET_INDUSTRIES))])
            employees.append(int(np.exp(rng.uniform(np.log(50), np.log(5000)))))
            countries.append(cat.SERVED_COUNTRIES[rng.integers(len(cat.SERVED_COUNTRIES))])
        elif kind[i] == 1:
            industries.append(cat.OTHER_INDUSTRIES[rng.integers(len(cat.OTHER_INDUSTRIES))])
            employees.append(int(rng.integers(10, 200)))
            countries.append(cat.SERVED_COUNTRIES[rng.integers(len(cat.SERVED_COUNTRIES))])
        else:
            industries.append(cat.OTHER_INDUSTRIES[rng.integers(len(cat.OTHER_INDUSTRIES))])
            employees.append(int(rng.integers(1, 20000)))
            countries.append(cat.OTHER_COUNTRIES[rng.integers(len(cat.OTHER_COUNTRIES))])
    ids = np.arange(1, n + 1)
    created = now - HISTORY_DAYS * DAY - rng.uniform(0, 365 * DAY, size=n)
    frame = pl.DataFrame({
        "id": ids, "name": names, "domain": domains, "industry": industries,
        "employees": employees, "country": countries, "annual_revenue": None,
        "attributes": ["{}"] * n, "created_at": created, "updated_at": created,
    }, schema_overrides={"annual_revenue": pl.Float64})
    objects = {int(i): Account(id=int(i), name=names[k], domain=domains[k],
                               industry=industries[k], employees=employees[k],
                               country=countries[k]) for k, i in enumerate(ids)}
    return Accounts(frame, ids[kind == 0], ids[kind == 1], ids[kind == 2], objects)


def _consent(*, granted: bool, source: str, at: float, newsletter: bool) -> dict[str, Any]:
    """A demo contact's consent: email as its first touch gave it; a third of the leads also
    subscribed to the newsletter."""
    out: dict[str, Any] = {"email": {"granted": granted, "source": source, "at": at}}
    if newsletter and granted:
        out["newsletter"] = {"granted": True, "source": "form", "at": at}
    return out


def shape_catalogue() -> list[EventShape]:
    shapes = [cat.page(u) for u in cat.BROWSE_PAGES]
    shapes += [cat.page(cat.PRICING_PAGE), cat.page(cat.CAREERS_PAGE),
               cat.page("/", "pricing_ads"), cat.page(cat.PRICING_PAGE, "pricing_ads")]
    shapes += [*cat.OPEN_CONTENT, *cat.CONTENT_VIEWS, *cat.PREMIUM_CONTENT, *cat.INTEREST]
    shapes += [cat.WEBINAR, cat.DEMO, cat.TRIAL, cat.PRODUCT_USE, cat.EMAIL_OPEN,
               cat.EMAIL_CLICK, cat.EMAIL_REPLY, cat.CALL, cat.UNSUBSCRIBE, cat.BOUNCE, cat.DEAL,
               cat.PURCHASE]
    unique: dict[EventShape, None] = dict.fromkeys(shapes)
    return list(unique)


class Generator:
    """Draws contacts chunk by chunk; the same seed gives the same business."""

    def __init__(self, *, config: LifecycleConfig, seed: int, now: float, accounts: Accounts,
                 shape_ids: dict[EventShape, int]) -> None:
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.now = now
        self.accounts = accounts
        self.sid = shape_ids
        self.version = config.config_version
        self.stages = {s.role: s.key for s in reversed(config.stages)}
        self.main = [s.key for s in config.main_stages]
        self._fit_cache: dict[tuple[Any, ...], tuple[float, str, str | None, str | None, str,
                                                      bool]] = {}

    # ---------------------------------------------------------------- people

    def _fit(self, seniority: str | None, country: str, account_id: int | None,
             email: str | None) -> tuple[float, str, str | None, str | None, str, bool]:
        domain = email.rsplit("@", 1)[1] if email else None
        key = (seniority, country, account_id,
               domain if domain in cat.COMPETITOR_DOMAINS else None)
        hit = self._fit_cache.get(key)
        if hit is None:
            contact = Contact(id=None, stage="", seniority=seniority, country=country,
                              email=email)
            account = self.accounts.objects.get(account_id) if account_id else None
            fit = score_fit(contact, account, self.config.fit)
            detail = json.dumps({"breakdown": fit.breakdown, "unknown": fit.unknown,
                                 "exclusion_reason": fit.exclusion_reason},
                                separators=(",", ":"))
            passes = not fit.excluded_by and grade_at_least(
                fit.grade, persona_min_grade(fit, self.config.fit))
            hit = (fit.score, fit.grade, fit.persona, fit.excluded_by, detail, passes)
            self._fit_cache[key] = hit
        return hit

    def chunk(self, start_id: int, n: int) -> Chunk:
        """Contacts ``start_id`` … ``start_id + n - 1``; the same for a seed, in any process."""
        self.rng = np.random.default_rng([self.seed, start_id])
        rng, now = self.rng, self.now
        ids = np.arange(start_id, start_id + n)
        profile = rng.choice(4, size=n, p=PROFILE_WEIGHTS)
        depth = np.zeros(n, dtype=np.int64)
        for p, weights in DEPTH_WEIGHTS.items():
            mask = profile == p
            depth[mask] = rng.choice(5, size=int(mask.sum()), p=weights)
        created = now - rng.uniform(1, HISTORY_DAYS, size=n) * DAY

        seniority: list[str | None] = []
        country: list[str] = []
        account: list[int | None] = []
        for p in profile:
            if p == GOOD:
                seniority.append(cat.SENIOR[rng.integers(len(cat.SENIOR))])
                acc = int(rng.choice(self.accounts.target))
            elif p == MEDIUM:
                seniority.append(cat.MANAGER[rng.integers(len(cat.MANAGER))])
                acc = int(rng.choice(self.accounts.small))
            else:
                seniority.append(cat.JUNIOR[rng.integers(len(cat.JUNIOR))]
                                 if rng.random() < 0.85 else None)
                pool = self.accounts.other if rng.random() < 0.7 else self.accounts.target
                acc = int(rng.choice(pool))
            account.append(None if p == COMPETITOR or (p == POOR and rng.random() < 0.3)
                           else acc)
            chosen = account[-1]
            if chosen is not None and rng.random() < 0.85:
                country.append(self.accounts.objects[chosen].country or "FR")
            else:
                country.append(cat.SERVED_COUNTRIES[rng.integers(len(cat.SERVED_COUNTRIES))]
                               if p != POOR else
                               cat.OTHER_COUNTRIES[rng.integers(len(cat.OTHER_COUNTRIES))])

        known = (depth >= 1) | (rng.random(n) < 0.5) | (profile == COMPETITOR)
        first = rng.integers(len(cat.FIRST_NAMES), size=n)
        last = rng.integers(len(cat.LAST_NAMES), size=n)
        emails: list[str | None] = []
        for k in range(n):
            if not known[k]:
                emails.append(None)
                continue
            acc_k = account[k]
            if profile[k] == COMPETITOR:
                domain = cat.COMPETITOR_DOMAINS[rng.integers(len(cat.COMPETITOR_DOMAINS))]
            elif acc_k is not None:
                domain = self.accounts.objects[acc_k].domain or "mail.example"
            else:
                domain = "mail.example"
            emails.append(f"{ascii_slug(cat.FIRST_NAMES[first[k]])}."
                          f"{ascii_slug(cat.LAST_NAMES[last[k]])}.{ids[k]}@{domain}")

        fits = [self._fit(seniority[k], country[k], account[k], emails[k]) for k in range(n)]
        passes = np.array([f[5] for f in fits])
        excluded = np.array([f[3] is not None for f in fits])
        depth = np.where(passes, depth, np.minimum(depth, 1))
        depth = np.where(excluded, 0, depth)

        source = np.where(
            depth >= 1,
            rng.choice(len(cat.KNOWN_SOURCES), size=n, p=cat.KNOWN_SOURCE_WEIGHTS),
            np.where(known, 1 + rng.choice(3, size=n), 0))
        source_names = [cat.KNOWN_SOURCES[s] if depth[k] >= 1 else
                        ("website" if not known[k] else cat.SUSPECT_SOURCES[source[k] - 1])
                        for k, s in enumerate(source)]

        # Journey times: interest, hand-off, commit, won, each after the previous one.
        span = now - created
        t_interest = created + span * rng.uniform(0.0, 0.35, size=n)
        t_handoff = t_interest + (now - t_interest) * rng.uniform(0.05, 0.5, size=n)
        t_commit = t_handoff + (now - t_handoff) * rng.uniform(0.1, 0.6, size=n)
        t_won = t_commit + (now - t_commit) * rng.uniform(0.1, 0.9, size=n)
        fate = rng.random(n)
        # Prospects a rep sent back to nurture; opportunities whose deal was lost (back to
        # nurture too, as a lost deal does by default).
        lost = (depth == 3) & (fate < 0.4)
        recycled = ((depth == 2) & (fate < 0.15)) | lost
        rep_disqualified = (depth == 2) & (fate >= 0.15) & (fate < 0.33)
        erased = (depth == 1) & (fate < 0.006)
        t_after = np.where(lost, t_commit + (now - t_commit) * rng.uniform(0.2, 0.7, size=n),
                           t_handoff + (now - t_handoff) * rng.uniform(0.2, 0.6, size=n))
        t_erase = t_interest + (now - t_interest) * rng.uniform(0.3, 0.9, size=n)

        events = self._events(n, ids, profile, depth, known, created, t_interest, t_handoff,
                              t_commit, t_won, t_after, recycled)
        changes, stage_now, entered = self._stage_changes(
            ids, depth, excluded, created, t_interest, t_handoff, t_commit, t_won, t_after,
            t_erase, recycled, rep_disqualified, erased)
        milestones, qualification, passed = self._milestones_and_qualification(
            ids, depth, stage_now, recycled, rep_disqualified, t_handoff, t_commit, t_won,
            events, source_names)

        last_event = events.group_by("contact_id").agg(pl.col("ts").max().alias("last"))
        last_map = dict(zip(last_event["contact_id"].to_list(), last_event["last"].to_list(),
                            strict=True))
        gone = [st == self.stages["erased"] for st in stage_now]
        email_col = [None if g else e for g, e in zip(gone, emails, strict=True)]
        named = [known[k] and not gone[k] for k in range(n)]
        cids = ids.tolist()
        consent = [
            "{}" if email_col[k] is None else json.dumps(_consent(
                granted=bool(depth[k] >= 1 and source_names[k] != "list_import"),
                source="form" if depth[k] >= 1 else source_names[k],
                at=float(t_interest[k] if depth[k] >= 1 else created[k]),
                newsletter=bool(depth[k] >= 1 and cids[k] % 3 == 0)))
            for k in range(n)]
        empty_fit = '{"breakdown":[],"unknown":[],"exclusion_reason":null}'
        columns: dict[str, Any] = {
            "id": ids, "email": email_col,
            "phone": [None if gone[k] or depth[k] < 2 else
                      f"+33 6 {c % 100:02d} {(c // 100) % 100:02d} {(c // 10000) % 100:02d} 00"
                      for k, c in enumerate(cids)],
            "first_name": [cat.FIRST_NAMES[first[k]] if named[k] else None for k in range(n)],
            "last_name": [cat.LAST_NAMES[last[k]] if named[k] else None for k in range(n)],
            "title": [cat.TITLES[str(seniority[k])] if named[k] and seniority[k] else None
                      for k in range(n)],
            "seniority": [None if gone[k] else seniority[k] for k in range(n)],
            "account_role": [None if gone[k] or depth[k] < 2 else
                             ("decision_maker" if seniority[k] in cat.SENIOR else "influencer")
                             for k in range(n)],
            "country": country, "region": None,
            "language": [cat.LANGUAGE_OF.get(c, "en") for c in country],
            "source": source_names, "account_id": account, "referred_by_id": None,
            "owner_id": None, "attributes": "{}", "consent": consent,
            "stage": stage_now, "stage_entered_at": entered,
            "recycled_at": np.where(recycled, t_after, np.nan),
            "fit_score": [0.0 if gone[k] else fits[k][0] for k in range(n)],
            "fit_grade": [f[1] for f in fits], "persona": [f[2] for f in fits],
            "excluded_by": [f[3] for f in fits],
            "fit_detail": [empty_fit if gone[k] else fits[k][4] for k in range(n)],
            "qualification": [qualification.get(c, '{"answers":{}}') for c in cids],
            "qualification_passed": [passed.get(c, False) for c in cids],
            "temperature": None, "temperature_until": None,
            "last_event_at": [last_map.get(c) for c in cids], "created_at": created,
            "updated_at": entered,
        }
        frame = pl.DataFrame({
            name: (pl.Series(name, value, dtype=CONTACT_SCHEMA[name], strict=False)
                   if not isinstance(value, str | float | type(None))
                   else pl.repeat(value, n, dtype=CONTACT_SCHEMA[name], eager=True).alias(name))
            for name, value in columns.items()
        }).with_columns(pl.col("recycled_at").fill_nan(None))
        has_email = [c for c, e in zip(cids, email_col, strict=True) if e]
        anonymous = [k for k in range(n) if not known[k] and not gone[k]]
        identities = pl.DataFrame({
            "contact_id": has_email + [cids[k] for k in anonymous],
            "kind": ["email"] * len(has_email) + ["anonymous_id"] * len(anonymous),
            "value": [e for e in email_col if e]
            + [f"anon-{cids[k]:08x}-{first[k]:02x}{last[k]:02x}" for k in anonymous],
        }, schema={"contact_id": pl.Int64, "kind": pl.Utf8, "value": pl.Utf8})
        # Unscored: the installer scores every contact from its events afterwards.
        scores = pl.DataFrame({"contact_id": ids}, schema={"contact_id": pl.Int64}).with_columns(
            pl.lit(0.0).alias("engagement_score"),
            pl.lit(None, dtype=pl.Float64).alias("engagement_t0"),
            pl.lit(ZERO_RANK).alias("engagement_rank"),
            pl.lit("{}").alias("engagement_breakdown"), pl.lit("{}").alias("engagement_caps"),
            pl.lit(0.0).alias("recycle_baseline"), pl.lit("{}").alias("signals"))
        return Chunk(contacts=frame, scores=scores, identities=identities, events=events,
                     stage_changes=changes, milestones=milestones)

    # ---------------------------------------------------------------- behaviour

    def _events(self, n: int, ids: np.ndarray, profile: np.ndarray, depth: np.ndarray,
                known: np.ndarray, created: np.ndarray, t_interest: np.ndarray,
                t_handoff: np.ndarray, t_commit: np.ndarray, t_won: np.ndarray,
                t_after: np.ndarray, recycled: np.ndarray) -> pl.DataFrame:
        rng, now, sid = self.rng, self.now, self.sid
        owners: list[np.ndarray] = []
        times: list[np.ndarray] = []
        shapes: list[np.ndarray] = []

        def add(who: np.ndarray, ts: np.ndarray, shape_ids: np.ndarray | int) -> None:
            owners.append(who)
            times.append(np.minimum(ts, now - 1.0))
            shapes.append(np.broadcast_to(np.asarray(shape_ids), who.shape).astype(np.int64))

        def between(who: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
            picked: np.ndarray = start[who] + (end[who] - start[who]) * rng.random(who.size)
            return picked

        everyone_end = np.full(n, now)
        # Page views across the contact's life; more of them the further it went.
        counts = rng.poisson(PAGE_VIEWS_BY_DEPTH[depth] * np.where(known | (depth > 0), 1, 0.6))
        who = np.repeat(np.arange(n), counts)
        browse = np.array([sid[cat.page(u)] for u in cat.BROWSE_PAGES])
        page_shape = browse[rng.integers(browse.size, size=who.size)]
        pricing_p = np.where(depth >= 2, 0.07, 0.015)[who]
        r = rng.random(who.size)
        page_shape = np.where(r < pricing_p, sid[cat.page(cat.PRICING_PAGE)], page_shape)
        ads = rng.random(who.size) < 0.03
        page_shape = np.where(ads, sid[cat.page("/", "pricing_ads")], page_shape)
        job_seeker = (profile == POOR) & (rng.random(n) < 0.25)
        page_shape = np.where(job_seeker[who] & (rng.random(who.size) < 0.3),
                              sid[cat.page(cat.CAREERS_PAGE)], page_shape)
        # A prospect's pricing visits before a recycle must not look recent after it.
        end = np.where(recycled, t_after, everyone_end)
        page_ts = between(who, created, end)
        add(who, page_ts, page_shape)
        # Post-recycle browsing: general pages only.
        rec = np.flatnonzero(recycled)
        extra = rng.poisson(4, size=rec.size)
        who_r = np.repeat(rec, extra)
        add(who_r, between(who_r, t_after, everyone_end), browse[rng.integers(browse.size,
                                                                              size=who_r.size)])
        if (~known & (depth == 0)).any():
            anon = np.flatnonzero(~known & (depth == 0) & (rng.random(n) < 0.2))
            views = np.array([sid[s] for s in cat.CONTENT_VIEWS[:1]])
            add(anon, between(anon, created, everyone_end), views[0])

        leads = np.flatnonzero(depth >= 1)
        interest = np.array([sid[s] for s in cat.INTEREST])
        add(leads, t_interest[leads], interest[rng.integers(interest.size, size=leads.size)])
        k = rng.binomial(3, 0.4, size=leads.size)
        who = np.repeat(leads, k)
        open_content = np.array([sid[s] for s in cat.OPEN_CONTENT])
        add(who, between(who, t_interest, end), open_content[rng.integers(open_content.size,
                                                                          size=who.size)])
        k = rng.binomial(2, 0.3, size=leads.size)
        who = np.repeat(leads, k)
        views = np.array([sid[s] for s in cat.CONTENT_VIEWS])
        add(who, between(who, t_interest, end), views[rng.integers(views.size, size=who.size)])
        webinar = leads[rng.random(leads.size) < 0.3]
        add(webinar, t_interest[webinar] + rng.uniform(1, 14, size=webinar.size) * DAY,
            sid[cat.WEBINAR])
        trial = leads[rng.random(leads.size) < 0.12]
        add(trial, t_interest[trial] + rng.uniform(0.1, 5, size=trial.size) * DAY,
            sid[cat.TRIAL])
        k = rng.poisson(5, size=trial.size)
        who = np.repeat(trial, k)
        add(who, between(who, t_interest, everyone_end), sid[cat.PRODUCT_USE])
        k = rng.poisson(3, size=leads.size)
        who = np.repeat(leads, k)
        add(who, between(who, t_interest, everyone_end), sid[cat.EMAIL_OPEN])
        k = rng.poisson(0.8, size=leads.size)
        who = np.repeat(leads, k)
        add(who, between(who, t_interest, everyone_end), sid[cat.EMAIL_CLICK])
        unsub = leads[(depth[leads] == 1) & (rng.random(leads.size) < 0.02)]
        add(unsub, between(unsub, t_interest, everyone_end), sid[cat.UNSUBSCRIBE])
        bounce = leads[(depth[leads] == 1) & (rng.random(leads.size) < 0.005)]
        add(bounce, between(bounce, t_interest, everyone_end), sid[cat.BOUNCE])

        prospects = np.flatnonzero(depth >= 2)
        premium = np.array([sid[s] for s in cat.PREMIUM_CONTENT])
        handoff_shape = np.where(rng.random(prospects.size) < 0.55,
                                 premium[rng.integers(premium.size, size=prospects.size)],
                                 sid[cat.DEMO])
        add(prospects, t_handoff[prospects], handoff_shape)
        k = rng.integers(1, 4, size=prospects.size)
        who = np.repeat(prospects, k)
        add(who, t_handoff[who] - rng.uniform(0, 3, size=who.size) * DAY,
            sid[cat.page(cat.PRICING_PAGE)])
        replies = prospects[rng.random(prospects.size) < 0.3]
        add(replies, between(replies, t_handoff, end), sid[cat.EMAIL_REPLY])
        calls = prospects[rng.random(prospects.size) < 0.4]
        add(calls, between(calls, t_handoff, end), sid[cat.CALL])

        deals = np.flatnonzero(depth >= 3)
        add(deals, t_commit[deals], sid[cat.DEAL])
        won = np.flatnonzero(depth >= 4)
        add(won, t_won[won], sid[cat.PURCHASE])

        who_all = np.concatenate(owners)
        ts_all = np.concatenate(times)
        ts_all = np.maximum(ts_all, created[who_all])
        order = np.lexsort((ts_all, who_all))
        return pl.DataFrame({
            "contact_id": ids[who_all[order]].astype(np.int64),
            "ts": ts_all[order],
            "shape_id": np.concatenate(shapes)[order],
        })

    # ---------------------------------------------------------------- history

    def _stage_changes(self, ids: np.ndarray, depth: np.ndarray, excluded: np.ndarray,
                       created: np.ndarray, t_interest: np.ndarray, t_handoff: np.ndarray,
                       t_commit: np.ndarray, t_won: np.ndarray, t_after: np.ndarray,
                       t_erase: np.ndarray, recycled: np.ndarray, rep_disqualified: np.ndarray,
                       erased: np.ndarray) -> tuple[pl.DataFrame, list[str], list[float]]:
        main, st = self.main, self.stages
        lost_reasons = self.config.sales.lost_reasons
        rows: dict[str, list[Any]] = {c: [] for c in ("contact_id", "from_stage", "to_stage",
                                                      "at", "actor", "config_version",
                                                      "reason", "kind")}
        stage_now: list[str] = []
        entered: list[float] = []

        def change(cid: int, a: str | None, b: str, at: float, actor: str,
                   reason: str | None, kind: str) -> None:
            rows["contact_id"].append(cid)
            rows["from_stage"].append(a)
            rows["to_stage"].append(b)
            rows["at"].append(at)
            rows["actor"].append(actor)
            rows["config_version"].append(self.version)
            rows["reason"].append(reason)
            rows["kind"].append(kind)

        times = (created, t_interest, t_handoff, t_commit, t_won)
        for k, raw_id in enumerate(ids):
            cid = int(raw_id)
            change(cid, None, main[0], float(created[k]), "tracking", "first seen", "forward")
            current, at = main[0], float(created[k])
            if excluded[k]:
                at = float(created[k]) + 1.0
                change(cid, current, st["excluded"], at, "rule:exclusion:competitor",
                       "Works for a competitor", "side")
                current = st["excluded"]
            for d in range(1, int(depth[k]) + 1):
                at = float(times[d][k])
                change(cid, current, main[d], at, f"rule:{main[d]}", None, "forward")
                current = main[d]
            if recycled[k]:
                at = float(t_after[k])
                why = (f"lost deal: {lost_reasons[cid % len(lost_reasons)]}"
                       if current == main[3] else "Not ready to buy this year: back to nurture")
                change(cid, current, st["interest"], at, "user:demo-rep", why, "backward")
                current = st["interest"]
            elif rep_disqualified[k]:
                at = float(t_after[k])
                change(cid, current, st["excluded"], at, "user:demo-rep",
                       "No project and no budget", "side")
                current = st["excluded"]
            elif erased[k]:
                at = float(t_erase[k])
                change(cid, current, st["erased"], at, "user:demo-privacy",
                       "Asked to be forgotten", "side")
                current = st["erased"]
            stage_now.append(current)
            entered.append(at)
        frame = pl.DataFrame(rows, schema={"contact_id": pl.Int64, "from_stage": pl.Utf8,
                                           "to_stage": pl.Utf8, "at": pl.Float64,
                                           "actor": pl.Utf8, "config_version": pl.Utf8,
                                           "reason": pl.Utf8, "kind": pl.Utf8})
        return frame, stage_now, entered

    def _milestones_and_qualification(
        self, ids: np.ndarray, depth: np.ndarray, stage_now: list[str], recycled: np.ndarray,
        rep_disqualified: np.ndarray, t_handoff: np.ndarray, t_commit: np.ndarray,
        t_won: np.ndarray, events: pl.DataFrame, sources: list[str],
    ) -> tuple[pl.DataFrame, dict[int, str], dict[int, bool]]:
        rng, now = self.rng, self.now
        rows: dict[str, list[Any]] = {c: [] for c in ("contact_id", "key", "reached_at",
                                                      "actor", "config_version")}

        def reach(cid: int, key: str, at: float, actor: str) -> None:
            rows["contact_id"].append(cid)
            rows["key"].append(key)
            rows["reached_at"].append(at)
            rows["actor"].append(actor)
            rows["config_version"].append(self.version)

        trial_id = self.sid[cat.TRIAL]
        trials = events.filter(pl.col("shape_id") == trial_id).group_by("contact_id").agg(
            pl.col("ts").min())
        for cid, at in trials.iter_rows():
            reach(int(cid), "pql", float(at), "rule")
        qualification: dict[int, str] = {}
        passed: dict[int, bool] = {}
        prospect_key = self.stages["handoff"]
        for k, raw_id in enumerate(ids):
            cid = int(raw_id)
            if depth[k] >= 2 and not recycled[k] and rng.random() < 0.85:
                reach(cid, "sal", min(now, float(t_handoff[k]) + rng.uniform(3600, 48 * 3600)),
                      "user:demo-rep")
            answers: dict[str, Any] = {}
            if depth[k] >= 3:
                when = t_won[k] if depth[k] == 4 else now + rng.uniform(5, 200) * DAY
                answers = {"budget": "approved", "authority": "decision_maker", "need": True,
                           "timeline": _iso(when), "has_crm_data": True}
                reach(cid, "qualified", float(t_commit[k]) - rng.uniform(1, 5) * DAY,
                      "user:demo-rep")
                passed[cid] = True
            elif stage_now[k] == prospect_key:
                r = rng.random()
                if r < 0.35:
                    answers = {"timeline": _iso(now + rng.uniform(-3, 365) * DAY),
                               "need": True}
                elif r < 0.45:
                    answers = {"budget": "none", "need": True}
                elif r < 0.52:
                    answers = {"contract_until": _iso(now + rng.uniform(20, 300) * DAY)}
            if answers:
                qualification[cid] = json.dumps({"answers": answers, "missing": [],
                                                 "failed": [], "by": "user:demo-rep",
                                                 "at": float(t_handoff[k])})
        del sources, rep_disqualified
        frame = pl.DataFrame(rows, schema={"contact_id": pl.Int64, "key": pl.Utf8,
                                           "reached_at": pl.Float64, "actor": pl.Utf8,
                                           "config_version": pl.Utf8})
        return frame, qualification, passed


def _iso(ts: float) -> str:
    return str(np.datetime64(int(ts), "s").astype("datetime64[D]"))


CONTACT_SCHEMA: dict[str, Any] = {
    "id": pl.Int64, "email": pl.Utf8, "phone": pl.Utf8, "first_name": pl.Utf8,
    "last_name": pl.Utf8, "title": pl.Utf8, "seniority": pl.Utf8, "account_role": pl.Utf8,
    "country": pl.Utf8, "region": pl.Utf8, "language": pl.Utf8, "source": pl.Utf8,
    "account_id": pl.Int64, "referred_by_id": pl.Int64, "owner_id": pl.Int64,
    "attributes": pl.Utf8, "consent": pl.Utf8, "stage": pl.Utf8, "stage_entered_at": pl.Float64,
    "recycled_at": pl.Float64,
    "fit_score": pl.Float64, "fit_grade": pl.Utf8, "persona": pl.Utf8, "excluded_by": pl.Utf8,
    "fit_detail": pl.Utf8, "qualification": pl.Utf8, "qualification_passed": pl.Boolean,
    "temperature": pl.Utf8, "temperature_until": pl.Float64, "last_event_at": pl.Float64,
    "created_at": pl.Float64, "updated_at": pl.Float64,
}
CONTACT_COLUMNS = tuple(CONTACT_SCHEMA)
