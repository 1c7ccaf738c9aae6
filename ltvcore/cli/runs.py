"""Subcommands ``ltv audit verify RUN``, ``ltv runs list [--store URI]`` and ``ltv runs reindex``.

:func:`add_parsers` is called by :mod:`ltvcore.cli`; every subcommand sets
``func``, a handler ``(args) -> exit code``. Exit codes follow the contract:
0 success, 2 usage, 1 anything else (including a run that fails verification).
"""
from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ltvcore.runs.audit import verify
from ltvcore.runs.store import STORE_ENV, open_store

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parsers", "audit_verify", "runs_list", "runs_reindex"]


def _usage(parser: argparse.ArgumentParser) -> Any:
    def handler(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        return 2

    return handler


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``audit`` and ``runs`` to the ``ltv`` command's subparsers."""
    audit = subparsers.add_parser("audit", help="check that a run's artifacts are intact")
    audit.set_defaults(func=_usage(audit))
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="{verify}")
    check = audit_sub.add_parser(
        "verify",
        help="recompute every digest of a run and compare with its manifest",
        description="Exit 0 when intact; else exit 1 naming each missing, altered or extra file.",
    )
    check.add_argument("run", metavar="RUN", help="a run directory or s3://bucket/prefix/runs/<run_id>")
    check.set_defaults(func=audit_verify)

    runs = subparsers.add_parser("runs", help="runs in the artifact store")
    runs.set_defaults(func=_usage(runs))
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="{list,reindex}")
    listing = runs_sub.add_parser("list", help="list runs, newest first")
    reindex = runs_sub.add_parser(
        "reindex",
        help="rebuild the run index from every run in the store",
        description="Scan every run and write its index entry (what listing reads): once for a "
        "store that older versions wrote to, e.g. after an upgrade. Exit 0 with the count.",
    )
    for command, handler in ((listing, runs_list), (reindex, runs_reindex)):
        command.add_argument(
            "--store",
            metavar="URI",
            default=None,
            help=f"directory or s3://bucket/prefix (default: ${STORE_ENV}, else ./ltv-runs)",
        )
        command.set_defaults(func=handler)


def audit_verify(args: argparse.Namespace) -> int:
    """Handler of ``ltv audit verify RUN``."""
    try:
        result = verify(args.run)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # S3 access, permissions: a message, never a traceback
        print(f"error: cannot verify {args.run}: {error}", file=sys.stderr)
        return 1
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1


def _short_time(text: Any) -> str:
    if not isinstance(text, str):
        return "-"
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text


def _store(args: argparse.Namespace) -> Any:
    """The ``--store`` argument's store, or None after printing why it is not one."""
    try:
        return open_store(getattr(args, "store", None))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def runs_list(args: argparse.Namespace) -> int:
    """Handler of ``ltv runs list [--store URI]``: a plain aligned table."""
    store = _store(args)
    if store is None:
        return 2
    try:
        runs = store.list_runs()
    except Exception as error:  # S3 access, permissions: a message, never a traceback
        print(f"error: cannot list runs in {store.uri}: {error}", file=sys.stderr)
        return 1
    if not runs:
        print(f"no runs in {store.uri}")
        return 0
    rows = [("RUN ID", "CREATED (UTC)", "STATUS", "REQUEST")]
    rows += [(run["run_id"], _short_time(run.get("created")), run["status"], run.get("summary") or "") for run in runs]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths)]
        print("  ".join([*cells, row[3]]).rstrip())
    return 0


def runs_reindex(args: argparse.Namespace) -> int:
    """Handler of ``ltv runs reindex [--store URI]``."""
    store = _store(args)
    if store is None:
        return 2
    try:
        count = store.rebuild_index()
    except Exception as error:  # S3 access, permissions: a message, never a traceback
        print(f"error: cannot index the runs in {store.uri}: {error}", file=sys.stderr)
        return 1
    print(f"indexed {count} run{'' if count == 1 else 's'} in {store.uri}")
    return 0
