"""Argument values: what a user typed or passed, as the values a Wasm function of a given signature takes, the
same on every engine."""

from __future__ import annotations

import ast
import ctypes
import json
import operator
from collections.abc import Iterable
from typing import Any

from ..errors import UsageError

__all__ = ["as_tuple", "coerce_args", "parse_cli_value", "parse_value"]


def parse_value(text: str) -> Any:
    """A typed-in argument as a Python value: 10, 0x1f, -2.5, nan, 'text' (quoted), else the bare string (the
    magics' `--invoke f 1 2` and the widgets' argument boxes)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_cli_value(text: str) -> Any:
    """A command-line argument: an integer (also 0x..), a float, else JSON (lists, records, quoted strings,
    true/false, for components), else the text itself as a string (for components' `string` parameters)."""
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def as_tuple(values: Iterable[Any] | Any) -> tuple[Any, ...]:
    if isinstance(values, (list, tuple)):
        return tuple(values)
    return (values,)


def coerce_args(name: str, params: tuple[str, ...], args: tuple[Any, ...]) -> list[Any]:
    """Python arguments -> values for parameters of types `params`, the same on every engine: ints in the signed
    or unsigned range (stored signed), floats (f32 rounded), references as given; UsageError otherwise."""
    if len(args) != len(params):
        raise UsageError(f"{name} takes {len(params)} argument(s) ({', '.join(params) or 'none'}), got {len(args)}")
    out: list[Any] = []
    for i, (value, valtype) in enumerate(zip(args, params, strict=True)):
        if valtype in ("i32", "i64"):
            bits = 32 if valtype == "i32" else 64
            if isinstance(value, float):
                raise UsageError(f"{name}: argument {i} is {valtype}, got the float {value!r}: pass an int")
            try:
                number = operator.index(value)
            except TypeError:
                raise UsageError(f"{name}: argument {i} is {valtype}, got {type(value).__name__} {value!r}") from None
            if not -(1 << (bits - 1)) <= number < (1 << bits):
                raise UsageError(f"{name}: argument {i} ({number}) does not fit in {valtype}")
            out.append(number - (1 << bits) if number >= 1 << (bits - 1) else number)
        elif valtype in ("f32", "f64"):
            try:
                number_f = float(value)
            except (TypeError, ValueError):
                raise UsageError(f"{name}: argument {i} is {valtype}, got {type(value).__name__} {value!r}") from None
            out.append(ctypes.c_float(number_f).value if valtype == "f32" else number_f)
        else:
            out.append(value)
    return out
