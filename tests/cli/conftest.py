"""``ltv serve`` is tested with the API's fixtures: the same app behind a local socket."""

from tests.api.conftest import api, data_dir, make_api, parse, rest, serve  # noqa: F401
