"""``ltv warehouse``: ingest, refresh and status from the command line; bad input exits 2."""

import json

import pytest

from ltvcore.cli import main
from ltvcore.sample import write_sample


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, install_days=5, observed_days=10, n_campaigns=2, users_per_day=30, seed=3)
    return folder


def test_ingest_refresh_status_then_forecast_from_the_warehouse(sample_dir, tmp_path, capsys):
    wh = str(tmp_path / "wh")
    assert main(["warehouse", "ingest", wh, "--events", str(sample_dir / "events.csv"),
                 "--installs", str(sample_dir / "installs.csv")]) == 0
    assert "to aggregate: run ltv warehouse refresh" in capsys.readouterr().out
    assert main(["warehouse", "refresh", wh]) == 0
    assert "aggregated 14 date(s)" in capsys.readouterr().out
    assert main(["warehouse", "refresh", wh]) == 0
    assert "aggregated 0 date(s), 14 unchanged" in capsys.readouterr().out
    assert main(["warehouse", "status", wh, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["dates"] == 14 and status["stale_dates"] == [] and len(status["digest"]) == 64
    assert main(["forecast", "--events", wh, "--out", str(tmp_path / "store"), "--quiet"]) == 0
    run = capsys.readouterr().out.strip()
    assert main(["reproduce", run]) == 0
    assert "identical" in capsys.readouterr().out


@pytest.mark.parametrize("args,fragment", [
    (["warehouse", "ingest", "{wh}"], "name at least one file"),
    (["warehouse", "ingest", "{wh}", "--events", "{missing}"], "file not found"),
    (["warehouse", "refresh", "{wh}"], "is not a warehouse"),
    (["warehouse", "status", "{wh}"], "not a warehouse"),
    (["forecast", "--events", "{wh}", "--installs", "{sample}/installs.csv"], "file not found"),
])
def test_bad_warehouse_commands_exit_2_with_one_line(sample_dir, tmp_path, capsys, args, fragment):
    filled = [a.format(wh=tmp_path / "wh", missing=tmp_path / "nope.csv", sample=sample_dir)
              for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
