"""The notify Lambda, last state of both workflow paths, and its Slack secret.

The secret (name in ``ltv:slackSecretName``) is created outside this stack, so webhook URLs
never appear in the template, an environment variable or a log; the Lambda reads it at run
time (``ltvcore.notify``, cached) and may read nothing else from Secrets Manager.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import DeploymentConfig
from infra.function import HandlerFunction
from infra.storage import Storage

__all__ = ["Notifications"]


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig,
                 storage: Storage) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret.from_secret_name_v2(self, "SlackWebhooks",
                                                                config.slackSecretName)
        self.notify = HandlerFunction(
            self, "NotifyLambda", name="notify", config=config, timeout=Duration.seconds(120),
            description="ltv-forecast: record a run's outcome and tell Slack",
            environment={
                "LTV_STORE": storage.uri(),
                "LTV_NOTIFICATIONS": storage.uri(Storage.NOTIFICATIONS),
                "LTV_SLACK_SECRET_NAME": config.slackSecretName,
                "LTV_REPORT_LINK_HOURS": str(config.reportLinkHours),
            })
        self.secret.grant_read(self.notify.role)
        storage.grant_runs(self.notify.role, write=[f"{Storage.RUNS}/*/_status.json",
                                                    f"{Storage.NOTIFICATIONS}/*"])
