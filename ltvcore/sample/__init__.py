"""Synthetic mobile-game (or retail) data with a known truth, for the demo, tests and benchmarks.

The generative story
--------------------
Everything is drawn from one ``np.random.default_rng(seed)``, vectorised over users (the only
Python loops run over campaigns or over chunks of user-days), so a seed fixes the whole data set.

1. **Campaigns.** Names come from a fixed list (``fb_us_q1``, ``google_uac_kr``, ``tiktok_jp``,
   ``organic``, ...), cycled with a suffix ``_2``, ``_3``, ... past its end. Key traits are
   *stratified* across campaigns (each campaign gets its own slice of the range, shuffled), so
   campaigns always differ: size (a lognormal multiplier of ``users_per_day``, mean 1, roughly a
   10x spread), retention quality, login propensity, payer share and target ROAS.
2. **Installs.** Per campaign and calendar day, ``Poisson(users_per_day x size x weekday effect x
   Gamma noise)``; weekends bring more installs. Users are numbered ``u000001``, ... in install
   order. Segments: ``os`` (iOS share depends on the network: ``apple_search`` is all iOS,
   Google UAC mostly Android), ``channel`` (``organic`` for organic campaigns, else ``paid``),
   ``is_emulator`` (``"true"``/``"false"``; Android only, a few percent on some ad networks).
3. **Lifetimes.** Each user has a continuous lifetime ``T``; the last day alive is
   ``L = floor(T)``, so ``P(L >= t) = S(t)``. The churn *law* differs by campaign (cycled):
   ``sbg`` (churn probability theta ~ Beta(a, b), geometric lifetime, Fader-Hardie),
   ``weibull_lt1`` (Weibull, shape < 1: decreasing hazard), ``exp_mix`` (quick churners +
   loyal core, two exponentials) and ``weibull_gt1`` (quick churners + a core whose lifetime is
   Weibull with shape > 1: wear-out). Each law is fitted to the campaign's targets
   ``S(1)`` in 0.40-0.66 and ``S(30)`` in 0.05-0.17 (games), so day-1 activity is about
   25-55%, day-30 3-15% and day-180 0.5-5%, with different tails. A payer lives the longer
   of two draws, stretched 1.5-2.5x (payers retain better); emulators live 10x shorter.
4. **Activity.** Every user is active on day 0 (the install day). On days ``1..L`` a user is
   active with probability ``p x weekend boost`` where ``p ~ Beta`` is the user's login
   propensity (campaign mean 0.55-0.82, higher in better-retaining campaigns) and the weekend
   boost is 1.10-1.20 (x1.1 more on promotion days).
5. **Revenue (kind="game").** Payers are a user trait (campaign share 1.5-6.5%, x1.3 on iOS,
   x0.85 on Android, x0.05 for emulators). On an active day a payer buys with probability ``q``
   (0.08-0.22; ``q0`` 0.35-0.6 on day 0: starter packs); an amount is lognormal (campaign
   median 2.5-6, sigma 0.7-1.0) x a per-payer whale factor ``lognormal(0, 0.6-1.1)`` (heavy
   tail) x1.25 on iOS, capped at 500 a day; starter packs cost half the median. Non-payers never
   pay. A few global **promotions** (about 2-3 per year, 3 days each, the same calendar dates
   for everyone) multiply the purchase probability by 2.5 and amounts by 1.4.
6. **kind="purchase"** (retail / subscription-like): the laws are fitted to higher targets
   (``S(1)`` 0.55-0.85, ``S(30)`` 0.15-0.35) and lifetimes stretched 8-15x (months; many
   one-time buyers and a loyal core), every active day is a purchase (revenue > 0), the install
   day is the first purchase, and a customer buys on a later alive day with probability ``r``
   where ``r ~ Gamma`` (mean one purchase per 20-40 days, x weekend boost, x2.5 in promotions);
   basket values are lognormal (median 15-60, a per-customer factor, x1.15 on iOS).
7. **Spend.** Each paid campaign's cost per install is its realised LTV at ``min(365, horizon)``
   divided by a stratified target ROAS in 0.25-3.0 (x lognormal noise), so some campaigns pay
   back well and others far from it. Organic campaigns have no spend row (ROAS is undefined).

Revenue is rounded to cents inside the simulation, so :func:`truth` is exact for written files.

Modules
-------
``campaigns``
    Campaign names, stratified traits, iOS/emulator shares and the churn-law fits (step 1).
``users``
    Installs, segments, payer status, propensities and lifetimes (steps 2, 3 and 5's traits).
``activity``
    Weekday effects, promotions, and the active user-days with their revenue (steps 4-6).
``spend``
    Cost per install from realised LTV and target ROAS (step 7).
``simulation``
    :class:`Simulation` and :func:`simulate`, which runs the stages above in a fixed order.
``ground_truth``
    :func:`truth` (realised LTV) and :func:`cut` (what is visible on a date).
``files``
    :func:`write_sample` and its size bounds (``MAX_*``).
"""

from __future__ import annotations

from ltvcore.sample.campaigns import campaign_names
from ltvcore.sample.errors import SampleError
from ltvcore.sample.files import MAX_CAMPAIGNS, MAX_INSTALL_DAYS, MAX_OBSERVED_DAYS, MAX_USERS, write_sample
from ltvcore.sample.ground_truth import cut, truth
from ltvcore.sample.simulation import Simulation, simulate

__all__ = [
    "MAX_CAMPAIGNS",
    "MAX_INSTALL_DAYS",
    "MAX_OBSERVED_DAYS",
    "MAX_USERS",
    "SampleError",
    "Simulation",
    "campaign_names",
    "cut",
    "simulate",
    "truth",
    "write_sample",
]
