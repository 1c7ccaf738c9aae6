"""The HTTP API's Lambda behind API Gateway (docs/interface.md, HTTP API).

The routes live once in :mod:`ltvcore.api` (the same app ``ltv serve`` runs); on Lambda it is
configured from ``LTV_STORE``, ``LTV_DATA_DIR``, ``LTV_STATE_MACHINE_ARN`` and
``LTV_LINK_SECONDS`` at cold start and starts one Step Functions execution per run id.
"""

from ltvcore.api import lambda_handler as handler

__all__ = ["handler"]
