"""The ``ltv`` command line (docs/interface.md, command line). Exit codes: 0 success, 2 bad input or usage, 1 other."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from ltvcore.errors import InputError, one_line

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2 (its default code)."""

    def error(self, message: str) -> NoReturn:  # pragma: no cover - exercised through main
        self.exit(2, f"ltv: error: {message}\n")


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers") from None


def build_parser() -> argparse.ArgumentParser:
    from ltvcore.request import MODELS, RETENTIONS, ForecastRequest

    default = {name: info.default for name, info in ForecastRequest.model_fields.items()}
    parser = _Parser(prog="ltv", description="Campaign LTV forecasts with honest intervals.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fc = sub.add_parser("forecast", help="forecast LTV per group and horizon")
    fc.add_argument("--events", required=True,
                    help="events file (.csv or .parquet), or a warehouse directory (ltv warehouse)")
    fc.add_argument("--installs", help="installs file (.csv or .parquet)")
    fc.add_argument("--spend", help="spend per campaign (.csv or .parquet); enables ROAS")
    fc.add_argument("--by", type=_csv_list, default=list(default["by"]),
                    help="group columns of installs, comma-separated (default campaign)")
    fc.add_argument("--as-of", help="last date whose data may be used (YYYY-MM-DD)")
    fc.add_argument("--observe-days", type=int, default=default["observe_days"],
                    help="only cohorts with at least this many observed days feed the fit")
    fc.add_argument("--horizons", type=_int_list, default=list(default["horizons"]))
    fc.add_argument("--confidence", type=float, default=default["confidence"])
    fc.add_argument("--target-roas", type=float, default=default["target_roas"],
                    help="ROAS that counts as paid back, for p_payback and days to payback "
                         "(default 1.0: break-even)")
    fc.add_argument("--model", default=default["model"],
                    help=f"{', '.join(MODELS)}, or a registered model: NAME@champion, "
                         "NAME@challenger or NAME@VERSION (ltv models)")
    fc.add_argument("--retention", default=default["retention"], choices=RETENTIONS)
    fc.add_argument("--window-days", type=int, default=default["window_days"],
                    help="use only cohorts installed within this many days before as-of")
    fc.add_argument("--out", "--store", dest="store", default=None,
                    help="artifact store: a directory or s3://bucket/prefix "
                         "(default $LTV_STORE or ./ltv-runs); the run goes to STORE/runs/<run_id>/")
    fc.add_argument("--requested-by", default=None, help="who asked (recorded in the manifest)")
    fc.add_argument("--quiet", action="store_true", help="print only the run directory")
    fc.set_defaults(func=_forecast)

    sm = sub.add_parser("sample", help="write synthetic sample data with known truth")
    sm.add_argument("--out", required=True, help="directory for events/installs/spend/truth")
    sm.add_argument("--seed", type=int, default=7)
    sm.add_argument("--install-days", type=int, default=30)
    sm.add_argument("--observed-days", type=int, default=30)
    sm.add_argument("--campaigns", type=int, default=12)
    sm.add_argument("--users-per-day", type=float, default=60.0)
    sm.add_argument("--kind", choices=("game", "purchase"), default="game")
    sm.add_argument("--format", choices=("csv", "parquet"), default="csv")
    sm.set_defaults(func=_sample)

    bt = sub.add_parser("backtest", help="forecast as of past dates and score against what happened")
    bt.add_argument("--events", required=True)
    bt.add_argument("--installs")
    bt.add_argument("--spend")
    bt.add_argument("--by", type=_csv_list, default=list(default["by"]))
    when = bt.add_mutually_exclusive_group()
    when.add_argument("--as-of-dates", type=_csv_list, help="comma-separated as-of dates")
    when.add_argument("--every", type=int, default=7,
                      help="a rolling schedule: an as-of date every N days (default 7)")
    bt.add_argument("--first", help="first as-of date of the rolling schedule")
    bt.add_argument("--last", help="last as-of date of the rolling schedule")
    bt.add_argument("--models", type=_csv_list, default=["curve", "geometric"],
                    help=f"models to compare, comma-separated (from {', '.join(MODELS)})")
    bt.add_argument("--observe-days", type=int, default=default["observe_days"])
    bt.add_argument("--horizons", type=_int_list, default=list(default["horizons"]))
    bt.add_argument("--confidence", type=float, default=default["confidence"])
    bt.add_argument("--retention", default=default["retention"], choices=RETENTIONS)
    bt.add_argument("--out", default="backtest", help="folder for backtest.csv and backtest.html")
    bt.set_defaults(func=_backtest)

    rp = sub.add_parser("reproduce", help="re-run a run from its own artifacts and compare")
    rp.add_argument("run", help="a run directory or s3://bucket/prefix/runs/<run_id>")
    rp.set_defaults(func=_reproduce)

    from ltvcore.cli.runs import add_parsers as add_run_parsers

    add_run_parsers(sub)
    from ltvcore.cli.serve import add_parser as add_serve_parser

    add_serve_parser(sub)
    from ltvcore.cli.warehouse import add_parser as add_warehouse_parser

    add_warehouse_parser(sub)
    from ltvcore.cli.models import add_parser as add_models_parser

    add_models_parser(sub)
    from ltvcore.cli.monitor import add_parser as add_monitor_parser

    add_monitor_parser(sub)
    return parser


def check_store(uri: str | None) -> None:
    """A bad ``--out``/``--store`` is bad input (exit 2), found before any work is done."""
    from ltvcore.runs.store import open_store

    try:
        open_store(uri)
    except ValueError as error:
        raise InputError(str(error), column="out") from None


def _forecast(args: argparse.Namespace) -> int:
    from ltvcore.request import ForecastRequest
    from ltvcore.workflow.run import forecast_to_store

    request = ForecastRequest(
        by=tuple(args.by), as_of=args.as_of, observe_days=args.observe_days,
        horizons=tuple(args.horizons), confidence=args.confidence, model=args.model,
        retention=args.retention, window_days=args.window_days, target_roas=args.target_roas,
    )
    check_store(args.store)
    from ltvcore.cli.progress import StageDisplay

    with StageDisplay.for_terminal(args.quiet) as progress:
        outcome = forecast_to_store(request, events=args.events, installs=args.installs,
                                    spend=args.spend, store=args.store,
                                    requested_by=args.requested_by, progress=progress)
    if args.quiet:
        print(outcome.location)
        return 0
    print(outcome.table())
    for warning in outcome.warnings:
        print(f"warning: {warning}")
    state = "reused existing run" if outcome.reused else "new run"
    print(f"\nrun {outcome.run_id} ({state}): {outcome.location}")
    print(f"report: {outcome.location}/report.html")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from ltvcore.request import MODELS, ForecastRequest, is_iso_date
    from ltvcore.workflow.backtest import backtest, schedule, summarise, write_chart
    from ltvcore.workflow.forecast import load_inputs

    for model in args.models:
        if model not in MODELS:
            raise InputError(f"'{model}' is not a model (choose from {', '.join(MODELS)})",
                             column="models")
    request = ForecastRequest(by=tuple(args.by), observe_days=args.observe_days,
                              horizons=tuple(args.horizons), confidence=args.confidence,
                              retention=args.retention)
    if args.every < 1:
        raise InputError(f"{args.every} must be a whole number of days >= 1", column="every")
    for name in ("first", "last"):
        value = getattr(args, name)
        if value is not None and not is_iso_date(value):
            raise InputError(f"{value[:40]!r} is not a date YYYY-MM-DD", column=name)
    inputs = load_inputs(args.events, args.installs, args.spend)
    dates = args.as_of_dates or schedule(inputs, every=args.every, first=args.first, last=args.last)
    for date in dates:
        ForecastRequest(as_of=date)  # one clear message for a malformed date
    if not dates:
        raise InputError("no as-of date to backtest", column="as_of_dates")
    rows = backtest(inputs, request, as_of_dates=dates, models=args.models)
    summary = summarise(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "backtest.csv", index=False)
    summary.to_csv(out / "backtest_summary.csv", index=False)
    write_chart(summary, out / "backtest.html")
    shown = summary.copy()
    for column in ("mape", "bias", "coverage", "width"):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}%")
    shown["checkpoint"] = shown["checkpoint"].map({True: "yes", False: ""})
    print(f"backtest over {len(dates)} as-of date(s): {dates[0]} … {dates[-1]}")
    print(shown.to_string(index=False))
    print(f"\nwrote {out / 'backtest.csv'}, {out / 'backtest_summary.csv'}, {out / 'backtest.html'}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from ltvcore.workflow.reproduce import reproduce

    result = reproduce(args.run)
    if result.refused:
        print(f"refused: run {result.run_id} does not match its manifest, so it was not reproduced")
        for line in result.refused:
            print(f"  {line}")
        return 1
    for label, versions in (("ran with", result.ran_with), ("run used", result.recorded)):
        packages = ", ".join(f"{k} {v}" for k, v in versions["packages"].items())
        print(f"{label}: code {versions['version']} commit {versions['git_commit'] or 'unknown'}, "
              f"python {versions['python']}; {packages}")
    for line in result.environment:
        print(f"warning: {line}")
    compared = f"{len(result.compared)} files compared ({', '.join(result.compared)})"
    if result.identical:
        print(f"identical: run {result.run_id} reproduced value for value; {compared}, no cache used")
        return 0
    print(f"different: run {result.run_id} did not reproduce; {compared}")
    for name, lines in result.differences.items():
        print(f"  {name}:")
        for line in lines:
            print(f"    {line}")
    return 1


def _sample(args: argparse.Namespace) -> int:
    from ltvcore.sample import write_sample

    info = write_sample(args.out, seed=args.seed, install_days=args.install_days,
                        observed_days=args.observed_days, n_campaigns=args.campaigns,
                        users_per_day=args.users_per_day, kind=args.kind, fmt=args.format)
    print(f"sample data ({info['users']} users, {info['events']} events, as-of {info['as_of']}) "
          f"in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors and --help: a code, not an exception, for callers
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"ltv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ltv: interrupted; nothing was published", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a user sees one line, never a traceback
        if os.environ.get("LTV_DEBUG"):
            raise
        print(f"ltv: failed: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        return 1
