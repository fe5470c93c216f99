"""The ``table data=FILE`` block: a table from a measurement script's JSON or CSV file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ...runs import BadInput
from .blocks import Block, Output, relative
from .sources import UNDISTURBED, Sources, md_table


def read_data(path: Path, where: str, root: Path) -> tuple[dict, list[str], list[list[str]]]:
    """A data file of figures from a measurement script.

    JSON: ``{"source": ..., "machine": ..., "commit": ..., "load": "undisturbed",
    "columns": [...], "rows": [[...], ...]}``. CSV: ``# key: value`` lines for the same
    four fields, then a header row and the data rows. ``source`` says what measured it
    (the command); ``load`` must be ``undisturbed``.
    """
    name = relative(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{where}: {name}: cannot read ({exc})") from None
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: {name}: not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict):
            raise BadInput(f"{where}: {name}: not a JSON object with columns and rows")
        meta, columns, rows = doc, doc.get("columns"), doc.get("rows")
    elif path.suffix == ".csv":
        meta, body = {}, []
        for line in text.splitlines():
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                meta[key.strip()] = value.strip()
            elif line.strip():
                body.append(line)
        table = list(csv.reader(io.StringIO("\n".join(body))))
        columns, rows = (table[0], table[1:]) if table else (None, None)
    else:
        raise BadInput(f"{where}: {name}: a data file is .json or .csv")
    for key in ("source", "machine", "commit", "load"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise BadInput(f"{where}: {name}: no '{key}' field; a data file says what measured it, where, at which "
                           "commit and under what load")
    if meta["load"] != UNDISTURBED:
        raise BadInput(f"{where}: refused {name}: its load is {meta['load']!r}, not undisturbed; "
                       "figures come only from undisturbed measurements")
    if not isinstance(columns, list) or not columns or not isinstance(rows, list) or \
            not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        raise BadInput(f"{where}: {name}: needs 'columns' and 'rows' of the same width")
    return meta, [str(c) for c in columns], [[str(c) for c in r] for r in rows]


def k_table(block: Block, src: Sources, target: Path) -> Output:
    where = block.where(src.root)
    if Path(block.args["data"]).is_absolute():
        raise BadInput(f"{where}: {block.args['data']}: a marker names its files relative to the repository root, "
                       "so the page reads the same on every checkout")
    path = src.root / block.args["data"]
    if not path.is_file():
        raise BadInput(f"{where}: {block.args['data']}: no such file")
    meta, columns, rows = read_data(path, where, src.root)
    title = meta.get("title")
    text = (f"*{title + ' ' if title else ''}From `{relative(path, src.root)}`, measured by {meta['source']}: "
            f"{meta['machine']}; commit {meta['commit']}; {meta['load']}. Written by `make docs`.*")
    return Output([text, ""] + md_table(columns, rows))
