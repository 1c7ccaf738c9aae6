"""``ltv monitor``: score every past run of a store against newer data; alert Slack on drift.

    ltv monitor [--store STORE] --events PATH [--installs PATH] [--spend PATH] --out DIR

Writes ``DIR/monitor.csv`` (one row per run × group × checkpoint reached) and
``DIR/monitor.html``; posts one Slack message per model version whose recent error passed a
threshold (``LTV_MONITOR_MAPE_ALERT``, ``LTV_MONITOR_BIAS_ALERT``; printed when no webhook is
configured). Exit codes as every command: 0 success, 2 bad input (one line, nothing written),
1 anything else. docs/monitor.md has the whole contract.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]

#: Broken assumptions printed on the terminal; the page lists them all.
MAX_PRINTED = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    mon = subparsers.add_parser(
        "monitor", help="compare past runs' forecasts with what was realised; alert on drift")
    mon.add_argument("--store", default=None,
                     help="artifact store: a directory or s3://bucket/prefix "
                          "(default $LTV_STORE or ./ltv-runs)")
    mon.add_argument("--events", required=True,
                     help="newer events file (.csv or .parquet), or a warehouse directory")
    mon.add_argument("--installs", help="installs file (.csv or .parquet)")
    mon.add_argument("--spend", help="spend per campaign (.csv or .parquet)")
    mon.add_argument("--out", required=True, help="folder for monitor.csv and monitor.html")
    mon.set_defaults(func=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    import pandas as pd

    from ltvcore.monitor.alerts import send_alerts
    from ltvcore.monitor.core import run_monitor

    result, written = run_monitor(store=args.store, events=args.events, installs=args.installs,
                                  spend=args.spend, out=args.out)
    print(f"monitor of {result.store}, data through {result.data_end}: {result.compared} of "
          f"{result.listed} run(s) compared, {len(result.rows):,} row(s); "
          f"{len(result.pending)} too recent, {len(result.skipped)} left out")
    if not result.summary.empty:
        shown = result.summary[["model_version", "horizon_days", "forecasts", "mape", "bias",
                                "coverage"]].copy()
        for column in ("mape", "bias", "coverage"):
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}%")
        print(shown.to_string(index=False))
    for drift in result.drifts:
        print(f"drift: {drift.model_version} at day {drift.horizon_days}: "
              f"{'; '.join(drift.reasons)} (runs as of {drift.first_as_of} … {drift.last_as_of})")
    broken = [f for f in result.findings if f.status == "broken"]
    for finding in broken[:MAX_PRINTED]:
        print(f"broken: run {finding.run_id} ({finding.model_version}, as of {finding.as_of}), "
              f"{finding.group}: {finding.message}")
    if len(broken) > MAX_PRINTED:
        print(f"broken: … and {len(broken) - MAX_PRINTED} more (see monitor.html)")
    print(f"wrote {', '.join(str(p) for p in written)}")
    html = next(str(p.absolute()) for p in written if p.name == "monitor.html")
    for version, report in send_alerts(result.drifts, store=result.store, data_end=result.data_end,
                                       report=html, limits=result.limits):
        if report.delivered:
            print(f"alerted Slack ({', '.join(report.delivered)}) about {version}")
        for failed in report.failed:
            # The files are written and the drift is on the page: a lost message is a warning.
            print(f"warning: the drift alert about {version} did not reach {failed.channel}: "
                  f"{failed.error}", file=sys.stderr)
    return 0
