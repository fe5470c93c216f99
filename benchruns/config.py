"""Thresholds: the --threshold value and the per-group patterns of thresholds.toml."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from .runs import BadInput

DEFAULT_CONFIG = Path(__file__).with_name("thresholds.toml")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_percent(text, what: str = "--threshold") -> float:
    """'10%' -> 0.10. A bare number is refused: '0.1' could mean 10% or 0.1%."""
    match = _PERCENT.match(str(text))
    if not match:
        raise BadInput(f"bad {what} value {text!r}: write a percentage such as 10%")
    value = float(match.group(1)) / 100
    if not 0 < value < 10:
        raise BadInput(f"bad {what} value {text!r}: must be above 0% and below 1000%")
    return value


class Thresholds:
    """Group -> threshold: the first matching glob pattern of the config, else the default."""

    def __init__(self, default: float, patterns: list[tuple[str, float]] | None = None, source: str | None = None):
        self.default = default
        self.patterns = patterns or []
        self.source = source

    def __call__(self, group: str) -> float:
        for pattern, value in self.patterns:
            if fnmatch.fnmatchcase(group, pattern):
                return value
        return self.default


def load_thresholds(default_text: str, config: str | None, use_config: bool = True) -> Thresholds:
    """Thresholds from --threshold and the TOML file (``[thresholds]`` table, pattern = "N%")."""
    import tomllib

    default = parse_percent(default_text)
    if not use_config:
        return Thresholds(default)
    path = Path(config) if config else DEFAULT_CONFIG
    if not path.is_file():
        if config:
            raise BadInput(f"{path}: no such threshold config file")
        return Thresholds(default)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid TOML ({exc})") from None
    table = doc.get("thresholds", {})
    if not isinstance(table, dict):
        raise BadInput(f"{path}: [thresholds] must be a table of \"group-pattern\" = \"N%\"")
    patterns = [(str(k), parse_percent(v, f"threshold for {k!r} in {path}")) for k, v in table.items()]
    return Thresholds(default, patterns, str(path))
