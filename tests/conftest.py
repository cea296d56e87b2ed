"""Shared fixtures: every test session gets its own module cache, so cache behaviour is tested from empty."""

from __future__ import annotations

import signal

import pytest

import wasmlab
from wasmlab.errors import ToolchainUnavailable
from wasmlab.toolchains import get_toolchain


def pytest_configure(config: pytest.Config) -> None:
    # A background job (as CI may start us) inherits SIGINT ignored; the Ctrl-C tests need Python's own handler,
    # as in a terminal or a Jupyter kernel.
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("wasmlab-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WASMLAB_CACHE", str(path))
        yield path


def need_toolchain(lang: str) -> None:
    """Skip (with the reason and the fix) when a language's compiler is not installed."""
    try:
        get_toolchain(lang)
    except ToolchainUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def compile_or_skip():
    def build(source: str, lang: str, **options):
        need_toolchain(lang)
        return wasmlab.compile(source, lang, **options)

    return build


@pytest.fixture(scope="module")
def runtimes() -> list[str]:
    """wasmtime and one worker backend to test alongside it: node if it runs here, else wasm3, else wasmer."""
    from wasmlab.runtimes import list_runtimes

    available = {r.name for r in list_runtimes() if r.available}
    for name in ("node", "wasm3", "wasmer"):
        if name in available:
            return ["wasmtime", name]
    pytest.skip("no worker backend (node, wasm3, wasmer) is available")
