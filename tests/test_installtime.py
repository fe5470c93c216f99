"""installtime's table: sizes and times of the environments, refused by the docs when disturbed."""

from __future__ import annotations

from benchruns.studies import installtime

QUIET = {"schema": 1, "available": True, "other_cores": 0.01, "steal_cores": 0.0, "disturbed": False, "why": ""}
BUSY = dict(QUIET, other_cores=0.8, disturbed=True, why="other processes used 0.80 of a core")


def result(env, load, size=2_500_000_000, seconds=80.4, torch="2.13.0+cpu"):
    return {"env": env, "what": installtime.ENVS[env][0], "install_s": seconds, "size_bytes": size,
            "torch": torch, "load": load}


def test_table_rows_and_load():
    doc = installtime.table([result("default", QUIET), result("pypi", QUIET, 6_700_000_000, 155.0, "2.13.0")], "abc1234")
    assert doc["load"] == "undisturbed" and doc["commit"] == "abc1234"
    assert doc["rows"][0][1:] == ["2.13.0+cpu", "2.5 GB", "80 s"]
    assert doc["rows"][1][2] == "6.7 GB" and all(len(r) == len(doc["columns"]) for r in doc["rows"])
    assert installtime.table([result("default", QUIET), result("pypi", BUSY)], "abc1234")["load"] == "disturbed"


def test_folder_bytes_counts_files(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 5)
    assert installtime.folder_bytes(tmp_path) == 15
