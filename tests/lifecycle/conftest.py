"""Fixtures for the model lifecycle: data old enough to train on, young data to forecast, the
``ltv`` command line with ``ltv models`` in it, and a store holding a trained version."""

from __future__ import annotations

import argparse
import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ltvcore.sample import write_sample

cli_main = importlib.import_module("ltvcore.cli.main")


@pytest.fixture(scope="session")
def old_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve campaigns observed for 100+ days: enough matured groups to train on."""
    folder = tmp_path_factory.mktemp("old")
    write_sample(folder, seed=3, install_days=20, observed_days=100, n_campaigns=12,
                 users_per_day=30)
    return folder


@pytest.fixture(scope="session")
def young_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six campaigns two weeks after their installs: what a registered model forecasts."""
    folder = tmp_path_factory.mktemp("young")
    write_sample(folder, seed=5, install_days=10, observed_days=14, n_campaigns=6,
                 users_per_day=30)
    return folder


def files(folder: Path) -> list[str]:
    return ["--events", str(folder / "events.csv"), "--installs", str(folder / "installs.csv"),
            "--spend", str(folder / "spend.csv")]


@pytest.fixture
def ltv(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """``ltv ARGS...`` as :func:`ltvcore.cli.main.main` runs it, with ``ltv models`` added.

    Until ``ltv models`` is wired into :mod:`ltvcore.cli.main` (and ``forecast --model`` takes
    any name the request accepts, not argparse's fixed choices) this adds both; once wired it
    changes nothing.
    """
    original = cli_main.build_parser

    def build() -> argparse.ArgumentParser:
        from ltvcore.cli import models

        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "models" not in sub.choices:
            models.add_parser(sub)
        for action in sub.choices["forecast"]._actions:
            if action.dest == "model":
                action.choices = None  # the request checks the name (and NAME@...)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    return lambda *args: cli_main.main([str(a) for a in args])


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory, old_data: Path) -> Path:
    """A store with one trained version of ``history`` (trained once per session; copy it)."""
    from ltvcore.lifecycle.registry import Registry
    from ltvcore.lifecycle.training import train
    from ltvcore.runs.store import open_store

    store = tmp_path_factory.mktemp("trained") / "store"
    train(events=str(old_data / "events.csv"), installs=str(old_data / "installs.csv"),
          spend=str(old_data / "spend.csv"), name="history",
          registry=Registry(open_store(store)), by_user="ana")
    return store


@pytest.fixture
def store(tmp_path: Path, trained_store: Path) -> Path:
    """A fresh copy of :func:`trained_store` for one test."""
    copy = tmp_path / "store"
    shutil.copytree(trained_store, copy)
    return copy
