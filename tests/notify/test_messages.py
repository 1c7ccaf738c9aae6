"""Block Kit payloads: shape, ranking, the decision labels, ROAS only with spend, Slack limits."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from ltvcore.notify.messages import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    failure_message,
    main_horizon,
    success_message,
)


def _rows(groups, horizons=(30, 90, 365), spend=True):
    """forecast.csv rows as csv.DictReader gives them (all strings).

    ``groups``: (campaign, ltv365, ltv_lower_frac, roas365 or None, roas_lower365 or None),
    optionally followed by p_payback365 (else those cells stay empty).
    """
    cols = ["campaign", "horizon_days", "users", "ltv", "ltv_lower", "ltv_upper", "model"]
    if spend:
        cols += ["spend", "roas", "roas_lower", "roas_upper", "p_payback"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for name, ltv, low_frac, roas, roas_low, *payback in groups:
        p = (payback + [None])[0]
        for h in horizons:
            scale = h / max(horizons)
            row = {"campaign": name, "horizon_days": h, "users": 1200, "ltv": ltv * scale,
                   "ltv_lower": ltv * scale * low_frac, "ltv_upper": ltv * scale * 1.3,
                   "model": "curve"}
            if spend:
                row.update(spend=1000, roas="" if roas is None else roas * scale,
                           roas_lower="" if roas_low is None else roas_low * scale,
                           roas_upper="" if roas is None else roas * scale * 1.4,
                           p_payback="" if p is None else p * scale)
            w.writerow(row)
    return list(csv.DictReader(io.StringIO(buf.getvalue())))


def _payback(groups):
    """Days to payback by group, as ltvcore.decision.payback_days reads params.json."""
    return {(name,): {"days": days, "days_lower": None if days is None else days // 2,
                      "days_upper": None}
            for name, _, _, _, _, *rest in groups if len(rest) > 1
            for days in [rest[1]]}


GROUPS = [
    ("search", 8.0, 0.9, 1.6, 1.2, 0.9, 120),        # most likely to pay back: scale
    ("social", 12.5, 0.5, 1.1, 0.7, 0.5, 300),       # watch
    ("video", 3.25, 0.9, 0.5, 0.3, 0.1, None),       # cut, never pays back within 365 days
    ("affiliate", 1234.5, 0.9, 2.0, 1.0, 0.8, 40),   # p exactly at the scale threshold: scale
]


def _ok(**overrides):
    args = dict(run_id="run-abc123", requested_by="maria@example.com", dataset="mobile_q3",
                as_of="2024-09-30", forecast_rows=_rows(GROUPS), by=["campaign"],
                warnings=["video: only 40 users observed 7 days"],
                report_url="https://bucket.s3.amazonaws.com/r/report.html?X-Amz-Signature=ab&x=1",
                link_lifetime="7 days", payback=_payback(GROUPS))
    args.update(overrides)
    return success_message(**args)


def _all_text(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


def _section_texts(payload):
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]


def _top_section(payload) -> str:
    return next(t for t in _section_texts(payload) if t.startswith("*Top "))


def test_payload_is_json_with_header_fallback_and_basic_fields():
    payload = _ok()
    assert json.loads(json.dumps(payload)) == payload
    assert set(payload) == {"text", "blocks"}
    assert payload["text"] and "run-abc123" in payload["text"]
    header = payload["blocks"][0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "run-abc123" in header["text"]["text"]
    text = _all_text(payload)
    for expected in ("maria@example.com", "mobile_q3", "2024-09-30"):
        assert expected in text
    for block in payload["blocks"]:
        assert block["type"] in {"header", "section", "divider", "context"}


def test_top_groups_ranked_by_payback_probability_with_labels_intervals_and_roas():
    top = _top_section(_ok()).splitlines()
    assert "by payback probability at 365 days" in top[0]
    names = [line.split("*")[1] for line in top[1:]]
    assert names == ["search", "affiliate", "social", "video"]
    assert "LTV 1,234.50 (1,111.05–1,604.85)" in top[2]
    assert "ROAS 2.00x (1.00x–2.80x)" in top[2]
    assert "p_payback 80%" in top[2] and "payback 40 days" in top[2]
    assert "payback not within 365 days" in top[4]
    assert "LTV 3.25 (2.93–4.23)" in top[4]


def test_without_payback_groups_are_ranked_by_ltv():
    rows = _rows([g[:5] for g in GROUPS])
    top = _top_section(_ok(forecast_rows=rows)).splitlines()
    assert "by forecast LTV at 365 days" in top[0]
    assert [line.split("*")[1] for line in top[1:]] == ["affiliate", "social", "search", "video"]


def test_top_n_limits_the_list():
    top = _top_section(_ok(top_n=2)).splitlines()
    assert top[0].startswith("*Top 2 of 4 groups")
    assert len(top) == 3


def test_main_horizon_rule():
    assert main_horizon(_rows(GROUPS, horizons=(30, 90, 365, 730))) == 365
    assert main_horizon(_rows(GROUPS, horizons=(30, 90))) == 90
    assert main_horizon(_rows(GROUPS), horizon=30) == 30
    with pytest.raises(ValueError):
        main_horizon(_rows(GROUPS), horizon=45)
    assert "at 30 days" in _top_section(_ok(horizon=30))


def _label_of(line: str) -> str | None:
    head = line.split("*")[0]
    return next((label for label in ("scale", "watch", "cut") if label in head), None)


def test_labels_and_counts_follow_the_decision_rule():
    payload = _ok()
    lines = _top_section(payload).splitlines()[1:]
    labels = {line.split("*")[1]: _label_of(line) for line in lines}
    assert labels == {"search": "scale", "affiliate": "scale", "social": "watch", "video": "cut"}
    contexts = [e["text"] for b in payload["blocks"] if b["type"] == "context"
                for e in b["elements"]]
    assert any("2 to scale, 1 to watch, 1 to cut" in c and "scale when ≥ 0.8" in c
               and "at 365 days" in c for c in contexts)
    assert "2 to scale, 1 to watch, 1 to cut" in payload["text"]
    assert "★" not in _all_text(payload)


def test_target_roas_is_stated_when_given():
    assert "reaches 1.50x" in _all_text(_ok(target_roas=1.5))


def test_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LTV_DECISION_SCALE", "0.95")
    lines = _top_section(_ok()).splitlines()[1:]
    assert {line.split("*")[1]: _label_of(line) for line in lines}["search"] == "watch"


def test_scale_outside_top_n_is_still_named():
    payload = _ok(top_n=1)
    assert "Also to scale: affiliate" in _all_text(payload)


def test_without_spend_no_group_is_labelled_as_in_the_report():
    """One rule (ltvcore.decision): a label needs p_payback, so spend."""
    rows = _rows(GROUPS, spend=False)
    payload = _ok(forecast_rows=rows)
    text = _all_text(payload)
    assert "A decision needs spend" in text
    lines = _top_section(payload).splitlines()[1:]
    assert not [line for line in lines if _label_of(line)]


def test_spend_columns_without_values_count_as_no_roas():
    rows = _rows([(name, ltv, f, None, None) for name, ltv, f, *_ in GROUPS])
    text = _all_text(_ok(forecast_rows=rows))
    assert not re.search(r"ROAS [0-9]", text) and "no spend was given" in text


def test_no_rows_still_gives_a_message():
    payload = _ok(forecast_rows=[])
    assert "No forecast rows" in _all_text(payload)
    assert "run-abc123" in payload["blocks"][0]["text"]["text"]


def test_numbers_are_human_formatted():
    top = _top_section(_ok())
    assert "1,234.50" in top and "1,200 users" in top and "1.60x" in top
    assert "1234.5000" not in top


def test_several_by_columns_name_groups_by_column():
    rows = _rows(GROUPS)
    for r in rows:
        r["os"] = "ios"
    payload = _ok(forecast_rows=rows, by=["campaign", "os"])
    assert "*campaign=affiliate, os=ios*" in _top_section(payload)


def test_user_text_is_escaped_for_mrkdwn():
    payload = _ok(dataset="a<b>&c", warnings=["<!channel> hi"])
    text = _all_text(payload)
    assert "a&lt;b&gt;&amp;c" in text and "&lt;!channel&gt;" in text
    assert "<!channel>" not in text


def test_report_link_and_lifetime_stated():
    text = _all_text(_ok())
    assert "|Open the report>" in text and "link valid for 7 days" in text
    assert "no link available" in _all_text(_ok(report_url=None))


def test_warnings_listed():
    payload = _ok(warnings=["w one", "w two"])
    warn = next(t for t in _section_texts(payload) if t.startswith("*Warnings"))
    assert warn.splitlines() == ["*Warnings (2)*", "• w one", "• w two"]
    assert not any(t.startswith("*Warnings") for t in _section_texts(_ok(warnings=[])))


def test_slack_limits_are_respected_with_and_more():
    many = [(f"campaign_{i:04d}_with_a_rather_long_name", 100.0 - i * 0.01, 0.9, 1.2, 1.05)
            for i in range(400)]
    payload = _ok(forecast_rows=_rows(many, horizons=(365,)), top_n=400,
                  warnings=[f"warning number {i} " + "x" * 80 for i in range(300)],
                  requested_by="r" * 5000)
    assert len(payload["blocks"]) <= MAX_BLOCKS
    for block in payload["blocks"]:
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    top = _top_section(payload)
    assert top.splitlines()[-1].startswith("… and ") and top.endswith(" more")
    shown = len(top.splitlines()) - 2
    assert int(top.splitlines()[-1].split()[2]) == 400 - shown
    warn = next(t for t in _section_texts(payload) if t.startswith("*Warnings"))
    assert warn.splitlines()[-1].startswith("… and ")


def test_failure_message_in_plain_words_with_where_to_look():
    payload = failure_message(
        run_id="run-x", requested_by="maria", dataset="mobile_q3",
        error="events.csv, column 'revenue', row 12: revenue must be ≥ 0 (got -3.5)",
        where_to_look="https://console.aws.amazon.com/states/home#/executions/details/arn")
    assert json.loads(json.dumps(payload)) == payload
    assert "failed" in payload["blocks"][0]["text"]["text"]
    assert "run-x" in payload["blocks"][0]["text"]["text"]
    text = _all_text(payload)
    assert "revenue must be ≥ 0 (got -3.5)" in text
    assert "*What went wrong*" in text and "|Open the details>" in text
    assert "revenue must be" in payload["text"]
    plain = failure_message(run_id=None, requested_by=None, dataset=None, error="",
                            where_to_look="log group /aws/lambda/ltv-forecast")
    ptext = _all_text(plain)
    assert "log group /aws/lambda/ltv-forecast" in ptext
    assert "failed without an error message" in ptext
