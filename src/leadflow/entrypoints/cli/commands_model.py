"""`leadflow model evaluate`: leadflow's conversion model against two baselines on a labelled
file, with a split fixed before any model is fitted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.adapters.csv_mapping import load_mapping, shipped_mappings
from leadflow.adapters.ml.dataset import LabelledFile, load_exclusions, read_labelled_csv
from leadflow.domain.errors import InvalidInput
from leadflow.domain.evaluation import SPLITS, Evaluation
from leadflow.domain.naive_bayes import FrequencyNaiveBayes
from leadflow.entrypoints.cli.base import app, friendly_errors
from leadflow.entrypoints.cli.output import console, print_json, table
from leadflow.services.model_evaluation import INNER_SHARE, TEST_SHARE, evaluate_models

model_app = typer.Typer(help="The predictive conversion model.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("evaluate")
@friendly_errors
def evaluate_cmd(
    csv: Annotated[Path, typer.Option("--csv", help="The labelled CSV file (header on line 1).")],
    mapping: Annotated[str, typer.Option(
        "--mapping", "-m",
        help=f"Mapping YAML file, or a shipped mapping: {', '.join(shipped_mappings())}.")],
    label: Annotated[str | None, typer.Option(
        help="The label: the mapping's label attribute or column, or any yes/no (1/0) column "
             "of the file. Default: the mapping's label.")] = None,
    split: Annotated[str | None, typer.Option(
        help="time: the latest 20 % of the rows (by the mapping's stage.at) are the test part; "
             "seeded: a random 20 % of each class. Default: time when the mapping dates "
             "its rows, else seeded.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the models.")] = 7,
    exclude: Annotated[list[str] | None, typer.Option(
        help="An attribute or column never to read (again for more), besides what the "
             "mapping's model.leaking and model.ignore name.")] = None,
    exclude_config: Annotated[Path | None, typer.Option(
        help="A YAML file listing more of them: exclude: [Tags, lead_quality].")] = None,
    join_file: Annotated[Path | None, typer.Option(
        help="The second file the mapping joins (default: its join.file, in the CSV's "
             "folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Train on the training part, measure on the test part: leadflow's model beside a
    frequency-table naive Bayes (as Odoo CRM) and a plain one-hot logistic regression.

    Columns the mapping marks as leaking, and those excluded, are dropped from every record
    before anything is read; the output lists them and the columns that were read.
    """
    spec = load_mapping(mapping)
    names = list(exclude or [])
    if exclude_config is not None:
        names += load_exclusions(exclude_config)
    data = read_labelled_csv(csv, spec, label=label, exclude=names, join_path=join_file)
    kind = split or ("time" if data.time else "seeded")
    if kind not in SPLITS:
        raise InvalidInput(f"unknown split {kind!r} (allowed: {', '.join(SPLITS)})",
                           field="--split")
    if kind == "time" and data.time is None:
        raise InvalidInput(f"a time-ordered split needs the time each row entered, and the "
                           f"mapping {spec.source} has no stage.at column: use --split seeded",
                           field="--split")
    # scikit-learn takes a second or two to import: only the commands that train pay it.
    from leadflow.adapters.ml.learners import LeadflowModel, OneHotLogistic
    result = evaluate_models(rows=data.rows, split=kind, seed=seed, learners=[
        LeadflowModel(), FrequencyNaiveBayes(), OneHotLogistic()])
    report = _report(csv, spec.source, data, result)
    if as_json:
        print_json(report)
    else:
        _show(report)


def _report(csv: Path, mapping: str, data: LabelledFile, ev: Evaluation) -> dict[str, Any]:
    split = ev.split
    return {
        "file": str(csv), "mapping": mapping, "label": data.label, "rows": ev.rows,
        "positives": ev.positives,
        "skipped": [{"line": line, "reason": why} for line, why in data.skipped],
        "split": {
            "kind": split.kind, "seed": ev.seed, "test_share": TEST_SHARE,
            "time_column": data.time if split.kind == "time" else None,
            "test_from": _day(split.cutoff),
            "train": {"rows": len(split.train), "positives": ev.train_positives},
            "test": {"rows": len(split.test), "positives": ev.test_positives},
            "inner": {"share": INNER_SHARE, "fit_rows": len(ev.inner.train),
                      "validation_rows": len(ev.inner.test),
                      "validation_from": _day(ev.inner.cutoff)},
        },
        "features": [{"name": f.name, "kind": f.kind, "column": f.source} for f in ev.features],
        "columns_read": list(data.columns_read),
        "not_read": [{"name": n.name, "column": n.column, "reason": n.reason}
                     for n in data.not_read],
        "models": [{"name": r.name, "auc": round(r.metrics.auc, 4),
                    "average_precision": round(r.metrics.average_precision, 4),
                    "brier": round(r.metrics.brier, 4),
                    "lift_top_decile": round(r.metrics.lift_top_decile, 3),
                    "details": r.details} for r in ev.results],
    }


def _day(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def _show(r: dict[str, Any]) -> None:
    def say(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    s = r["split"]
    rate = r["positives"] / r["rows"]
    say(f"{r['file']} ({r['mapping']}): {r['rows']:,} rows, {r['positives']:,} positive "
        f"({rate:.1%}); label {r['label']}")
    if r["skipped"]:
        first = r["skipped"][0]
        say(f"skipped {len(r['skipped']):,} row(s) (line {first['line']}: {first['reason']})")
    how = (f"time-ordered on {s['time_column']}, test from {s['test_from']}"
           if s["kind"] == "time" else "seeded, stratified")
    say(f"split: {how}; seed {s['seed']}; train {s['train']['rows']:,} rows "
        f"({s['train']['positives']:,} positive), test {s['test']['rows']:,} rows "
        f"({s['test']['positives']:,} positive); inner validation "
        f"{s['inner']['validation_rows']:,} rows of the training part")
    say(f"features ({len(r['features'])}): {', '.join(f['name'] for f in r['features'])}")
    if r["not_read"]:
        say("not read: " + "; ".join(
            f"{n['name']}" + (f" ({n['column']})" if n["column"] and n["column"] != n["name"]
                              else "") + f": {n['reason']}" for n in r["not_read"]))
    table("metrics on the test part", ["model", "AUC", "avg precision", "Brier",
                                       "lift top 10%"],
          [[m["name"], f"{m['auc']:.3f}", f"{m['average_precision']:.3f}", f"{m['brier']:.3f}",
            f"{m['lift_top_decile']:.2f}"] for m in r["models"]])
    for m in r["models"]:
        say(f"{m['name']}: {m['details']}")
