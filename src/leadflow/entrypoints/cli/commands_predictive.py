"""`leadflow model train|list|activate|score|explain`: the predictive conversion score learnt
from this install's own history (services/predictive.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from leadflow.adapters.ml.store import SqlPredictiveStore
from leadflow.domain.predictive import ModelVersion
from leadflow.entrypoints.cli.base import friendly_errors, get_app
from leadflow.entrypoints.cli.commands_contacts import resolve
from leadflow.entrypoints.cli.commands_model import model_app
from leadflow.entrypoints.cli.output import RichProgress, console, print_json, table
from leadflow.services import predictive

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _day(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _baseline(m: dict[str, Any] | None) -> str:
    return "-" if not m else f"{m['auc']:.3f} / {m['average_precision']:.3f}"


def _show_version(v: ModelVersion) -> None:
    m = v.metrics
    test, train = m.get("test", {}), m.get("train", {})
    _say(f"model version {v.id}{' (active)' if v.active else ''}: predicts {v.target} within "
         f"{v.horizon_days:g} days of becoming a lead (or of each later snapshot); "
         f"{v.examples:,} examples, {v.positives:,} positive")
    _say(f"held out: the {test.get('contacts', 0):,} contacts that became leads from "
         f"{_day(test.get('leads_from'))} ({test.get('examples', 0):,} examples, "
         f"{test.get('positives', 0):,} positive); trained on {train.get('examples', 0):,} "
         "earlier examples")
    table("metrics on the held-out part", ["model", "AUC", "avg precision", "Brier",
                                          "lift top 10%"],
          [["leadflow", f"{m['auc']:.3f}", f"{m['average_precision']:.3f}",
            f"{m['brier']:.3f}", f"{m['lift_top_decile']:.2f}"]]
          + ([[m["baseline"]["name"], f"{m['baseline']['auc']:.3f}",
               f"{m['baseline']['average_precision']:.3f}", f"{m['baseline']['brier']:.3f}",
               f"{m['baseline']['lift_top_decile']:.2f}"]] if m.get("baseline") else []))
    d = v.details
    _say(f"inputs ({len(v.features)}): {', '.join(v.features)}")
    if d.get("constant"):
        _say(f"left out, one value in every example: {', '.join(d['constant'])}")
    _say("never read: " + "; ".join(f"{n['what']} ({n['why']})" for n in d.get("not_read", [])))
    _say(f"measured: {d.get('held_out_model', '')}")
    _say(f"kept (chosen and fitted again with every example): {d.get('model', '')}")


@model_app.command("train")
@friendly_errors
def train_cmd(
    target: Annotated[str | None, typer.Option(
        help="What to predict: a stage after the interest stage (customer) or "
             "milestone:<key> (milestone:mql). Default: the configuration's model.target.")
    ] = None,
    horizon_days: Annotated[float | None, typer.Option(
        help="Reached within this many days (default: model.horizon_days, 90).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the models.")] = 7,
    activate: Annotated[bool, typer.Option(
        "--activate", help="Make the new version the active one, and score every contact.")
    ] = False,
    background: Annotated[bool, typer.Option(
        "--background", help="Queue the training for the worker (leadflow worker, or "
                             "leadflow serve) instead of running it here.")] = False,
    by: Annotated[str, typer.Option("--by", help="Who trains it (kept with the version).")
                  ] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Train the conversion model on this install's history: each contact as it was when it
    became a lead (and every 30 days after, while still open), labelled by whether it reached
    the target within the horizon. Measured on the latest leads, kept as a new version."""
    a = get_app()
    if background:
        from leadflow.entrypoints.worker import Jobs  # the queue, only when asked

        Jobs(a).train_model(trained_by=by, target=target, horizon_days=horizon_days,
                            seed=seed, activate=activate)
        if as_json:
            print_json({"queued": True})
        else:
            _say("queued: a running worker (leadflow worker, or leadflow serve) trains the "
                 "model; leadflow model list shows the new version when it is done")
        return
    from leadflow.adapters.ml.learners import LeadflowModel, OneHotLogistic  # scikit-learn

    store = SqlPredictiveStore(a.engine)
    version = predictive.train(store=store, ctx=a.ctx, learner=LeadflowModel(),
                               baseline=OneHotLogistic(), trained_by=by,
                               progress=RichProgress(enabled=not as_json), target=target,
                               horizon_days=horizon_days, seed=seed)
    report = None
    if activate:
        report = predictive.activate(store=store, ctx=a.ctx, version_id=version.id,
                                     progress=RichProgress(enabled=not as_json))
        found = store.version(version.id)
        assert found is not None
        version = found
    if as_json:
        print_json({**predictive.version_summary(version),
                    "scored": None if report is None else report.scored})
        return
    _show_version(version)
    if report is not None:
        _say(f"active; {report.scored:,} contact(s) scored")
    else:
        _say(f"not active yet: leadflow model activate {version.id}")


@model_app.command("list")
@friendly_errors
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every trained version with its metrics on its held-out part; one is active."""
    a = get_app()
    versions = predictive.list_versions(store=SqlPredictiveStore(a.engine))
    if as_json:
        print_json([predictive.version_summary(v) for v in versions])
        return
    if not versions:
        _say("no model trained yet: leadflow model train")
        return
    table("model versions", ["version", "active", "trained", "target", "examples (positive)",
                             "AUC", "avg precision", "Brier", "lift", "baseline AUC / AP"],
          [[v.id, "yes" if v.active else "", _day(v.created_at),
            f"{v.target} in {v.horizon_days:g} d", f"{v.examples:,} ({v.positives:,})",
            f"{v.metrics['auc']:.3f}", f"{v.metrics['average_precision']:.3f}",
            f"{v.metrics['brier']:.3f}", f"{v.metrics['lift_top_decile']:.2f}",
            _baseline(v.metrics.get("baseline"))] for v in versions])


@model_app.command("activate")
@friendly_errors
def activate_cmd(
    version: Annotated[int, typer.Argument(help="The version to use (leadflow model list).")],
    as_json: JsonOpt = False,
) -> None:
    """Make VERSION the active model (the only one) and score every contact with it."""
    a = get_app()
    report = predictive.activate(store=SqlPredictiveStore(a.engine), ctx=a.ctx,
                                 version_id=version, progress=RichProgress(enabled=not as_json))
    if as_json:
        print_json({"version": version, "scored": report.scored,
                    "forgotten": report.forgotten})
        return
    _say(f"model version {version} is active; {report.scored:,} contact(s) scored")


@model_app.command("score")
@friendly_errors
def score_cmd(
    every: Annotated[bool, typer.Option(
        "--all", help="Score every contact again, not only those changed since the last "
                      "pass.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score with the active model the contacts changed since its last pass (their events,
    attributes, stage or account), as the worker does each minute."""
    a = get_app()
    report = predictive.score(store=SqlPredictiveStore(a.engine), ctx=a.ctx, full=every,
                              progress=RichProgress(enabled=not as_json))
    if as_json:
        print_json({"version": report.version_id, "full": report.full,
                    "considered": report.considered, "scored": report.scored,
                    "forgotten": report.forgotten})
        return
    if report.version_id is None:
        _say("no model is active: leadflow model train, then leadflow model activate VERSION")
        return
    what = "every contact" if report.full else "changed contacts"
    _say(f"model version {report.version_id}, {what}: {report.considered:,} looked at, "
         f"{report.scored:,} scored, {report.forgotten:,} no longer scored")


def reason_line(r: dict[str, Any]) -> str:
    value = r["value"]
    shown = "missing" if value is None or value == "(missing)" else \
        (f"{value:g}" if isinstance(value, float) else str(value))
    reference = r["reference"]
    ref = "missing" if reference is None or reference == "(missing)" else \
        (f"{reference:g}" if isinstance(reference, float) else str(reference))
    sign = "+" if r["log_odds"] > 0 else "−"
    return (f"{sign} {r['feature']} = {shown} (typical: {ref}): {r['log_odds']:+.2f} log-odds, "
            f"{r['effect'] * 100:+.1f} points")


@model_app.command("explain")
@friendly_errors
def explain_cmd(
    ref: Annotated[str, typer.Argument(help="Contact id or email")],
    as_json: JsonOpt = False,
) -> None:
    """The contact's predicted conversion, scored now, with its own top reasons: what each
    input adds to the log-odds against its typical value in the training examples."""
    a = get_app()
    cid = resolve(ref)
    found = predictive.contact_prediction(store=SqlPredictiveStore(a.engine), ctx=a.ctx,
                                          contact_id=cid, fresh=True, save=True)
    if as_json:
        print_json({"contact_id": cid, **found.as_dict()})
        return
    if found.version is None:
        _say("no model is active: leadflow model train, then leadflow model activate VERSION")
        return
    if found.prediction is None:
        _say(f"contact {cid}: {found.why_none}")
        return
    v, p = found.version, found.prediction
    _say(f"contact {cid}: {p.probability:.1%} chance of reaching {v.target} within "
         f"{v.horizon_days:g} days (model version {v.id})")
    for r in p.reasons:
        _say("  " + reason_line(r))
    if not p.reasons:
        _say("  every input is at its typical value")
