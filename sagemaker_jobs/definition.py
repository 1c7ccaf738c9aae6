"""What the forecast pipeline, the state machine and the entry points agree on: the pipeline's
parameter names, its step names and ``AsOf``'s "last date" value.

The pipeline itself is written with the ``sagemaker`` SDK at synth time
(``infra/pipeline_definition.py``, run in the synth environment); nothing here imports it, so
the processing image and the Lambda bundles never carry the SDK.
"""

from __future__ import annotations

__all__ = ["AS_OF", "DATASET", "FORECAST", "INPUT_DIGEST", "LATEST", "PREPARE", "REPORT", "RUN_KEY"]

# Parameters of the forecast pipeline (the state machine passes each of them).
RUN_KEY = "RunKey"
DATASET = "Dataset"
AS_OF = "AsOf"
INPUT_DIGEST = "InputDigest"
LATEST = "latest"
"""``AsOf`` value meaning "the last date in the data" (parameter values may not be empty)."""

# Its steps, in order.
PREPARE, FORECAST, REPORT = "Prepare", "Forecast", "Report"
