"""What both JavaScript toolchains (`starlingmonkey`, `quickjs`) share: the exports a library snippet declares,
and errors that name the snippet's line.

A library's exports are its top-level `export function name(a, b)` (also `export async function`, and
`export const name = (a, b) => ...` / `= function (a, b) {...}`). JavaScript numbers are doubles, so every
parameter and result is an f64 (WIT `f64`): a result that is not a number arrives as NaN. Other exports
(`export const LIMIT = 5`, classes) stay inside the snippet; `export default` and `export { ... }` lists are
refused with the line to change, since their functions' arities cannot be read from the declaration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CompileError

LANG = "javascript"

_FUNCTION = re.compile(r"^[ \t]*export\s+(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)\s*\(", re.MULTILINE)
_BOUND = re.compile(
    r"^[ \t]*export\s+(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s+)?"
    r"(?:function\b\s*\*?\s*[\w$]*\s*\(|\(|([A-Za-z_$][\w$]*)\s*=>)",
    re.MULTILINE,
)
_REFUSED = re.compile(r"^[ \t]*export\s+(default\b|\{)", re.MULTILINE)
RESERVED = ("memory", "_start", "_initialize")  # names a core module needs for itself


@dataclass(frozen=True)
class JsExport:
    """One exported function: its JavaScript name, how many parameters it declares, and its line."""

    name: str
    arity: int
    line: int


def line_of(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def _arity(source: str, start: int) -> int:
    """The number of parameters in the list that starts after the `(` at `start` (defaults and destructuring
    may hold commas: only top-level ones count)."""
    depth, count, seen = 0, 0, False
    for ch in source[start:]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return count + 1 if seen else count
            depth -= 1
        elif ch == "," and depth == 0:
            count, seen = count + 1, False
            continue
        if not ch.isspace():
            seen = True
    return count


def derive_exports(source: str, filename: str) -> list[JsExport]:
    """The exported functions of a library snippet, in source order (see the module docstring)."""
    refused = _REFUSED.search(source)
    if refused:
        form = "export default" if refused.group(1) == "default" else "export { ... }"
        raise user_error(
            filename, line_of(source, refused.start(1)),
            f"{form} cannot be exported from a library: declare each function as `export function name(a, b)`",
        )
    found: dict[str, JsExport] = {}
    for match in _FUNCTION.finditer(source):
        found[match.group(1)] = JsExport(match.group(1), _arity(source, match.end()), line_of(source, match.start(1)))
    for match in _BOUND.finditer(source):
        arity = 1 if match.group(2) else _arity(source, match.end())
        found[match.group(1)] = JsExport(match.group(1), arity, line_of(source, match.start(1)))
    exports = sorted(found.values(), key=lambda e: e.line)
    if not exports:
        raise user_error(filename, 1, "a library exports functions: declare one as `export function name(a, b)`, "
                         "or build kind='command' to run the code")
    for exp in exports:
        if exp.name in RESERVED:
            raise user_error(filename, exp.line, f"{exp.name!r} is reserved for the module itself: rename the function")
    return exports


def user_error(filename: str, line: int, problem: str) -> CompileError:
    return CompileError(f"{LANG} compile error: {filename}:{line}: {problem}", diagnostics=problem, lang=LANG)


_JS_ERROR = re.compile(r"^(\w*Error): (.*)$", re.MULTILINE)


def js_error(output: str, filename: str, first_line_shift: int = 0) -> CompileError:
    """A CompileError from an engine's report of a JavaScript error (`SyntaxError: msg` and a frame
    `at FILE:LINE:COL`, as QuickJS and oxc print them): one line, the snippet's line first. `first_line_shift`:
    characters a wrapper put in front of the snippet's first line (taken off line 1's column)."""
    where = re.search(rf"{re.escape(filename)}:(\d+)(?::(\d+))?", output)
    if where and where.group(2) and where.group(1) == "1" and first_line_shift:
        output = output.replace(where.group(0), f"{filename}:1:{max(1, int(where.group(2)) - first_line_shift)}")
        where = re.search(rf"{re.escape(filename)}:(\d+)(?::(\d+))?", output)
    error = _JS_ERROR.search(output)
    text = f"{error.group(1)}: {error.group(2).strip()}" if error else next(
        (ln.strip() for ln in output.splitlines() if ln.strip()), "the engine rejected the snippet"
    )
    place = f"{filename}:{where.group(1)}" + (f":{where.group(2)}" if where.group(2) else "") if where else filename
    return CompileError(f"{LANG} compile error: {place}: {text}"[:500], diagnostics=output, lang=LANG)
