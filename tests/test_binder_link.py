"""`make binder-link`: the Binder launch link is built from the checkout's own git remote, never a made-up one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "binder_link.py"


def repo(tmp_path: Path, remote: str | None, branch: str = "main") -> Path:
    subprocess.run(["git", "init", "-q", "-b", branch, str(tmp_path)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    return tmp_path


def link(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://github.com/acme/wasm-workshop.git", "https://mybinder.org/v2/gh/acme/wasm-workshop/main?"),
        ("git@github.com:acme/wasm-workshop.git", "https://mybinder.org/v2/gh/acme/wasm-workshop/main?"),
        ("https://gitlab.com/acme/labs/wasm", "https://mybinder.org/v2/gl/acme%2Flabs%2Fwasm/main?"),
        ("https://git.example.org/wasm.git", "https://mybinder.org/v2/git/https%3A%2F%2Fgit.example.org%2Fwasm.git/main?"),
    ],
)
def test_the_link_names_the_origin_remote_and_branch(tmp_path: Path, remote: str, expected: str) -> None:
    out = link(repo(tmp_path, remote))
    assert out.returncode == 0, out.stderr
    url, badge = out.stdout.splitlines()
    assert url == expected + "urlpath=lab/tree/notebooks"
    assert badge == f"[![Binder](https://mybinder.org/badge_logo.svg)]({url})"


def test_a_ref_can_be_given(tmp_path: Path) -> None:
    out = link(repo(tmp_path, "https://github.com/acme/w"), "v1.0")
    assert out.stdout.startswith("https://mybinder.org/v2/gh/acme/w/v1.0?")


def test_no_remote_says_what_to_do_in_one_line(tmp_path: Path) -> None:
    out = link(repo(tmp_path, None))
    assert out.returncode == 1 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "git remote add origin" in out.stderr
