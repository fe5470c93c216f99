"""How this fixture was made from the real runs in results/ (python tests/data/history/make_fixture.py).

It was made at commit 3ce8b96, when results/ still held the two dad9a29-dirty runs (removed
from results/ since, in 82691dc); rerunning it now gives the same files less those two.

* ``amd-epyc-2c-cpu-480e5c54/``: real runs of the 2-core development machine, unchanged
  except that the raw rounds (stats.data) are dropped to keep the files small (the history
  uses median, q1 and q3): the 14 quick runs (dad9a29, 6640063 and twelve of 741e8b6, in
  the order they ran) and the two full runs, cut to the transfer cases and the graph cases
  of mlp-small so that a second profile is present.
* ``synthetic-xeon-4c-cpu-0000test/``: a SECOND MACHINE THAT DOES NOT EXIST, made from the
  same twelve real quick processes of 741e8b6 (their real spread, in their real order) for
  the tests of the multi-machine views: a made-up CPU, torch 2.12.0, a different machine
  key, the first six runs labelled commit aaaaaaa and the last six bbbbbbb, everything
  1.3x slower (a slower machine), and one benchmark (INJECTED) 1.5x slower again from
  bbbbbbb on: a regression the statistics must find between aaaaaaa and bbbbbbb.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "results" / "amd-epyc-2c-cpu-480e5c54"
HERE = Path(__file__).resolve().parent
REAL = HERE / "amd-epyc-2c-cpu-480e5c54"
FAKE_KEY = "synthetic-xeon-4c-cpu-0000test"
FAKE = HERE / FAKE_KEY
INJECTED = "benches/test_graph_modes.py::test_steady_state[cpu-mlp-small-b32-inference-torch-eager]"


def strip(doc: dict, keep=lambda b: True) -> dict:
    doc["benchmarks"] = [b for b in doc["benchmarks"] if keep(b)]
    for b in doc["benchmarks"]:
        b["stats"].pop("data", None)
    return doc


def write(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")


def main() -> None:
    for folder in (REAL, FAKE):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    fake_i = 0
    for path in sorted(SOURCE.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["machine_info"].get("profile") == "full":
            def keep(b):
                return b["group"].startswith("transfer/") or "mlp-small" in b["group"]
            write(REAL / path.name, strip(doc, keep))
            continue
        write(REAL / path.name, strip(doc))
        if "_741e8b6" not in path.name:
            continue
        commit = "aaaaaaa" if fake_i < 6 else "bbbbbbb"
        fake_i += 1
        info = doc["machine_info"]
        info.update(cpu_model="Synthetic Xeon (test fixture, not a real machine)", cpu_count=4,
                    torch_version="2.12.0", machine_key=FAKE_KEY, node="fixture")
        doc["commit_info"] = {"id": commit * 5 + "0" * 5, "dirty": False, "branch": "fixture"}
        for b in doc["benchmarks"]:
            factor = 1.3 * (1.5 if b["fullname"] == INJECTED and commit == "bbbbbbb" else 1.0)
            for field in ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev", "ld15iqr", "hd15iqr"):
                if isinstance(b["stats"].get(field), (int, float)):
                    b["stats"][field] *= factor
        write(FAKE / path.name.replace("741e8b6", commit), doc)


if __name__ == "__main__":
    main()
