"""Retention from activity rates: two fits (sBG, rational) and their ensemble, and BdW.

Every estimator works on all groups at once: inputs are ``(G, D)`` arrays, parameters are
``(G, P)``, and the optimisers are vectorised Newton / Levenberg–Marquardt iterations with
per-group step control, so 1,000 groups cost about what one does.
"""

from ltvcore.retention.activity import LOGIN_DAY1_RATE, ActivityCurve, activity_curve
from ltvcore.retention.bdw import BdWRetention
from ltvcore.retention.rational import RationalRetention
from ltvcore.retention.sbg import SBGRetention

__all__ = ["LOGIN_DAY1_RATE", "ActivityCurve", "BdWRetention", "RationalRetention", "SBGRetention", "activity_curve"]
