"""The wire format every engine worker speaks (worker processes and the browser page's Web Worker): bytes as
base64 strings, timings as milliseconds, and the answer kinds that only workers say."""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["CANCELLED", "CONTROL_TIMEOUT", "LINK", "b64", "timings", "unb64"]

CONTROL_TIMEOUT = 30.0  # seconds for requests that run no guest code

# A failed answer carries {"error": one line, "kind": ...}: an `errors.ErrorKind` ("usage", "invalid",
# "unavailable", "limit:memory", "trap", "exit", "lost", "compile"...) or one of these, which only workers say:
LINK = "link"  # an import of the guest that the worker could not provide
CANCELLED = "cancelled"  # the browser page stopped the run (it restarted its worker)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def timings(answer: dict[str, Any]) -> dict[str, float]:
    """The worker-measured milliseconds of an answer ({"compile": ..., "instantiate": ..., "call": ...})."""
    return {k: float(v) for k, v in (answer.get("timings") or {}).items()}
