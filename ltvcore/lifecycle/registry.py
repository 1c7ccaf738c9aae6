"""The model registry: content-addressed versions and their stage events, in the artifact store.

Layout (the same keys in a local directory and under an S3 prefix)::

    <root>/models/<name>/<version>/model.bin      the trained model's bytes
    <root>/models/<name>/<version>/card.json      params, dataset digest, as-of, code, metrics
    <root>/models/<name>/<version>/plots.html     out-of-fold forecast vs actual (self-contained)
    <root>/models/<name>/<version>/manifest.json  sha256 of each file above, sealed; written last
    <root>/models/<name>/stages/<inverted-ms>-<version>-<stage>.json   {stage, by, reason, at}

A version is visible once its manifest is stored, and every object is written once
(:mod:`ltvcore.lifecycle.objects`): a version never changes. Its id is the first 16 hex of
``sha256(name, sha256(model.bin))``: the same training on the same data (deterministic bytes)
gives the same version, and a loaded version is checked to still hash to its own id.

Stages are not a mutable field but a log: each change is a new event object, and a version's
stage is its newest event. ``<inverted-ms>`` (10^13 − milliseconds) makes a plain ascending key
listing newest first. Promoting a champion records the new champion, then ``archived`` for the
previous one; should two promotions race (or a process die between the two writes), the newest
champion event wins and any other version still marked champion is read as archived, so a name
never has two champions.

Pure Python plus the store, so the API Lambda can list, resolve and promote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ltvcore.canonical import utc_now
from ltvcore.errors import InputError
from ltvcore.lifecycle.objects import Objects, objects_for
from ltvcore.lifecycle.refs import SETTABLE_STAGES, STAGES, VERSION, ModelRef, check_name, parse_ref
from ltvcore.lifecycle.rule import Verdict, challenger_verdict
from ltvcore.runs.manifest import (
    MANIFEST_NAME,
    ManifestError,
    compare_files,
    manifest_bytes,
    manifest_files,
    manifest_integrity,
    read_manifest,
)

if TYPE_CHECKING:
    from ltvcore.runs.store import ArtifactStore

__all__ = ["MODELS_DIR", "ModelIntegrityError", "ModelVersion", "Registry", "StageEvent",
           "version_id"]

MODELS_DIR = "models"
STAGES_DIR = "stages"
MODEL_FILE, CARD_FILE, PLOTS_FILE = "model.bin", "card.json", "plots.html"
MODEL_MANIFEST_VERSION = 1
_INVERT = 10**13  # milliseconds until the year 2286: 13 digits keep the keys' order


class ModelIntegrityError(Exception):
    """A stored version does not match its manifest (or its own id): refused, never loaded."""


def version_id(name: str, model_sha256: str) -> str:
    """The content-addressed id of ``name``'s model whose bytes hash to ``model_sha256``."""
    return hashlib.sha256(f"{check_name(name)}\n{model_sha256}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageEvent:
    name: str
    version: str
    stage: str
    by: str
    reason: str
    at: str
    key: str = ""


@dataclass
class ModelVersion:
    """A stored version, its card and its current stage (as :meth:`Registry.versions` lists it)."""

    name: str
    version: str
    card: dict[str, Any]
    stage: str = "dev"
    event: StageEvent | None = None
    history: list[StageEvent] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def row(self) -> dict[str, Any]:
        """``ltv models list --format json``'s object (and the models page's row)."""
        card = self.card
        return {
            "name": self.name, "version": self.version, "stage": self.stage,
            "metrics": card.get("metrics"), "backtest": card.get("backtest"),
            "trained_at": card.get("trained_at"), "trained_by": card.get("trained_by"),
            "promoted_by": self.event.by if self.event else None,
            "reason": self.event.reason if self.event else None,
            "promoted_at": self.event.at if self.event else None,
            "model": card.get("model"), "as_of": card.get("as_of"),
            "dataset_digest": card.get("dataset_digest"), "code_version": card.get("code_version"),
        }


def _ms(moment: str) -> int:
    parsed = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return int(parsed.timestamp() * 1000)


def _iso_ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Registry:
    """Named models' versions and stages in one artifact store (local directory or S3)."""

    def __init__(self, store: ArtifactStore | Objects) -> None:
        self.objects = store if isinstance(store, Objects) else objects_for(store)

    @property
    def uri(self) -> str:
        return self.objects.uri

    # -- keys ---------------------------------------------------------------
    @staticmethod
    def _version_key(name: str, version: str, file: str = "") -> str:
        return f"{MODELS_DIR}/{name}/{version}" + (f"/{file}" if file else "")

    # -- versions -----------------------------------------------------------
    def register(self, name: str, *, model: bytes, card: Mapping[str, Any],
                 plots: bytes | None = None, by: str) -> tuple[str, bool]:
        """Store a trained model as a version of ``name``; ``(version, created)``.

        The same bytes again (the same training on the same data) are the same version: nothing
        is written and ``created`` is False. A new version's first stage event is ``dev``.
        """
        check_name(name)
        digest = hashlib.sha256(model).hexdigest()
        version = version_id(name, digest)
        if self.exists(name, version):
            return version, False
        card = {**card, "name": name, "version": version, "model_sha256": digest}
        files = {MODEL_FILE: model,
                 CARD_FILE: (json.dumps(card, indent=2, sort_keys=True, default=str) + "\n").encode()}
        if plots is not None:
            files[PLOTS_FILE] = plots
        for file, body in files.items():
            kind = {"json": "application/json", "html": "text/html"}.get(file.rsplit(".", 1)[-1])
            self.objects.put_if_absent(self._version_key(name, version, file), body, kind)
        # The manifest lists what is stored (read back), not what this process meant to store:
        # an earlier attempt that died before its manifest may have left a card of its own.
        stored = self.objects.list(self._version_key(name, version))
        listed = {}
        for file, size in stored.items():
            if file == MANIFEST_NAME:
                continue
            listed[file] = {"sha256": self.objects.sha256(self._version_key(name, version, file)),
                            "bytes": size}
        if listed.get(MODEL_FILE, {}).get("sha256") != digest:
            raise ModelIntegrityError(f"{self.objects.location(self._version_key(name, version))}"
                                      f"/{MODEL_FILE} holds other bytes than its version id says")
        content = {"manifest_version": MODEL_MANIFEST_VERSION, "kind": "model", "name": name,
                   "version": version, "created": utc_now(), "files": listed}
        created = self.objects.put_if_absent(self._version_key(name, version, MANIFEST_NAME),
                                             manifest_bytes(content), "application/json")
        if created:
            self.record(name, version, "dev", by=by, reason="trained")
        return version, created

    def exists(self, name: str, version: str) -> bool:
        """Whether ``name`` has a complete (manifest-sealed) version ``version``."""
        return self.objects.exists(self._version_key(name, version, MANIFEST_NAME))

    def verify(self, name: str, version: str) -> list[str]:
        """What is wrong with a stored version (empty: intact), every digest from stored bytes."""
        prefix = self._version_key(name, version)
        present = self.objects.list(prefix)
        if MANIFEST_NAME not in present:
            return [f"{MANIFEST_NAME} is missing" if present else "nothing is stored"]
        raw = self.objects.read(f"{prefix}/{MANIFEST_NAME}")
        try:
            manifest = read_manifest(raw)
            expected = manifest_files(manifest)
            problems = [f"{MANIFEST_NAME}: {reason}" for reason in manifest_integrity(raw)]
        except ManifestError as error:
            return [f"{MANIFEST_NAME} is unreadable: {error}"]
        if (manifest.get("name"), manifest.get("version")) != (name, version):
            problems.append(f"{MANIFEST_NAME} is for {manifest.get('name')}@"
                            f"{manifest.get('version')}, not {name}@{version}")
        files = {file: size for file, size in present.items() if file != MANIFEST_NAME}
        comparison = compare_files(expected, files, lambda file: self.objects.sha256(f"{prefix}/{file}"))
        if not comparison.ok:
            problems.append(comparison.describe())
        model = expected.get(MODEL_FILE)
        if model is None:
            problems.append(f"the manifest lists no {MODEL_FILE}")
        elif version_id(name, model.sha256) != version:
            problems.append(f"{MODEL_FILE} does not hash to version {version}")
        return problems

    def load(self, name: str, version: str) -> tuple[bytes, dict[str, Any]]:
        """A version's model bytes and card, verified first (:class:`ModelIntegrityError`)."""
        if not self.exists(name, version):
            raise InputError(f"no version {version} of model '{name}' in {self.uri} "
                             "(ltv models list shows the versions)", column="model")
        problems = self.verify(name, version)
        if problems:
            raise ModelIntegrityError(f"model {name}@{version} does not match its manifest, so it "
                                      f"was not used: {'; '.join(problems)}")
        prefix = self._version_key(name, version)
        model = self.objects.read(f"{prefix}/{MODEL_FILE}")
        card = json.loads(self.objects.read(f"{prefix}/{CARD_FILE}"))
        # read after verifying: bytes that changed in between are caught by their digest
        if hashlib.sha256(model).hexdigest() != card.get("model_sha256") \
                or version_id(name, hashlib.sha256(model).hexdigest()) != version:
            raise ModelIntegrityError(f"model {name}@{version} changed while it was read")
        return model, card

    def read_file(self, name: str, version: str, file: str) -> bytes:
        """One file of a complete version (e.g. ``plots.html``); ``FileNotFoundError`` if none."""
        if file not in (MODEL_FILE, CARD_FILE, PLOTS_FILE, MANIFEST_NAME) \
                or not self.exists(name, version):
            raise FileNotFoundError(f"{name}@{version}/{file}")
        return self.objects.read(self._version_key(name, version, file))

    def names(self) -> list[str]:
        """Every model name with at least one object stored."""
        return sorted({key.split("/", 1)[0] for key in self.objects.list(MODELS_DIR)})

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every complete version (of ``name``, or of every name) with its current stage,
        newest training first."""
        found: list[ModelVersion] = []
        for model_name in ([check_name(name)] if name is not None else self.names()):
            stored = self.objects.list(f"{MODELS_DIR}/{model_name}")
            events = self._events(model_name, stored)
            for key in stored:
                version, _, file = key.partition("/")
                if file != MANIFEST_NAME or not VERSION.fullmatch(version):
                    continue
                try:
                    card = json.loads(self.objects.read(self._version_key(model_name, version, CARD_FILE)))
                except (FileNotFoundError, ValueError):
                    card = {}
                found.append(ModelVersion(model_name, version, card if isinstance(card, dict) else {},
                                          history=[e for e in events if e.version == version]))
            _assign_stages([v for v in found if v.name == model_name])
        found.sort(key=lambda v: (v.name, str(v.card.get("trained_at") or "")), reverse=True)
        found.sort(key=lambda v: v.name)
        return found

    def _events(self, name: str, stored: Mapping[str, int] | None = None) -> list[StageEvent]:
        """``name``'s stage events, newest first."""
        if stored is None:
            stored = {f"{STAGES_DIR}/{k}": s for k, s in
                      self.objects.list(f"{MODELS_DIR}/{name}/{STAGES_DIR}").items()}
        events = []
        for key in sorted(k for k in stored if k.startswith(f"{STAGES_DIR}/")):
            try:
                body = json.loads(self.objects.read(f"{MODELS_DIR}/{name}/{key}"))
            except (FileNotFoundError, ValueError):
                continue
            if not isinstance(body, dict) or body.get("stage") not in STAGES:
                continue
            events.append(StageEvent(name=name, version=str(body.get("version")),
                                     stage=body["stage"], by=str(body.get("by") or ""),
                                     reason=str(body.get("reason") or ""),
                                     at=str(body.get("at") or ""), key=key))
        return events

    # -- stages -------------------------------------------------------------
    def record(self, name: str, version: str, stage: str, *, by: str, reason: str) -> StageEvent:
        """Append one stage event (no checks: :meth:`promote` is the checked way)."""
        newest = self._events(name)
        # Strictly after the name's newest event, even within one millisecond (or with a clock
        # behind another writer's): a version's stage is the newest of its events.
        ms = int(time.time() * 1000)
        if newest:
            ms = max(ms, _ms(newest[0].at) + 1)
        for _attempt in range(100):
            at = _iso_ms(ms)
            key = f"{STAGES_DIR}/{_INVERT - ms:013d}-{version}-{stage}.json"
            body = {"name": name, "version": version, "stage": stage, "by": by,
                    "reason": reason, "at": at}
            if self.objects.put_if_absent(f"{MODELS_DIR}/{name}/{key}",
                                          (json.dumps(body, indent=2) + "\n").encode(),
                                          "application/json"):
                return StageEvent(name, version, stage, by, reason, at, key)
            ms += 1  # the same event in the same millisecond by another writer: the next one
        raise RuntimeError("could not record the stage event")  # pragma: no cover

    def current(self, name: str) -> dict[str, ModelVersion]:
        """``name``'s versions by version id, each with its current stage."""
        return {v.version: v for v in self.versions(name)}

    def champion(self, name: str) -> ModelVersion | None:
        return next((v for v in self.versions(name) if v.stage == "champion"), None)

    def promote(self, name: str, version: str, stage: str, *, by: str, reason: str) -> list[StageEvent]:
        """Set a version's stage as a person decides; the events written (champion first, then
        ``archived`` for the champion it replaces).

        Bad input (:class:`InputError`, nothing written): an unknown name or version, a stage
        other than challenger/champion/archived, no ``by`` or ``reason``, or the stage the
        version already has. A version that fails verification is never made champion or
        challenger (:class:`ModelIntegrityError`).
        """
        try:
            check_name(name)
        except ValueError as error:
            raise InputError(str(error), column="name") from None
        if not VERSION.fullmatch(str(version)):
            raise InputError(f"{str(version)[:40]!r} is not a version (16 hex characters, as "
                             "ltv models list shows)", column="version")
        if stage not in SETTABLE_STAGES:
            raise InputError(f"{str(stage)[:30]!r} is not a stage to promote to (choose from "
                             f"{', '.join(SETTABLE_STAGES)})", column="stage")
        if not str(by or "").strip():
            raise InputError("say who decides (--by)", column="by")
        if not str(reason or "").strip():
            raise InputError("say why (--reason)", column="reason")
        versions = self.current(name)
        if version not in versions:
            known = f"{name} has versions {', '.join(sorted(versions))}" if versions else \
                f"there is no model '{name}'"
            raise InputError(f"no version {version} of model '{name}' in {self.uri} ({known})",
                             column="version")
        if versions[version].stage == stage:
            raise InputError(f"{name}@{version} is already {stage}: nothing to change",
                             column="stage")
        if stage in ("champion", "challenger"):
            problems = self.verify(name, version)
            if problems:
                raise ModelIntegrityError(f"model {name}@{version} does not match its manifest, "
                                          f"so it was not made {stage}: {'; '.join(problems)}")
        by, reason = str(by).strip()[:256], str(reason).strip()[:1000]
        written = [self.record(name, version, stage, by=by, reason=reason)]
        if stage == "champion":
            for other in versions.values():
                if other.version != version and other.stage == "champion":
                    written.append(self.record(name, other.version, "archived", by=by,
                                               reason=f"replaced as champion by {version}: {reason}"))
        return written

    def apply_rule(self, name: str, version: str) -> tuple[Verdict, StageEvent | None]:
        """The challenger rule (:mod:`ltvcore.lifecycle.rule`) on a ``dev`` version; the event
        when it made it challenger (``by`` ``rule``, the numbers in ``reason``)."""
        versions = self.current(name)
        candidate = versions[version]
        champion = next((v for v in versions.values() if v.stage == "champion"), None)
        verdict = challenger_verdict(candidate.card.get("backtest") or {},
                                     None if champion is None else champion.card.get("backtest") or {},
                                     champion_version=None if champion is None else champion.version)
        if not verdict.challenger or candidate.stage != "dev":
            return verdict, None
        return verdict, self.record(name, version, "challenger", by="rule", reason=verdict.reason)

    # -- references ---------------------------------------------------------
    def resolve(self, ref: str | ModelRef) -> ModelRef:
        """The pinned ``NAME@VERSION`` a reference means now (:class:`InputError` if nothing)."""
        try:
            parsed = ref if isinstance(ref, ModelRef) else parse_ref(ref)
        except ValueError as error:
            raise InputError(str(error), column="model") from None
        if parsed.pinned:
            if not self.exists(parsed.name, parsed.target):
                raise InputError(f"no version {parsed.target} of model '{parsed.name}' in "
                                 f"{self.uri} (ltv models list shows the versions)", column="model")
            return parsed
        versions = self.versions(parsed.name)
        if not versions:
            raise InputError(f"no model '{parsed.name}' in {self.uri} (train one: ltv models "
                             f"train --name {parsed.name} ...)", column="model")
        chosen = [v for v in versions if v.stage == parsed.target]
        if not chosen:
            hint = (f"promote one: ltv models promote {parsed.name} VERSION --stage champion"
                    if parsed.target == "champion" else "no version passed the challenger rule")
            raise InputError(f"model '{parsed.name}' has no {parsed.target} ({hint})",
                             column="model")
        # several challengers may stand at once: the one that became challenger last
        chosen.sort(key=lambda v: v.event.at if v.event else "", reverse=True)
        return ModelRef(parsed.name, chosen[0].version)


def _assign_stages(versions: list[ModelVersion]) -> None:
    """Each version's stage from its newest event; one champion at most (the newest)."""
    for version in versions:
        version.event = version.history[0] if version.history else None
        version.stage = version.event.stage if version.event else "dev"
    champions = sorted((v for v in versions if v.stage == "champion"),
                       key=lambda v: v.event.at if v.event else "", reverse=True)
    for superseded in champions[1:]:
        superseded.stage = "archived"  # a newer champion's archive event was never written
