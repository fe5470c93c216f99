"""The marker comments of generated blocks: find them in a page and read what they ask for."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ...runs import BadInput

START = re.compile(r"^<!-- generated: (?P<spec>.*?) -->\s*$")
END = "<!-- end generated -->"
# A block whose sources do not exist yet (the runs of a commit not made yet): plain text to
# this command until someone turns it into a generated block ("pending " removed, its
# placeholders replaced by run paths, "end pending" made "end generated").
PENDING = "<!-- pending generated:"
ANY_MARK = re.compile(r"^<!--\s*(generated\b|end generated\b)")
FENCE = re.compile(r"^(```|~~~)")


@dataclass
class Kind:
    """A kind of block: the function that renders it and the key=value options it takes."""

    render: object
    required: set = field(default_factory=set)
    optional: set = field(default_factory=set)


@dataclass
class Output:
    """What a block renders to: its lines, and side files (plots) it refers to."""

    lines: list[str]
    files: dict[Path, bytes] = field(default_factory=dict)


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies under it (how pages and messages name files), else as given."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


@dataclass
class Block:
    """One generated block: the marker's line numbers (0-based) and what it asks for."""

    path: Path
    start: int  # line of the start marker
    end: int  # line of the end marker
    kind: str
    args: dict[str, str]

    def where(self, root: Path) -> str:
        return f"{relative(self.path, root)}:{self.start + 1}"


def parse(path: Path, lines: list[str], root: Path, kinds: dict[str, Kind]) -> list[Block]:
    """The blocks of one file; unbalanced or malformed markers, or a kind not in ``kinds``, are BadInput."""
    blocks, open_at, spec, fence = [], None, "", None
    for number, line in enumerate(lines):
        text = line.strip()
        if open_at is None and (fence or FENCE.match(text)):
            # markers shown in a fenced code block are examples, not blocks
            if fence is None:
                fence = text[:3]
            elif text.startswith(fence):
                fence = None
            continue
        match = START.match(text)
        if match:
            if open_at is not None:
                raise BadInput(f"{relative(path, root)}:{number + 1}: a generated block starts inside the block opened at "
                               f"line {open_at + 1}; close that one first with {END}")
            open_at, spec = number, match.group("spec")
        elif text == END:
            if open_at is None:
                raise BadInput(f"{relative(path, root)}:{number + 1}: {END} without a <!-- generated: ... --> before it")
            kind, args = _spec(spec, f"{relative(path, root)}:{open_at + 1}", kinds)
            blocks.append(Block(path, open_at, number, kind, args))
            open_at = None
        elif ANY_MARK.search(text):
            raise BadInput(f"{relative(path, root)}:{number + 1}: malformed marker {text[:60]!r}; a block is "
                           f"'<!-- generated: KIND key=value ... -->' ... '{END}', each on its own line")
    if open_at is not None:
        raise BadInput(f"{relative(path, root)}:{open_at + 1}: generated block never closed (no {END} after it)")
    return blocks


def _spec(spec: str, where: str, kinds: dict[str, Kind]) -> tuple[str, dict[str, str]]:
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        raise BadInput(f"{where}: cannot read the marker ({exc})") from None
    if not words:
        raise BadInput(f"{where}: the marker names no kind; one of {', '.join(kinds)}")
    kind, args = words[0], {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or not key or not value:
            raise BadInput(f"{where}: {word!r} is not key=value")
        if key in args:
            raise BadInput(f"{where}: {key}= given twice")
        args[key] = value
    if kind not in kinds:
        raise BadInput(f"{where}: unknown table kind {kind!r}; one of {', '.join(kinds)}")
    allowed = kinds[kind].required | kinds[kind].optional
    for key in args:
        if key not in allowed:
            raise BadInput(f"{where}: {kind} takes {', '.join(sorted(allowed))}, not {key}=")
    missing = sorted(kinds[kind].required - set(args))
    if missing:
        raise BadInput(f"{where}: {kind} needs {', '.join(k + '=' for k in missing)}")
    return kind, args
