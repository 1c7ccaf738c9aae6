"""Webhook config: Secrets Manager (moto) with a TTL cache, env and file parsing, no URL in repr."""

from __future__ import annotations

import json

import pytest

from ltvcore.notify.secrets import (
    ENV_CONFIG_FILE,
    ENV_SECRET_NAME,
    ENV_WEBHOOK_URLS,
    SecretCache,
    WebhookConfig,
    WebhookConfigError,
    load_webhook_config,
    parse_webhook_urls,
)

TEAM_URL = "https://hooks.slack.com/services/T000/B111/teamSECRETteam"
GROWTH_URL = "https://hooks.slack.com/services/T000/B222/growthSECRETgrowth"
SECRET_JSON = json.dumps({"channels": {"team-ltv": TEAM_URL, "#growth": GROWTH_URL},
                          "default_channels": ["team-ltv"]})


@pytest.fixture
def aws(monkeypatch):
    moto = pytest.importorskip("moto")
    for key, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        import boto3

        client = boto3.client("secretsmanager")
        client.create_secret(Name="ltv/slack-webhooks", SecretString=SECRET_JSON)
        yield client


def test_secrets_manager_read_and_cached_within_ttl(aws):
    now = [1000.0]
    cache = SecretCache(ttl_seconds=300, clock=lambda: now[0])
    first = cache.get("ltv/slack-webhooks")
    assert first.webhooks == {"team-ltv": TEAM_URL, "growth": GROWTH_URL}
    assert first.default_channels == ("team-ltv",)
    assert first.source == "secretsmanager:ltv/slack-webhooks"
    assert cache.fetches == 1

    now[0] += 299
    assert cache.get("ltv/slack-webhooks") is first
    assert cache.fetches == 1  # second read served from the cache

    aws.put_secret_value(SecretId="ltv/slack-webhooks",
                         SecretString=json.dumps({"channels": {"team-ltv": TEAM_URL}}))
    now[0] += 2  # past the TTL: re-read, sees the rotated value
    again = cache.get("ltv/slack-webhooks")
    assert cache.fetches == 2 and again.channels == ("team-ltv",)


def test_load_webhook_config_uses_secret_name_from_env(aws):
    cache = SecretCache()
    env = {ENV_SECRET_NAME: "ltv/slack-webhooks", ENV_WEBHOOK_URLS: "https://ignored.example/x"}
    config = load_webhook_config(env=env, cache=cache)
    assert config.channels == ("team-ltv", "growth")
    load_webhook_config(env=env, cache=cache)
    assert cache.fetches == 1


def test_missing_or_malformed_secret_gives_clear_error_without_content(aws):
    cache = SecretCache()
    with pytest.raises(WebhookConfigError, match="ResourceNotFoundException"):
        cache.get("ltv/nope")
    aws.create_secret(Name="ltv/bad", SecretString="{not json " + TEAM_URL)
    with pytest.raises(WebhookConfigError) as info:
        cache.get("ltv/bad")
    assert "not valid JSON" in str(info.value) and TEAM_URL not in str(info.value)
    aws.create_secret(Name="ltv/badurl",
                      SecretString=json.dumps({"channels": {"team": "hooks.slack.com/x/SECRET"}}))
    with pytest.raises(WebhookConfigError) as info:
        cache.get("ltv/badurl")
    assert "'team'" in str(info.value) and "SECRET" not in str(info.value)


def test_env_comma_separated_urls_are_numbered_team_channels():
    config = parse_webhook_urls(f" {TEAM_URL} , ,{GROWTH_URL}")
    assert config.webhooks == {"webhook-1": TEAM_URL, "webhook-3": GROWTH_URL}
    assert config.default_channels == ("webhook-1", "webhook-3")


def test_env_named_pairs_and_mixed():
    config = parse_webhook_urls(f"team={TEAM_URL},#growth={GROWTH_URL}")
    assert config.webhooks == {"team": TEAM_URL, "growth": GROWTH_URL}
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
