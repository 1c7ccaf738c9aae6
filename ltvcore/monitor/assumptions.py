"""Each run's recorded assumptions, tested against what its users did after its as-of.

A run records its model's assumptions as sentences (params.json ``assumptions``) and its fitted
parameters per group (``groups[].models``). Where a sentence makes a claim the newer data can
contradict and params.json holds the numbers the claim rests on, it is tested; every other
sentence is listed as not checkable, with why. The tests look only at the run's own users (those
installed by its as-of) on their days after as-of, up to the run's longest horizon, so what is
tested is exactly what the forecast extrapolated:

* **retention law** (sBG, rational, geometric; BG/BB for btyd): active user-days after as-of
  against the activity the fitted curve implies for the same users on the same days;
* **ARPU stationarity** (curve family): revenue per active day after as-of against the fitted
  ``arpu``, then its two parts, so the report can say which moved: the **payer share** (share of
  active days that pay) and the **revenue per paying day**, each against the run's own window
  before as-of (the data the fit saw, read again from the newer data);
* btyd's **paying law** and **spending law**: paying days and revenue after as-of against the
  beta-binomial and lognormal–normal posterior means given each user's history before as-of,
  from the recorded group parameters (posterior means, plugged in).

A check is *broken* when the realised value strays more than the tolerance from the expected
one and by more than :data:`~ltvcore.monitor.settings.Z_BROKEN` standard errors; *unclear* when
it strays that far but within the noise; *held* otherwise. Standard errors treat users, not
user-days, as independent (one whale's purchases are one source of variance), as ARPU's own
error does (:mod:`ltvcore.arpu`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltvcore.fitted_laws import activity_laws
from ltvcore.monitor.runs import PastRun
from ltvcore.monitor.settings import Z_BROKEN, Thresholds
from ltvcore.warehouse.inputs import Inputs

# The private helpers are the ones realised_ltv uses: the same groups and the same users (those
# installed by as-of), so the checks and monitor.csv speak of one set of people.
from ltvcore.warehouse.model_data import _day, _groups, _user_groups

__all__ = ["Finding", "Verdict", "check_run", "findings_frame", "verdicts_frame"]

#: Users a group needs after as-of before a check means anything: a clustered standard error
#: from a handful of users understates the noise.
MIN_USERS = 30

# Which checks each recorded sentence is tested by (matched by the words every model writes;
# see ASSUMPTIONS in ltvcore/models/curve.py and ltvcore/models/btyd/estimator.py).
_CHECKED = (
    ("sBG:", ("retention law (sBG)",)),
    ("BdW:", ("retention law (BdW)",)),
    ("Rational:", ("retention law (rational)",)),
    ("constant daily ratio", ("retention law (geometric)",)),
    ("BG/BB:", ("retention law (BG/BB)",)),
    ("ARPU per active user-day stays", ("ARPU stationarity", "payer share",
                                        "revenue per paying day")),
    ("A paying day is an active day that pays", ("paying law (BG/BB)",)),
    ("Amounts of a user's paying days", ("spending law (BG/BB)",)),
)
_NOT_CHECKABLE = (
    ("stands in for retention", "how the method measures retention (a definition), not a claim "
                                "later data can contradict"),
    ("independent", "needs users' activity and spending modelled jointly; not tested here"),
    ("Extrapolation error", "judged by the interval coverage in this report, not by a test of "
                            "its own"),
    ("Intervals combine", "judged by the interval coverage in this report, not by a test of its "
                          "own"),
    ("calibrated:", "judged by the calibrated model's error in this report"),
    ("auto:", "judged by the chosen model's error in this report"),
    ("laws seen in the observed days hold", "tested through the retention, paying and spending "
                                            "laws it refers to (their rows)"),
)
_NOT_TESTABLE = "not testable from realised totals: a claim about users or groups no single " \
                "group's later data can contradict"


@dataclass(frozen=True)
class Finding:
    """One check of one group of one run."""

    run_id: str
    as_of: str
    model_version: str
    group: str
    check: str
    status: str  # broken | unclear | held | too little data
    expected: float
    observed: float
    change_pct: float
    z: float
    message: str


@dataclass(frozen=True)
class Verdict:
    """One recorded assumption of one run: its status over all groups, and why."""

    run_id: str
    as_of: str
    model_version: str
    assumption: str
    status: str  # broken | unclear | held | too little data | not checkable
    detail: str


def _money(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}"


def _ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Σnum/Σden and its user-clustered standard error (NaN without any denominator)."""
    total = float(den.sum())
    if total <= 0:
        return np.nan, np.nan
    value = float(num.sum()) / total
    return value, float(np.sqrt(((num - value * den) ** 2).sum())) / total


def _judge(expected: float, observed: float, se: float, tolerance: float, users: int):
    """(status, change in %, z) of an observed value against the expected one; ``users`` is how
    many users the thinner side rests on."""
    if users < MIN_USERS or not np.isfinite(observed) or not np.isfinite(expected):
        return "too little data", np.nan, np.nan
    change = (observed / expected - 1) * 100 if expected > 0 else (0.0 if observed == 0 else np.inf)
    z = (observed - expected) / se if se > 0 else (0.0 if observed == expected else np.inf)
    if abs(change) <= tolerance:
        return "held", change, z
    return ("broken" if abs(z) >= Z_BROKEN else "unclear"), change, z


def _users(*counts: np.ndarray) -> int:
    return int(min((c > 0).sum() for c in counts))


class _Followup:
    """The run's users (installed by its as-of) and their user-days up to the longest horizon:
    per-user sums before as-of (days ≥ 1) and after it, indexed by the users' number ``iu``."""

    def __init__(self, run: PastRun, inputs: Inputs) -> None:
        days = inputs.arrays()
        self.groups = _groups(inputs, run.by, run.as_of)
        self.gid = _user_groups(inputs, self.groups, run.by, run.as_of)
        self.cut, self.end, self.horizon = _day(run.as_of), _day(inputs.last_event), run.longest
        self.install = days.install.astype(np.int64)
        n = len(self.install)
        user = days.user.astype(np.int64)
        age = days.date.astype(np.int64) - self.install[user]
        keep = (self.gid[user] >= 0) & (age < self.horizon)
        user, age, date, rev = user[keep], age[keep], days.date[keep], days.revenue[keep]
        post, paid = date > self.cut, rev > 0
        self.age, self.user, self.rev, self.pre_mask = age, user, rev, ~post & (age >= 1)

        def count(mask, weights=None):  # per user (by iu), of the user-days in ``mask``
            return np.bincount(user[mask], weights=None if weights is None else weights[mask],
                               minlength=n).astype(float)

        self.post_active, self.post_paying = count(post), count(post & paid)
        self.post_revenue = count(post, rev)
        pre = self.pre_mask
        self.pre_active, self.pre_paying = count(pre), count(pre & paid)
        self.day0_paid = count((age == 0) & paid) > 0
        logs = np.log(np.where(pre & paid, rev, 1.0))
        self.pre_log_sum = count(pre & paid, logs)
        # Ages each user was seen after as-of: from the day after as-of to the data's end.
        self.first_age = self.cut - self.install + 1
        self.last_age = np.minimum(self.end - self.install, self.horizon - 1)

    def index(self, key: dict) -> int | None:
        by = [c for c in self.groups.columns if c != "users"]
        hit = np.ones(len(self.groups), dtype=bool)
        for column in by:
            hit &= self.groups[column].astype(str).to_numpy() == str(key.get(column))
        found = np.flatnonzero(hit)
        return int(found[0]) if found.size else None

    def users(self, g: int) -> np.ndarray:
        return np.flatnonzero(self.gid == g)

    def window(self, users: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-user (active, paying-or-revenue) sums before as-of over ages ``first … last``."""
        mask = self.pre_mask & (self.age >= first) & (self.age <= last)
        n = len(self.install)
        active = np.bincount(self.user[mask], minlength=n).astype(float)[users]
        paying = np.bincount(self.user[mask & (self.rev > 0)], minlength=n).astype(float)[users]
        revenue = np.bincount(self.user[mask], weights=self.rev[mask], minlength=n)[users]
        return active, np.stack([paying, revenue])


def _laws(models: dict, horizon: int) -> dict[str, np.ndarray]:
    """The activity rate each fitted retention law implies on ages ``0 … horizon−1``."""
    laws = activity_laws(models, horizon)
    for rate in laws.values():
        rate[0] = 0.0  # day 0 is never after as-of: every user installed by then
    return laws


def _checks(f: _Followup, g: int, models: dict, wanted: set[str], tolerance: float):
    """``(check, status, expected, observed, change, z, message)`` of group ``g``."""
    users = f.users(g)
    active = f.post_active[users]
    lo, hi = f.first_age[users], f.last_age[users]
    seen = np.maximum(hi - lo + 1, 0).astype(float)
    lo = np.minimum(lo, f.horizon)  # users past the horizon at as-of: nothing left to see
    for check, rate in _laws(models, f.horizon).items():
        if check not in wanted:
            continue
        cum = np.concatenate([[0.0], np.cumsum(rate)])
        implied = np.where(seen > 0, cum[hi + 1] - cum[lo], 0.0)  # each user's expected active days
        exp_rate, _ = _ratio(implied, seen)
        obs_rate, se = _ratio(active, seen)
        status, change, z = _judge(exp_rate, obs_rate, se, tolerance, _users(seen))
        span = f"days {int(lo[seen > 0].min())}–{int(hi[seen > 0].max())}" if seen.any() else "days"
        yield check, status, exp_rate, obs_rate, change, z, (
            f"{check}: users were active on {obs_rate:.1%} of their {span} after as-of; the fitted "
            f"curve implied {exp_rate:.1%} ({change:+.0f}%)")
    paying, revenue = f.post_paying[users], f.post_revenue[users]
    arpu = models.get("arpu")
    if arpu is not None and "ARPU stationarity" in wanted:
        fitted, fitted_se = float(arpu["arpu"]), float(arpu.get("arpu_se") or 0.0)
        observed, se = _ratio(revenue, active)
        status, change, z = _judge(fitted, observed, float(np.hypot(se, fitted_se)), tolerance,
                                   _users(active))
        word = "above" if change >= 0 else "below"
        yield "ARPU stationarity", status, fitted, observed, change, z, (
            f"ARPU stationarity: ARPU per active day after as-of was {abs(change):.0f}% {word} "
            f"the fitted {_money(fitted)} ({_money(observed)} over {int(active.sum()):,} active days)")
    if arpu is not None and wanted & {"payer share", "revenue per paying day"}:
        first, last = int(arpu.get("window_first_day", 1)), int(arpu.get("window_last_day", f.horizon))
        before, (before_paying, before_revenue) = f.window(users, first, last)
        for check, num, den, num0, den0, fmt in (
                ("payer share", paying, active, before_paying, before, "{:.1%}"),
                ("revenue per paying day", revenue, paying, before_revenue, before_paying, "{:,.2f}")):
            if check not in wanted:
                continue
            expected, se0 = _ratio(num0, den0)
            observed, se1 = _ratio(num, den)
            status, change, z = _judge(expected, observed, float(np.hypot(se0, se1)), tolerance,
                                       _users(den0, den))
            what = "of active days paid" if check == "payer share" else "per paying day"
            yield check, status, expected, observed, change, z, (
                f"{check}: {fmt.format(observed)} {what} after as-of, against "
                f"{fmt.format(expected)} before it (days {first}–{last}; {change:+.0f}%)")
    btyd = models.get("btyd")
    if btyd is not None and wanted & {"paying law (BG/BB)", "spending law (BG/BB)"}:
        status0 = f.day0_paid[users]
        a = np.where(status0, btyd["pay_a_day0_payer"], btyd["pay_a"])
        b = np.where(status0, btyd["pay_b_day0_payer"], btyd["pay_b"])
        x, y = f.pre_active[users], f.pre_paying[users]
        pay_rate = (a + y) / (a + b + x)  # the beta-binomial posterior mean of each user's π
        if "paying law (BG/BB)" in wanted:
            expected, _ = _ratio(pay_rate * active, active)
            observed, se = _ratio(paying, active)
            status, change, z = _judge(expected, observed, se, tolerance, _users(active))
            yield "paying law (BG/BB)", status, expected, observed, change, z, (
                f"paying law (BG/BB): {observed:.1%} of active days after as-of paid; the fitted "
                f"law implied {expected:.1%} given each user's history ({change:+.0f}%)")
        if "spending law (BG/BB)" in wanted:
            var, prior = float(btyd["spend_log_sd"]) ** 2, float(btyd["spend_user_log_sd"]) ** 2
            lbar = np.divide(f.pre_log_sum[users], y, out=np.zeros(len(users)), where=y > 0)
            post_var = 1.0 / (1.0 / prior + y / var)
            post_mean = post_var * (float(btyd["spend_log_mean"]) / prior + y * lbar / var)
            amount = np.exp(post_mean + 0.5 * (post_var + var))  # as the btyd forecast has it
            expected, _ = _ratio(amount * paying, paying)
            observed, se = _ratio(revenue, paying)
            status, change, z = _judge(expected, observed, se, tolerance, _users(paying))
            yield "spending law (BG/BB)", status, expected, observed, change, z, (
                f"spending law (BG/BB): {_money(observed)} per paying day after as-of; the fitted "
                f"law implied {_money(expected)} given each user's history ({change:+.0f}%)")


def _plan(assumptions: list[str]) -> list[tuple[str, tuple[str, ...], str]]:
    """Each recorded sentence with the checks that test it, or the reason none does."""
    plan: list[tuple[str, tuple[str, ...], str]] = []
    for text in assumptions:
        checks = next((c for key, c in _CHECKED if key in text), ())
        reason = "" if checks else next((r for key, r in _NOT_CHECKABLE if key in text),
                                        _NOT_TESTABLE)
        plan.append((text, checks, reason))
    return plan


_ORDER = ("broken", "unclear", "held", "too little data")


def _findings(run: PastRun, follow: _Followup, wanted: set[str], tolerance: float) -> list[Finding]:
    findings = []
    for group in run.params.get("groups") or []:
        g = follow.index(group.get("key") or {})
        if g is None:  # a group the newer data do not have: nothing to test it against
            continue
        label = ", ".join(f"{c}={group['key'].get(c)}" for c in run.by)
        for check, status, expected, observed, change, z, message in _checks(
                follow, g, group.get("models") or {}, wanted, tolerance):
            if status == "too little data":  # no numbers worth printing
                message = f"{check}: fewer than {MIN_USERS} users to judge by after as-of"
            findings.append(Finding(run.run_id, run.as_of, run.model_version, label, check, status,
                                    expected, observed, change, z, message))
    return findings


def check_run(run: PastRun, inputs: Inputs, limits: Thresholds) -> tuple[list[Finding], list[Verdict]]:
    """Every check of every group of ``run``, and each recorded assumption's verdict."""
    plan = _plan([str(a) for a in run.params.get("assumptions") or []])
    wanted = {c for _, checks, _ in plan for c in checks}
    follow = _Followup(run, inputs) if wanted and run.as_of < inputs.last_event else None
    findings = _findings(run, follow, wanted, limits.assumption_tolerance) if follow is not None else []
    computed = {f.check for f in findings}
    verdicts = []
    for text, checks, reason in plan:
        mine = [f for f in findings if f.check in checks]
        if not checks:
            status, detail = "not checkable", reason
        elif follow is None:
            status, detail = "too little data", "the newer data hold no day after this run's as-of"
        elif not mine:
            missing = ", ".join(c for c in checks if c not in computed)
            status, detail = "not checkable", f"params.json records no parameters for {missing}"
        else:
            status = min((f.status for f in mine), key=_ORDER.index)
            hits = [f for f in mine if f.status == status]
            groups = len({f.group for f in mine})
            detail = (f"{status} in {len({f.group for f in hits})} of {groups} group(s)"
                      + (f"; {hits[0].group}: {hits[0].message}" if status != "held" else ""))
        verdicts.append(Verdict(run.run_id, run.as_of, run.model_version, text, status, detail))
    return findings, verdicts


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    columns = list(Finding.__dataclass_fields__)
    return pd.DataFrame([f.__dict__ for f in findings], columns=columns)


def verdicts_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    columns = list(Verdict.__dataclass_fields__)
    return pd.DataFrame([v.__dict__ for v in verdicts], columns=columns)
