"""``ltv warehouse ingest | refresh | status``: a local warehouse to keep adding to.

``ingest`` validates files by the input rules and adds them (the same file twice changes
nothing); ``refresh`` aggregates the new and changed dates only; ``status`` tells what the
warehouse holds and what is not aggregated yet. ``ltv forecast --events WAREHOUSE`` and
``ltv serve --data-dir`` read a refreshed warehouse's aggregates.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    wh = subparsers.add_parser("warehouse", help="ingest files into a warehouse and aggregate them")
    sub = wh.add_subparsers(dest="warehouse_command", required=True, metavar="{ingest,refresh,status}")

    ingest = sub.add_parser("ingest", help="validate files and add them to a warehouse")
    ingest.add_argument("warehouse", metavar="WAREHOUSE", help="the warehouse directory (created if absent)")
    ingest.add_argument("--events", help="events file (.csv or .parquet)")
    ingest.add_argument("--installs", help="installs file (.csv or .parquet)")
    ingest.add_argument("--spend", help="spend per campaign (.csv or .parquet)")
    ingest.add_argument("--refresh", action="store_true", help="aggregate the new dates right away")
    ingest.set_defaults(func=_ingest)

    refresh = sub.add_parser("refresh", help="aggregate the dates whose events changed")
    refresh.add_argument("warehouse", metavar="WAREHOUSE")
    refresh.set_defaults(func=_refresh)

    status = sub.add_parser("status", help="what a warehouse holds and what is not aggregated yet")
    status.add_argument("warehouse", metavar="WAREHOUSE")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=_status)


def _ingest(args: argparse.Namespace) -> int:
    from ltvcore.errors import InputError
    from ltvcore.warehouse.store import Warehouse

    if not (args.events or args.installs or args.spend):
        raise InputError("name at least one file to ingest (--events, --installs or --spend)",
                         column="events")
    warehouse = Warehouse(args.warehouse)
    done = warehouse.ingest(events=args.events, installs=args.installs, spend=args.spend)
    for role, what in done.items():
        if what == "unchanged":
            print(f"{role}: already ingested, unchanged")
        elif isinstance(what, dict):
            dates = what["dates"]
            print(f"{role}: {what['rows']:,} rows over {len(dates)} date(s) "
                  f"({dates[0]} … {dates[-1]})")
        else:
            print(f"{role}: {what:,} rows")
    if args.refresh:
        return _refresh(args)
    stale = warehouse.stale()
    if stale:
        print(f"{len(stale)} date(s) to aggregate: run ltv warehouse refresh {args.warehouse}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from ltvcore.warehouse.store import Warehouse

    report = Warehouse(args.warehouse).refresh()
    shown = ""
    if report.aggregated:
        first, last = report.aggregated[0], report.aggregated[-1]
        shown = f" ({first})" if first == last else f" ({first} … {last})"
    print(f"aggregated {len(report.aggregated)} date(s){shown}, {report.unchanged} unchanged, "
          f"{len(report.removed)} removed in {report.seconds:.2f} s; digest {report.digest[:12]}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ltvcore.errors import InputError
    from ltvcore.warehouse.layout import is_warehouse
    from ltvcore.warehouse.store import Warehouse

    if not is_warehouse(args.warehouse):
        raise InputError("not a warehouse (no warehouse.json)", file=args.warehouse)
    status = Warehouse(args.warehouse).status()
    if args.format == "json":
        print(json.dumps(status, indent=2))
        return 0
    for key, value in status.items():
        if key == "stale_dates":
            value = ", ".join(value) if value else "none"
        print(f"{key.replace('_', ' ')}: {value}")
    return 0
