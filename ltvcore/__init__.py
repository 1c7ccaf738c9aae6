"""ltv-forecast's pure library: cohort data, retention and ARPU models, horizon LTV."""

__version__ = "0.1.0"
