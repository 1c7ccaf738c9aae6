"""Seeded fuzzing of ``ltv forecast``: mutations of a small sample's files and of the options.

Every case ends one of two ways, never another:
- bad input: exit 2, one line on stderr starting ``ltv: error:``, no traceback, no run written
  and no stage left behind;
- valid (if awkward) input: exit 0, a complete run whose ``forecast.csv`` and ``curve.csv``
  hold finite numbers and whose JSON files are strict JSON (no NaN or Infinity).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcore.cli import main
from ltvcore.sample import write_sample

SEED = 20261201
CASES = 320

BAD_CELLS = ["", " ", "-1", "-0.01", "nan", "NaN", "inf", "-inf", "1e308", "1e400", "abc",
             "1,5", "0x10", "2026-02-30", "2026-13-01", "26-01-05", " 2026-01-05", "20260105",
             "2026-W02-1", "9999-12-31", "1969-12-31", "0001-01-01", "2100-01-01",
             "1" * 30, "٣", "²", "é", "\u200b", "a\nb", "\x00", "'", '"', "null", "None",
             "true", "1e-320", "5e-324", "0", "000001", "23851234567890123456"]
ODD_IDS = ["01", "1", "001", "23851234567890123456", "1e3", "TRUE", "null", "NaN", "",
           "a,b", 'a"b', "ü", "x" * 300, "-0", "0x1F"]
OPTIONS = {
    "--as-of": ["2030-01-01", "2026-01-05", "2026-01-01", "1999-01-01", "2026-W02-1",
                "20260105", "2026-02-30", "", "9999-12-31"],
    "--horizons": ["30", "0", "-1", "30,x", "99999", "1,2,3", "", "3650", "30,30"],
    "--by": ["campaign", "os", "campaign,os", "ltv", "day", "model", "users", "horizon_days",
             "spend", "roas", "nope", "campaign,campaign", ",", "channel,is_emulator"],
    "--observe-days": ["1", "0", "-3", "400", "x", "2.5"],
    "--confidence": ["0.5", "0.99", "1", "0", "-0.1", "nan", "x", "0.999999"],
    "--model": ["curve", "geometric", "prophet", ""],
    "--retention": ["sbg", "rational", "weibull"],
    "--window-days": ["1", "3", "0", "x"],
    "--out": ["s3://", "http://x", "s3://Bad_Bucket", "ftp://host/p"],
}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, list[str]]:
    folder = tmp_path_factory.mktemp("base")
    write_sample(folder, install_days=3, observed_days=8, n_campaigns=2, users_per_day=6, seed=5)
    return {name: (folder / f"{name}.csv").read_text().splitlines()
            for name in ("events", "installs", "spend")}


def mutate_cell(lines: list[str], rng: random.Random, pool: list[str]) -> list[str]:
    lines = list(lines)
    row = rng.randrange(1, len(lines))
    cells = lines[row].split(",")
    cells[rng.randrange(len(cells))] = rng.choice(pool)
    lines[row] = ",".join(cells)
    return lines


def mutate_file(lines: list[str], rng: random.Random) -> list[str] | bytes:
    kind = rng.randrange(12)
    header, rows = lines[0], lines[1:]
    if kind <= 3:
        return mutate_cell(lines, rng, BAD_CELLS)
    if kind == 4:  # a column dropped or renamed
        names = header.split(",")
        names[rng.randrange(len(names))] = rng.choice(["", "x", names[0]])
        return [",".join(names)] + rows
    if kind == 5:
        return [header]  # no rows
    if kind == 6:
        return lines[: rng.randrange(1, len(lines))] + [lines[-1][: rng.randrange(1, 8)]]
    if kind == 7:  # an extra column, or a row with one cell too many
        if rng.random() < 0.5:
            return [header + ",extra"] + [r + ",v" for r in rows]
        return lines + [rows[0] + ",surplus"]
    if kind == 8:  # bytes that are not UTF-8, a BOM, CRLF
        text = "\n".join(lines) + "\n"
        choice = rng.randrange(3)
        if choice == 0:
            return text.encode().replace(b"u0", b"\xff\xfeu0", 1)
        if choice == 1:
            return b"\xef\xbb\xbf" + text.encode()
        return text.replace("\n", "\r\n").encode()
    if kind == 9:  # a duplicated row
        return lines + [rng.choice(rows)]
    if kind == 10:  # odd ids in the first column
        return mutate_first_column(lines, rng)
    return [r for r in lines if rng.random() > 0.3] or [header]


def mutate_first_column(lines: list[str], rng: random.Random) -> list[str]:
    out = [lines[0]]
    for row in lines[1:]:
        cells = row.split(",")
        if rng.random() < 0.3:
            cells[0] = rng.choice(ODD_IDS)
        out.append(",".join(cells))
    return out


def case(base: dict[str, list[str]], index: int) -> tuple[dict[str, list[str] | bytes | None], list[str]]:
    rng = random.Random(SEED * 1000 + index)
    files: dict[str, list[str] | bytes | None] = dict(base)
    options: list[str] = []
    for _ in range(rng.choice([1, 1, 2])):
        target = rng.choice(["events", "events", "installs", "spend", "options", "options",
                             "drop"])
        if target == "options":
            name = rng.choice(sorted(OPTIONS))
            options += [name, rng.choice(OPTIONS[name])]
        elif target == "drop":
            files[rng.choice(["installs", "spend"])] = None
        else:
            current = files[target]
            if isinstance(current, list):
                files[target] = mutate_file(current, rng)
    return files, options


def write(folder: Path, files) -> list[str]:
    args = []
    for name, content in files.items():
        if content is None:
            continue
        path = folder / f"{name}.csv"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text("\n".join(content) + "\n")
        args += [f"--{name}", str(path)]
    return args


def strict_json(path: Path) -> None:
    def refuse(constant: str):
        raise AssertionError(f"{path.name} holds {constant}, which is not JSON")

    json.loads(path.read_text(), parse_constant=refuse)


def check_run(store: Path) -> None:
    (run,) = [p for p in (store / "runs").iterdir() if not p.name.startswith(".")]
    for name in ("forecast.csv", "curve.csv"):
        frame = pd.read_csv(run / name, dtype=str, keep_default_na=False)
        for column in ("ltv", "ltv_lower", "ltv_upper", "roas", "roas_lower", "roas_upper"):
            if column in frame:
                cells = frame[column][frame[column] != ""]
                assert np.isfinite(cells.astype(float)).all(), f"{name}:{column}"
    for name in ("params.json", "manifest.json"):
        strict_json(run / name)


def nothing_written(store: Path) -> None:
    runs = store / "runs"
    assert not runs.exists() or not any(runs.rglob("manifest.json"))
    stages = store / ".staging"
    assert not stages.exists() or not any(p for p in stages.rglob("*") if p.is_file())


def test_generated_cli_inputs_end_in_exit_2_or_a_finite_run(base, tmp_path, capsys):
    outcomes = {0: 0, 2: 0}
    for index in range(CASES):
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        files, options = case(base, index)
        store = folder / "store"
        args = ["forecast", *write(folder, files), "--out", str(store), "--quiet", *options]
        if "--events" not in args:
            continue
        code = main(args)
        out, err = capsys.readouterr()
        context = f"case {index}: ltv {' '.join(args[1:])}\n{err}"
        assert code in (0, 2), context
        assert "Traceback" not in err + out, context
        if code == 2:
            assert err.startswith("ltv: error: ") and err.count("\n") == 1, context
            if "--out" not in options:
                nothing_written(store)
        else:
            check_run(store)
        outcomes[code] += 1
        shutil.rmtree(folder)
    print(f"fuzzed {sum(outcomes.values())} CLI inputs: {outcomes[2]} refused (exit 2), "
          f"{outcomes[0]} forecast (exit 0)")
    assert sum(outcomes.values()) >= 300
    assert outcomes[0] >= 30 and outcomes[2] >= 100  # the mutations reach both outcomes
