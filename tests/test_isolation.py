"""The lab served cross-origin isolated (wasmlab.notebook.isolation): a real Jupyter server of this environment
sends COOP/COEP on its pages, keeps headers configured by someone else, and can be turned off. That the lab,
its widgets, plotly and the browser runtime still work with them is the UI tests' part (ui-tests/)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from wasmlab.notebook.isolation import HEADERS, SWITCH

START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _headers(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The response headers of /lab from a `jupyter server` of this venv started with `extra` arguments."""
    port, token = _free_port(), secrets.token_hex(8)
    root = tmp_path / f"root-{port}"
    root.mkdir()
    argv = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", *extra]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    environ = {k: v for k, v in os.environ.items() if k != SWITCH}
    environ |= {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"), **(env or {})}
    log = (tmp_path / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(argv, cwd=root, env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as response:
                    return dict(response.headers)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"jupyter server did not start: {(tmp_path / f'server-{port}.log').read_text()[-2000:]}"
                    )
                time.sleep(0.2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_package_enables_the_extension_for_this_environment():
    config = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "wasmlab.json"
    assert json.loads(config.read_text()) == {
        "ServerApp": {"jpserver_extensions": {"wasmlab.notebook.isolation": True}}
    }
    out = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    lines = (out.stdout + out.stderr).splitlines()
    assert any("wasmlab.notebook.isolation" in line and "OK" in line for line in lines), lines


def test_pages_are_isolated_unless_configured_otherwise(tmp_path):
    headers = _headers(tmp_path)
    for name, value in HEADERS.items():
        assert headers.get(name) == value, headers
    assert "Content-Security-Policy" in headers  # the server's own defaults are kept
    mine = _headers(
        tmp_path, """--ServerApp.tornado_settings={"headers": {"Cross-Origin-Embedder-Policy": "require-corp"}}"""
    )
    assert mine["Cross-Origin-Embedder-Policy"] == "require-corp"  # a configured header wins
    assert mine["Cross-Origin-Opener-Policy"] == "same-origin"
    off = _headers(tmp_path, env={SWITCH: "0"})
    assert not set(HEADERS) & set(off), off
