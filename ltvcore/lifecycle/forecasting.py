"""Forecasting with a registered model: pin the reference, then load the verified artifact.

A request may name ``NAME@champion`` (or ``@challenger``); what it means changes when someone
promotes another version. So the reference is *pinned* to ``NAME@VERSION`` before the run is
named (:func:`pin_request`): the run id rests on the exact version, a new champion gives a new
run rather than the old one, and the run's recorded request reproduces with the same artifact.

:func:`pin_request` is pure Python plus the store (the API Lambda calls it on submit);
:func:`registered_model` imports the model's code only when a run computes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ltvcore.lifecycle.refs import is_ref, parse_ref

if TYPE_CHECKING:
    from ltvcore.models.base import ForecastModel
    from ltvcore.models.registry import ModelOptions
    from ltvcore.request import ForecastRequest
    from ltvcore.runs.store import ArtifactStore

__all__ = ["LOADERS", "needs_lightgbm", "pin_request", "registered_model", "store_of_run"]


def _registry(store: ArtifactStore | str | os.PathLike[str] | None) -> Any:
    from ltvcore.lifecycle.registry import Registry
    from ltvcore.runs.store import ArtifactStore, open_store

    return Registry(store if isinstance(store, ArtifactStore) else open_store(store))


def pin_request(request: ForecastRequest, store: ArtifactStore | str | os.PathLike[str] | None, *,
                check: bool = True) -> ForecastRequest:
    """``request`` with a registered model's alias replaced by the version it names now.

    A model that is not a reference is returned unchanged (without touching the store). A
    pinned ``NAME@VERSION`` is checked to exist unless ``check`` is False (bad input then:
    :class:`~ltvcore.errors.InputError` on ``model``, before any work).
    """
    if not is_ref(request.model):
        return request
    ref = parse_ref(request.model)
    if ref.pinned and not check:
        return request
    pinned = _registry(store).resolve(ref)
    return request if str(pinned) == request.model else request.replace(model=str(pinned))


def needs_lightgbm() -> None:
    """The history model's booster is LightGBM's: say so plainly where it is not installed."""
    import importlib.util

    if importlib.util.find_spec("lightgbm") is None:
        from ltvcore.errors import InputError

        raise InputError("a registered history model needs LightGBM, which is not installed "
                         "here (pip install lightgbm)", column="model")


def _history(model: bytes, card: dict[str, Any], options: ModelOptions) -> ForecastModel:
    needs_lightgbm()
    from ltvcore.models.history import HistoryModel, TrainedHistory

    return HistoryModel.from_trained(TrainedHistory.from_bytes(model), confidence=options.confidence,
                                     horizons=options.horizons)


#: How to turn a stored version back into a model, by the card's ``model`` (the trained family).
LOADERS: dict[str, Callable[[bytes, dict[str, Any], ModelOptions], ForecastModel]] = {
    "history": _history,
}


def registered_model(reference: str, store: ArtifactStore | str | os.PathLike[str] | None,
                     options: ModelOptions) -> tuple[ForecastModel, str]:
    """The forecast model of a registered version and its pinned ``NAME@VERSION``.

    The artifact is verified against its manifest first; a tampered one raises
    :class:`~ltvcore.lifecycle.registry.ModelIntegrityError` and is never used.
    """
    registry = _registry(store)
    ref = registry.resolve(reference)
    model, card = registry.load(ref.name, ref.target)
    family = str(card.get("model") or "")
    if family not in LOADERS:
        raise ValueError(f"model {ref} was trained as {family!r}, which this code cannot load "
                         f"(known: {', '.join(LOADERS)})")
    return LOADERS[family](model, card, options), str(ref)


def store_of_run(run: str | os.PathLike[str]) -> str | None:
    """The store a run lives in (``<store>/runs/<run_id>``), or None when it is not in one.

    ``ltv reproduce`` loads a run's registered model from the store beside it.
    """
    from pathlib import Path

    text = os.fspath(run).rstrip("/")
    if text.startswith("s3://"):
        from ltvcore.runs.store import parse_s3_run_uri

        bucket, prefix, _run_id = parse_s3_run_uri(text)
        return f"s3://{bucket}/{prefix}".rstrip("/")
    path = Path(text).resolve()
    return str(path.parent.parent) if path.parent.name == "runs" else None
