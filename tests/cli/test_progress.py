"""The CLI's progress line: every stage on a terminal, nothing at all in scripts and pipes."""

import io

from ltvcore.cli import main
from ltvcore.cli.progress import StageDisplay
from ltvcore.sample import write_sample


def test_a_terminal_sees_each_stage_with_its_step(tmp_path):
    write_sample(tmp_path, install_days=3, observed_days=8, n_campaigns=2, users_per_day=20)
    from ltvcore.request import ForecastRequest
    from ltvcore.workflow.run import forecast_to_store

    screen = io.StringIO()
    with StageDisplay(True, stream=screen) as progress:
        forecast_to_store(ForecastRequest(), events=tmp_path / "events.csv",
                          installs=tmp_path / "installs.csv", store=tmp_path / "store",
                          progress=progress)
    assert progress.stages == ["reading", "aggregating", "fitting", "writing"]
    assert screen.getvalue()  # the live line was drawn (and cleared: transient)


def test_scripts_and_pipes_get_no_progress_output(tmp_path, capsys):
    write_sample(tmp_path, install_days=3, observed_days=8, n_campaigns=2, users_per_day=20)
    code = main(["forecast", "--events", str(tmp_path / "events.csv"), "--installs",
                 str(tmp_path / "installs.csv"), "--out", str(tmp_path / "store")])
    assert code == 0
    assert capsys.readouterr().err == ""
    assert not StageDisplay.for_terminal(quiet=True).enabled
