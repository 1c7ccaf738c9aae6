"""The HTTP API's Lambda behind API Gateway (docs/interface.md, HTTP API).

The routes live once in :mod:`ltvcore.api` (the same app ``ltv serve`` runs); on Lambda it is
configured from ``LTV_STORE``, ``LTV_DATA_DIR``, ``LTV_STATE_MACHINE_ARN`` and
``LTV_LINK_SECONDS`` at cold start and starts one Step Functions execution per run id. The
REST proxy event is parsed by the app's Powertools resolver.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ltvcore.api import lambda_handler

__all__ = ["handler"]


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return lambda_handler(event, context)
