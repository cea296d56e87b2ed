#!/usr/bin/env bash
# Replay the Binder build offline (there is no docker engine here): a fresh clone of the committed tree, a fresh
# Python 3.11 venv standing in for the image's Python, binder/postBuild run as repo2docker would, then nbval on
# every notebook in that environment (or the notebooks given as arguments). Debian packages come from the machine
# (binder/apt.txt on Binder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/repo"
python3.11 -m venv "$work/env" 2>/dev/null || python3 -m venv "$work/env"
export PATH="$work/env/bin:$PATH"
cd "$work/repo"
echo "[binder-check] postBuild in $work"
bash binder/postBuild
pip install -q pytest pytest-timeout nbval
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/*.ipynb)
echo "[binder-check] nbval on ${#notebooks[@]} notebooks"
PLOTLY_RENDERER=plotly_mimetype python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
  --nbval-sanitize-with notebooks/sanitize.cfg "${notebooks[@]}"
