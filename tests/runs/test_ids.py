from __future__ import annotations

import datetime as dt

import pytest

from ltvcore.runs.ids import NON_RESULT_FIELDS, combine_digests, normalise_request, run_id

REQUEST = {
    "dataset": "mobile-2025",
    "by": ["campaign", "os"],
    "as_of": "2025-06-30",
    "observe_days": 7,
    "horizons": [30, 90, 180, 365],
    "confidence": 0.99,
    "model": "curve",
    "retention": "ensemble",
}
DIGEST = "a" * 64


def test_run_id_is_short_lowercase_hex():
    value = run_id(REQUEST, DIGEST, "0.1.0")
    assert len(value) == 20
    assert value == value.lower()
    int(value, 16)


def test_stable_across_key_order_and_horizon_order():
    shuffled = dict(reversed(list(REQUEST.items())))
    shuffled["horizons"] = [365, 30, 180, 90, 30]
    assert run_id(shuffled, DIGEST, "0.1.0") == run_id(REQUEST, DIGEST, "0.1.0")


def test_equivalent_values_give_the_same_id():
    variant = dict(REQUEST, observe_days=7.0, as_of=dt.date(2025, 6, 30), horizons=(30.0, 90, 180, 365))
    assert run_id(variant, DIGEST, "0.1.0") == run_id(REQUEST, DIGEST, "0.1.0")


def test_by_order_matters_because_it_orders_output_columns():
    variant = dict(REQUEST, by=["os", "campaign"])
    assert run_id(variant, DIGEST, "0.1.0") != run_id(REQUEST, DIGEST, "0.1.0")


@pytest.mark.parametrize(
    "field, value",
    [
        ("requested_by", "ana@example.com"),
        ("notify", ["#growth"]),
        ("out", "/tmp/elsewhere"),
        ("store", "s3://bucket/prefix"),
        ("dataset", "same-data-other-name"),
        ("events", "/data/events.csv"),
    ],
)
def test_who_asked_and_where_are_excluded(field, value):
    assert field in NON_RESULT_FIELDS
    assert run_id(dict(REQUEST, **{field: value}), DIGEST, "0.1.0") == run_id(REQUEST, DIGEST, "0.1.0")


def test_none_values_are_dropped():
    assert run_id(dict(REQUEST, spend=None, extra_option=None), DIGEST, "0.1.0") == run_id(REQUEST, DIGEST, "0.1.0")


@pytest.mark.parametrize(
    "change",
    [
        {"confidence": 0.95},
        {"horizons": [30, 90]},
        {"model": "geometric"},
        {"as_of": "2025-06-29"},
        {"observe_days": 14},
    ],
)
def test_result_fields_change_the_id(change):
    assert run_id(dict(REQUEST, **change), DIGEST, "0.1.0") != run_id(REQUEST, DIGEST, "0.1.0")


def test_input_digest_and_code_version_change_the_id():
    base = run_id(REQUEST, DIGEST, "0.1.0")
    assert run_id(REQUEST, "b" * 64, "0.1.0") != base
    assert run_id(REQUEST, DIGEST, "0.1.1") != base


def test_rejects_empty_digest_and_nan():
    with pytest.raises(ValueError):
        run_id(REQUEST, "", "0.1.0")
    with pytest.raises(ValueError):
        run_id(dict(REQUEST, confidence=float("nan")), DIGEST, "0.1.0")


def test_normalise_request_is_sorted_and_canonical():
    normalised = normalise_request({"b": 1, "a": [2], "horizons": [90, 30], "requested_by": "x"})
    assert list(normalised) == ["a", "b", "horizons"]
    assert normalised["horizons"] == [30, 90]


def test_combine_digests_ignores_mapping_order():
    one = combine_digests({"inputs/events.parquet": "1" * 64, "inputs/installs.parquet": "2" * 64})
    two = combine_digests({"inputs/installs.parquet": "2" * 64, "inputs/events.parquet": "1" * 64})
    assert one == two
    assert one != combine_digests({"inputs/events.parquet": "1" * 64})
