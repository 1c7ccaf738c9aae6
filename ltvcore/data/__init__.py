"""Input tables and the cohort arrays built from them."""
