"""What the component toolchains share (Python through componentize-py, JavaScript through componentize-js): the
WIT they build against (`wit/`: WASI's packages and the command world) and the WIT names of source identifiers."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["WIT_DIR", "WIT_NAME", "wit_name"]

WIT_DIR = Path(__file__).with_name("wit")
WIT_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*$")


def wit_name(py_name: str) -> str | None:
    """The kebab-case WIT name of a Python name (`fib_fast`, `fibFast` -> `fib-fast`; `fib_2` -> `fib2`)."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", py_name)
    text = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", text).lower()
    parts: list[str] = []
    for part in filter(None, text.split("_")):
        if part[0].isdigit():
            if not parts:
                return None
            parts[-1] += part
        else:
            parts.append(part)
    name = "-".join(parts)
    return name if WIT_NAME.match(name) else None
