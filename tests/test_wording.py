"""Web wording (ltvcore.wording): no CLI flags on the pages, plain words next to form fields."""

from __future__ import annotations

import re

import pytest

from ltvcore.errors import InputError
from ltvcore.request import ForecastRequest
from ltvcore.wording import field_message, no_decision_text, no_roas_text, web_text

FLAG = re.compile(r"(?<![\w-])--[a-z]")


@pytest.mark.parametrize("text, plain", [
    ("spend is per campaign, so ROAS is given only with --by campaign",
     "spend is per campaign, so ROAS is given only when the forecast is grouped by campaign alone"),
    ("no group has a cohort with at least 8 observed days by as-of 2026-01-01 "
     "(lower --observe-days or move --as-of)",
     "no group has a cohort with at least 8 observed days by as-of 2026-01-01 "
     "(lower the observed-days setting or move the as-of date)"),
    ("--by column 'os' is not an installs column", "group-by column 'os' is not an installs column"),
    ("try --window-days or --some-new-flag", "try the install-window setting or the some-new-flag setting"),
    ("fb--us: no revenue observed", "fb--us: no revenue observed"),  # a group name, not a flag
])
def test_web_text_names_settings_not_flags(text: str, plain: str) -> None:
    assert web_text(text) == plain


def test_no_decision_says_the_real_reason() -> None:
    split = no_decision_text(["campaign", "os"],
                             ["spend is per campaign, so ROAS is given only with --by campaign"])
    assert "grouped by campaign, os" in split and "spend is per campaign" in split
    assert "no spend" not in split
    unsplit = no_decision_text(["campaign"], [])
    assert "no spend data" in unsplit and "grouped by" not in unsplit
    assert "no spend" in no_decision_text(["os"], []) and "grouped by os" in no_decision_text(["os"], [])
    roas = no_roas_text(["campaign", "os"], ["spend is per campaign, so ROAS is given only with "
                                             "--by campaign"])
    assert "No spend data" not in roas and "grouped by campaign, os" in roas
    for text in (split, unsplit, roas, no_roas_text(["campaign"], [])):
        assert not FLAG.search(text), text


def test_every_form_error_reads_as_plain_words_and_names_the_field_label() -> None:
    with pytest.raises(InputError) as caught:
        ForecastRequest(horizons=[30, "x"], observe_days=0, confidence=1.5, target_roas=0,
                        model="zz", as_of="2020-13-01", by=[])
    messages = dict((field, field_message(field, reason)) for field, reason in caught.value.errors)
    assert messages["horizons"] == "Horizons: 'x' is not a number of days"
    assert messages["observe_days"] == "Observed days: 0 is too few days; use 1 to 366"
    assert messages["confidence"].startswith("Interval confidence: 1.5 is not a confidence between 0.5 and 1")
    assert messages["target_roas"].startswith("Target ROAS: 0 is not a ROAS between 0 and 100")
    assert messages["model"].startswith("Model: 'zz' is not a model we offer; choose one of curve")
    assert messages["as_of"].startswith("As of: '2020-13-01' is not a date")
    assert messages["by"] == "Group by: pick at least one column, e.g. campaign"
    for message in messages.values():
        assert "field '" not in message and "item " not in message and "[" not in message
    # the CLI's words are unchanged
    assert "field 'horizons': 'x' is not a whole number" in str(caught.value)
    assert field_message("window_days", "must be at least observe_days") == \
        "Install window: must be at least the observed days"
    assert field_message("horizons", "3651 is out of range [1, 3650]") == \
        "Horizons: 3651 is too many days; use 1 to 3650"
