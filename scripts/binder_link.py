"""Print the mybinder.org link (and a Markdown badge) that launches this checkout's tutorials on Binder.

Binder builds a public git repository, so the link must name the one this checkout is pushed to: it is built
from the `origin` remote (GitHub, GitLab, or any git URL), at the current branch unless a ref is given.

    python scripts/binder_link.py [REF]        # make binder-link
"""

from __future__ import annotations

import re
import subprocess
import sys
from urllib.parse import quote

BINDER = "https://mybinder.org/v2"
LANDING = "urlpath=lab/tree/notebooks"
HOSTS = {"github.com": "gh", "gitlab.com": "gl"}
REMOTE = re.compile(r"^(?:https?://(?:[^@/]+@)?|ssh://git@|git@)(?P<host>[^/:]+)[/:](?P<path>.+?)(?:\.git)?/?$")


def binder_url(remote: str, ref: str) -> str:
    """The launch link for a git remote URL at `ref`."""
    match = REMOTE.match(remote.strip())
    host, path = (match["host"], match["path"]) if match else ("", "")
    if host in HOSTS and path.count("/") >= 1:
        repo = path if HOSTS[host] == "gl" else "/".join(path.split("/")[:2])
        return f"{BINDER}/{HOSTS[host]}/{quote(repo, safe='') if HOSTS[host] == 'gl' else repo}/{ref}?{LANDING}"
    return f"{BINDER}/git/{quote(remote.strip(), safe='')}/{ref}?{LANDING}"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: list[str]) -> int:
    remote = git("remote", "get-url", "origin")
    if not remote:
        print("binder-link: this checkout has no 'origin' remote, and Binder builds a public git repository: push it "
              "(git remote add origin https://github.com/OWNER/REPO && git push -u origin HEAD), then run this again",
              file=sys.stderr)
        return 1
    ref = argv[0] if argv else (git("symbolic-ref", "--short", "HEAD") or "HEAD")  # detached: HEAD
    url = binder_url(remote, "HEAD" if ref == "HEAD" else quote(ref, safe=""))
    print(url)
    print(f"[![Binder](https://mybinder.org/badge_logo.svg)]({url})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
