"""Webhook config: Secrets Manager (moto) through Powertools' cached get_secret, env and file
parsing, URLs held as SecretStr and never in a repr."""

from __future__ import annotations

import json
import time

import pytest
from aws_lambda_powertools.utilities import parameters
from pydantic import SecretStr

from ltvcore.notify.secrets import (
    ENV_CONFIG_FILE,
    ENV_SECRET_NAME,
    ENV_WEBHOOK_URLS,
    WebhookConfig,
    WebhookConfigError,
    config_from_secret,
    load_webhook_config,
    parse_webhook_urls,
)

TEAM_URL = "https://hooks.slack.com/services/T000/B111/teamSECRETteam"
GROWTH_URL = "https://hooks.slack.com/services/T000/B222/growthSECRETgrowth"
SECRET_JSON = json.dumps({"channels": {"team-ltv": TEAM_URL, "#growth": GROWTH_URL},
                          "default_channels": ["team-ltv"]})


def urls(config: WebhookConfig) -> dict[str, str]:
    return {name: url.get_secret_value() for name, url in config.webhooks.items()}


@pytest.fixture
def aws(monkeypatch):
    moto = pytest.importorskip("moto")
    for key, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    parameters.clear_caches()  # Powertools keeps values (and its client) per process
    with moto.mock_aws():
        import boto3

        client = boto3.client("secretsmanager")
        client.create_secret(Name="ltv/slack-webhooks", SecretString=SECRET_JSON)
        yield client
    parameters.clear_caches()


def test_secrets_manager_read_and_reused_for_max_age(aws):
    first = config_from_secret("ltv/slack-webhooks", max_age=1)
    assert urls(first) == {"team-ltv": TEAM_URL, "growth": GROWTH_URL}
    assert first.default_channels == ("team-ltv",)
    assert first.source == "secretsmanager:ltv/slack-webhooks"

    aws.put_secret_value(SecretId="ltv/slack-webhooks",
                         SecretString=json.dumps({"channels": {"team-ltv": TEAM_URL}}))
    assert config_from_secret("ltv/slack-webhooks", max_age=1) == first  # served from the cache
    time.sleep(1.1)  # past max_age: re-read, sees the rotated value
    assert config_from_secret("ltv/slack-webhooks", max_age=1).channels == ("team-ltv",)


def test_load_webhook_config_uses_secret_name_from_env(aws):
    env = {ENV_SECRET_NAME: "ltv/slack-webhooks", ENV_WEBHOOK_URLS: "https://ignored.example/x"}
    config = load_webhook_config(env=env)
    assert config.channels == ("team-ltv", "growth")
    aws.delete_secret(SecretId="ltv/slack-webhooks", ForceDeleteWithoutRecovery=True)
    assert load_webhook_config(env=env) == config  # a warm Lambda does not re-read it per run


def test_missing_or_malformed_secret_gives_clear_error_without_content(aws):
    with pytest.raises(WebhookConfigError, match="ResourceNotFoundException"):
        config_from_secret("ltv/nope")
    aws.create_secret(Name="ltv/bad", SecretString="{not json " + TEAM_URL)
    with pytest.raises(WebhookConfigError) as info:
        config_from_secret("ltv/bad")
    assert "not valid JSON" in str(info.value) and TEAM_URL not in str(info.value)
    aws.create_secret(Name="ltv/badurl",
                      SecretString=json.dumps({"channels": {"team": "hooks.slack.com/x/SECRET"}}))
    with pytest.raises(WebhookConfigError) as info:
        config_from_secret("ltv/badurl")
    assert "'team'" in str(info.value) and "SECRET" not in str(info.value)
    aws.create_secret(Name="ltv/binary", SecretBinary=SECRET_JSON.encode())
    with pytest.raises(WebhookConfigError, match="no SecretString"):
        config_from_secret("ltv/binary")


def test_a_secret_created_after_a_failed_read_is_found(aws):
    with pytest.raises(WebhookConfigError):
        config_from_secret("ltv/later")
    aws.create_secret(Name="ltv/later", SecretString=SECRET_JSON)
    assert config_from_secret("ltv/later").channels == ("team-ltv", "growth")  # failures are not cached


def test_env_comma_separated_urls_are_numbered_team_channels():
    config = parse_webhook_urls(f" {TEAM_URL} , ,{GROWTH_URL}")
    assert urls(config) == {"webhook-1": TEAM_URL, "webhook-3": GROWTH_URL}
    assert config.default_channels == ("webhook-1", "webhook-3")


def test_env_named_pairs_and_mixed():
    config = parse_webhook_urls(f"team={TEAM_URL},#growth={GROWTH_URL}")
    assert urls(config) == {"team": TEAM_URL, "growth": GROWTH_URL}
    mixed = parse_webhook_urls(f"team={TEAM_URL},{GROWTH_URL}")
    assert mixed.channels == ("team", "webhook-2")


@pytest.mark.parametrize("value", ["not-a-url", "team=ftp://x/SECRET",
                                   f"a={TEAM_URL},a={GROWTH_URL}"])
def test_env_bad_entries_rejected_without_echoing(value):
    with pytest.raises(WebhookConfigError) as info:
        parse_webhook_urls(value)
    assert "SECRET" not in str(info.value)


def test_load_from_env_then_file_then_nothing(tmp_path):
    assert load_webhook_config(env={ENV_WEBHOOK_URLS: TEAM_URL}).channels == ("webhook-1",)

    path = tmp_path / "slack.json"
    path.write_text(SECRET_JSON)
    config = load_webhook_config(env={ENV_CONFIG_FILE: str(path)})
    assert config.channels == ("team-ltv", "growth")
    assert config.default_channels == ("team-ltv",)
    assert config.source == f"file:{path}"

    empty = load_webhook_config(env={})
    assert not empty and empty.channels == () and empty.source == "none"

    with pytest.raises(WebhookConfigError, match="cannot read"):
        load_webhook_config(env={ENV_CONFIG_FILE: str(tmp_path / "missing.json")})


def test_default_channels_absent_means_all_and_unknown_is_an_error(tmp_path):
    path = tmp_path / "slack.json"
    path.write_text(json.dumps({"channels": {"a": TEAM_URL, "b": GROWTH_URL}}))
    assert load_webhook_config(env={ENV_CONFIG_FILE: str(path)}).default_channels == ("a", "b")
    path.write_text(json.dumps({"channels": {"a": TEAM_URL}, "default_channels": []}))
    assert load_webhook_config(env={ENV_CONFIG_FILE: str(path)}).default_channels == ()
    path.write_text(json.dumps({"channels": {"a": TEAM_URL}, "default_channels": ["zz"]}))
    with pytest.raises(WebhookConfigError, match="zz"):
        load_webhook_config(env={ENV_CONFIG_FILE: str(path)})


def test_repr_and_str_never_show_urls():
    config = WebhookConfig(webhooks={"team": TEAM_URL, "growth": GROWTH_URL},
                           default_channels=("team",), source="env:X")
    for text in (repr(config), str(config), f"{config}", f"{config!r}", repr([config])):
        assert "SECRET" not in text and "hooks.slack.com" not in text
        assert "team" in text and "growth" in text
    assert config.channels == ("team", "growth") and len(config) == 2


def test_urls_are_secret_strings_that_no_dump_or_log_line_shows():
    config = WebhookConfig(webhooks={"team": TEAM_URL}, source="env:X")
    assert isinstance(config.webhooks["team"], SecretStr)
    for text in (str(config.webhooks), repr(config.webhooks["team"]), f"{config.webhooks['team']}",
                 str(config.model_dump()), config.model_dump_json()):
        assert "SECRET" not in text and "hooks.slack.com" not in text
    assert config.webhooks["team"].get_secret_value() == TEAM_URL


def test_a_bad_value_given_directly_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as info:
        WebhookConfig(webhooks={"team": ["https://hooks.slack.com/services/T/B/SECRET"]})
    assert "SECRET" not in str(info.value)
    with pytest.raises(WebhookConfigError, match="zz"):
        WebhookConfig(webhooks={"team": TEAM_URL}, default_channels=("zz",))
