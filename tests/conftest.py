"""Suite-wide settings."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _posterior_cache(tmp_path_factory):
    # btyd caches posteriors under ~/.cache by default: keep the suite's out of the user's home
    # (and every run of the suite starting from an empty cache).
    mp = pytest.MonkeyPatch()
    mp.setenv("LTV_CACHE_DIR", str(tmp_path_factory.mktemp("posteriors")))
    yield
    mp.undo()
