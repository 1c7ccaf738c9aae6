"""``ltv models train | list | promote``: tracked training and the registry's lifecycle.

``train`` fits the history model on data cut at as-of, stores it as a content-addressed version
(``dev``) with its card and plots, and applies the challenger rule; ``list`` shows every
version's stage, metrics and who promoted it why; ``promote`` records a person's decision.
``ltv forecast --model NAME@champion`` (or ``NAME@VERSION``) then forecasts with a version
(docs/models.md). Exit codes: 0, 2 bad input (one line, nothing written), 1 other.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser"]

_STORE_HELP = "artifact store: a directory or s3://bucket/prefix (default $LTV_STORE or ./ltv-runs)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ltvcore.lifecycle.refs import SETTABLE_STAGES

    models = subparsers.add_parser("models", help="train, list and promote registered models")
    sub = models.add_subparsers(dest="models_command", required=True,
                                metavar="{train,list,promote}")

    train = sub.add_parser("train", help="train the history model and register a version")
    train.add_argument("--events", required=True,
                       help="events file (.csv or .parquet), or a warehouse directory")
    train.add_argument("--installs", help="installs file (.csv or .parquet)")
    train.add_argument("--spend", help="spend per campaign (.csv or .parquet)")
    train.add_argument("--as-of", help="last date whose data may be used (YYYY-MM-DD)")
    train.add_argument("--name", required=True, help="the registered model's name, e.g. history")
    train.add_argument("--store", default=None, help=_STORE_HELP)
    train.set_defaults(func=_train)

    listing = sub.add_parser("list", help="every version with its stage and metrics")
    listing.add_argument("--store", default=None, help=_STORE_HELP)
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_list)

    promote = sub.add_parser("promote", help="set a version's stage (who and why recorded)")
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION")
    promote.add_argument("--stage", required=True, choices=SETTABLE_STAGES)
    promote.add_argument("--by", required=True, help="who decides")
    promote.add_argument("--reason", required=True, help="why")
    promote.add_argument("--store", default=None, help=_STORE_HELP)
    promote.set_defaults(func=_promote)


def _registry(uri: str | None) -> Any:
    from ltvcore.cli.main import check_store
    from ltvcore.lifecycle.registry import Registry
    from ltvcore.runs.store import open_store

    check_store(uri)  # a bad --store is bad input, found before any work
    return Registry(open_store(uri))


def _headline(row: dict[str, Any]) -> tuple[str, str]:
    """``MAPE at H d`` and coverage of a version's rule horizon, for the table."""
    from ltvcore.lifecycle.rule import RULE_HORIZON

    horizons = (row.get("backtest") or {}).get("horizons") or {}
    if not horizons:
        return "-", "-"
    key = str(RULE_HORIZON) if str(RULE_HORIZON) in horizons else max(horizons, key=int)
    found = horizons[key]
    coverage = found.get("coverage")
    return (f"{found.get('mape', float('nan')):.1f}% @{key}d",
            "-" if coverage is None else f"{coverage:.1f}%")


def _train(args: argparse.Namespace) -> int:
    from ltvcore.lifecycle.training import train

    registry = _registry(args.store)
    done = train(events=args.events, installs=args.installs, spend=args.spend, as_of=args.as_of,
                 name=args.name, registry=registry)
    state = "new version" if done.created else "already registered, unchanged"
    print(f"{done.name}@{done.version} ({state}; stage {done.stage})")
    print(f"trained on data to {done.card.get('as_of')}, dataset {str(done.card.get('dataset_digest'))[:12]}, "
          f"code {done.card.get('code_version')}")
    horizons = (done.card.get("backtest") or {}).get("horizons") or {}
    if horizons:
        print("out-of-fold backtest:  horizon   MAPE   coverage")
        for horizon in sorted(horizons, key=int):
            found = horizons[horizon]
            coverage = found.get("coverage")
            print(f"                      {int(horizon):>5} d  {found['mape']:5.1f}%  "
                  f"{'-' if coverage is None else f'{coverage:.1f}%'}")
    if done.verdict is not None:
        outcome = "challenger" if done.verdict.challenger else "stays dev"
        print(f"challenger rule: {outcome} ({done.verdict.reason})")
    print(f"stored in {registry.uri}/models/{done.name}/{done.version}/ (plots.html: the "
          "out-of-fold forecasts against what happened)")
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args.store)
    rows = [version.row() for version in registry.versions()]
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no registered models in {registry.uri} (ltv models train --name NAME ...)")
        return 0
    table = [("name", "version", "stage", "mape", "coverage", "trained_at", "promoted_by", "reason")]
    for row in rows:
        mape, coverage = _headline(row)
        table.append((row["name"], row["version"], row["stage"], mape, coverage,
                      str(row.get("trained_at") or "")[:19], str(row.get("promoted_by") or ""),
                      _short(str(row.get("reason") or ""))))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0


def _short(text: str, size: int = 70) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _promote(args: argparse.Namespace) -> int:
    registry = _registry(args.store)
    written = registry.promote(args.name, args.version, args.stage, by=args.by, reason=args.reason)
    for event in written:
        print(f"{event.name}@{event.version}: {event.stage} (by {event.by}: {event.reason})")
    return 0
