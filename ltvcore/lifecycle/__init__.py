"""Tracked training and a model registry with a lifecycle (docs/models.md).

``ltv models train`` records every training run — parameters, dataset digest, code version,
out-of-fold backtest metrics and plots — as a content-addressed *version* of a named model;
versions move through ``dev`` → ``challenger`` (by a stated rule, :mod:`.rule`) → ``champion``
(by a person, who and why recorded) → ``archived``; ``--model NAME@champion`` or
``NAME@VERSION`` forecasts with one, and the run's manifest records the exact version.

Why the product's own store and not a tracker such as MLflow
------------------------------------------------------------
The versions live in the artifact store that already holds the runs (a local directory or an S3
prefix, :func:`ltvcore.runs.store.open_store`), next to ``runs/`` under ``models/``:

- **No server of ours on AWS.** Writes are S3 conditional puts (``IfNoneMatch="*"``): a version
  and each stage event are written once and never replaced, without a database, a lock or a
  tracking server. mlflow-skinny does resolve next to the project's pins, but its registry
  needs a tracking server with a database behind it, or a file store on a local disk (which a
  Lambda or a SageMaker job does not share).
- **Verified like runs.** A version is sealed by a manifest of sha256s built and checked by the
  same code as a run's (:mod:`ltvcore.runs.manifest`), and its id is a digest of its bytes:
  a tampered artifact is refused with the reason, never loaded. MLflow's artifacts carry no such
  seal, so they would escape the audit the runs pass.
- **No new dependency, one place to back up, one IAM policy.**

MLflow's registry aliases map one to one onto our stages (``@champion``, ``@challenger``), so an
exporter to an MLflow registry can be added later without changing how versions are named.

Only :mod:`.refs` is imported here: the request (and the API Lambda with it) checks a model
reference without loading the registry.
"""

from __future__ import annotations

from ltvcore.lifecycle.refs import ALIASES, SETTABLE_STAGES, STAGES, ModelRef, is_ref, parse_ref

__all__ = ["ALIASES", "SETTABLE_STAGES", "STAGES", "ModelRef", "is_ref", "parse_ref"]
