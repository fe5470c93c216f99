"""Where a block's figures come from: runs loaded once and refused unless undisturbed, their
judged claims, and the caption and table helpers every kind shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...runs import BadInput, Run, load_run
from .blocks import Block, relative

UNDISTURBED = "undisturbed"


class Sources:
    """Runs and their judged claims, each loaded once and checked for load status."""

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[Path, Run] = {}
        self.judged: dict[tuple, tuple] = {}
        self.links: list = []  # (verdicts block, [(claim number, page it links to)])

    def paths(self, value: str, where: str) -> list[Path]:
        out: list[Path] = []
        for part in [p.strip() for p in value.split(",") if p.strip()]:
            if Path(part).is_absolute():
                raise BadInput(f"{where}: {part}: a marker names its files relative to the repository root, "
                               "so the page reads the same on every checkout")
            if any(ch in part for ch in "*?["):
                found = sorted(p for p in self.root.glob(part) if p.is_file())
                if not found:
                    raise BadInput(f"{where}: no file matches {part}")
                out += found
            else:
                path = self.root / part
                if not path.is_file():
                    raise BadInput(f"{where}: {part}: no such file")
                out.append(path)
        if not out:
            raise BadInput(f"{where}: run= names no file")
        return list(dict.fromkeys(out))

    def run(self, path: Path, where: str) -> Run:
        if path not in self.runs:
            try:
                run = load_run(path)
            except BadInput as exc:
                raise BadInput(f"{where}: {exc}") from None
            status = run.load_status
            if status != UNDISTURBED:
                why = " ".join(str(run.load_why or status).split())
                raise BadInput(f"{where}: refused {relative(path, self.root)}: {status} ({why}); figures come only "
                               "from undisturbed runs")
            self.runs[path] = run
        return self.runs[path]

    def for_block(self, block: Block, one: bool, one_profile: bool = True) -> list[Run]:
        where = block.where(self.root)
        runs = [self.run(p, where) for p in self.paths(block.args["run"], where)]
        if one and len(runs) > 1:
            raise BadInput(f"{where}: {block.kind} reads one run, but run= matched {len(runs)} files")
        keys = sorted({r.key for r in runs})
        if len(keys) > 1:
            raise BadInput(f"{where}: runs of different machines ({', '.join(keys)}); one table, one machine")
        profiles = sorted({r.profile for r in runs})
        if one_profile and len(profiles) > 1:
            raise BadInput(f"{where}: runs of different profiles ({', '.join(profiles)}); {block.kind} takes "
                           "runs of one profile")
        return runs

    def claims(self, run: Run):
        """judge() on one run, with every comparison each claim counted (for the one-line summaries)."""
        key = (run.path,)
        if key not in self.judged:
            from ...claims import Benches, Claim, judge

            benches = Benches([run])
            counted: dict[int, list] = {}
            original = Claim.count

            # Claim.count is where a comparison enters a verdict; recording there keeps the
            # summaries on exactly the comparisons the report counts.
            def count(claim, supports, cmp=None):
                counted.setdefault(claim.number, []).append((supports, cmp))
                return original(claim, supports, cmp)

            Claim.count = count
            try:
                claims = judge(benches)
            finally:
                Claim.count = original
            groups = {item.name: item.bench.group for item in benches.items}
            self.judged[key] = (claims, counted, groups)
        return self.judged[key]


# --- captions ---------------------------------------------------------------------------------


def machine_text(info: dict) -> str:
    cores = info.get("cpu_count")
    parts = [f"{info.get('cpu_model') or 'unknown CPU'}" + (f", {cores} cores" if cores else ""),
             f"{info.get('threads', '?')} threads per framework",
             f"torch {info.get('torch_version') or 'not installed'}",
             f"TensorFlow {info.get('tensorflow_version') or 'not installed'}"]
    gpus = info.get("gpu_models") or []
    parts.append(", ".join(gpus) if gpus else "no GPU")
    return ", ".join(parts)


def caption(runs: list[Run], root: Path, what: str = "") -> str:
    files = ", ".join(f"`{relative(r.path, root)}`" for r in runs)
    profiles = "/".join(sorted({r.profile for r in runs}))
    commits = ", ".join(sorted({r.commit for r in runs}))
    many = f"{len(runs)} runs " if len(runs) > 1 else ""
    return (f"*{what + ' ' if what else ''}From {many}{files} ({profiles} profile): {machine_text(runs[0].machine_info)}; "
            f"commit {commits}; {', '.join(sorted({r.load_status for r in runs}))}. Written by `make docs`.*")


# --- table helpers ----------------------------------------------------------------------------


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(value) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def _device(runs: list[Run], block: Block, kinds: tuple[str, ...]) -> str:
    if "device" in block.args:
        return block.args["device"]
    found = set()
    for run in runs:
        for bench in run.benchmarks.values():
            if bench.group.split("/")[0] in kinds:
                info = bench.extra_info or {}
                found.add(info.get("device") or bench.group.rsplit("/", 1)[-1])
    return "cpu" if "cpu" in found or not found else sorted(found)[0]


def _choices(block: Block, key: str) -> set[str] | None:
    value = block.args.get(key)
    return {v.strip() for v in value.split(",")} if value else None


def _batch_order(batch):
    return (0, batch) if isinstance(batch, (int, float)) else (1, str(batch))


def _item_median(bench) -> float:
    return float(np.median(bench.data)) if bench.data is not None and bench.data.size >= 2 else bench.median


def _size(nbytes) -> str:
    return f"{nbytes / 2**20:g} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:g} KiB"
