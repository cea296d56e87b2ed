#!/usr/bin/env bash
# Build the JupyterLab extension wasmlab-jupyterlab (js/) into wasmlab/labextension/ and install it for the
# project's Python (a copy at PREFIX/share/jupyter/labextensions/wasmlab-jupyterlab, PREFIX = .venv here, the
# image's Python on Binder; $WASMLAB_PYTHON picks another interpreter).
#
#   bash scripts/build_labextension.sh            # install + build when js/ changed; a second run takes ~1 s
#   bash scripts/build_labextension.sh --force    # rebuild anyway
#   bash scripts/build_labextension.sh --no-install  # build only, do not install (e.g. before building a wheel)
#
# Needs node >= 18 and the npm registry the first time (jlpm install into js/node_modules); later builds work
# offline. The stamp (js/.build-stamp) is keyed by node's version, the sources, package.json and the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ -n "${WASMLAB_PYTHON:-}" ]; then py=$WASMLAB_PYTHON
elif [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"
else py=$(command -v python3 || command -v python)
fi
bindir=$(dirname "$py")
prefix=$("$py" -c 'import sys; print(sys.prefix)')
out="$root/wasmlab/labextension"
name="wasmlab-jupyterlab"
force=0
install=1
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --no-install) install=0 ;;
    *) echo "usage: $0 [--force] [--no-install]" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[labextension]\033[0m %s\n' "$*"; }

export PATH="$bindir:$PATH"   # jlpm and jupyter-builder of that Python (JupyterLab installs both)
command -v jlpm >/dev/null || { echo "no jlpm for $py: install the project first (pip install -e '.[notebook]')" >&2; exit 1; }
command -v node >/dev/null || { echo "node not found: apt-get install nodejs (>= 18)" >&2; exit 1; }

inputs() {
  find js/src js/style -type f | LC_ALL=C sort
  printf '%s\n' js/package.json js/tsconfig.json js/yarn.lock js/.yarnrc.yml
}
key=$( (node --version; inputs | xargs cat 2>/dev/null) | sha256sum | cut -c1-16)
stamp="js/.build-stamp"

if [ $force -eq 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -f "$out/package.json" ] \
   && compgen -G "$out/static/remoteEntry.*.js" >/dev/null; then
  say "up to date"
else
  start=$(date +%s)
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  deps=$(cat js/package.json js/yarn.lock js/.yarnrc.yml 2>/dev/null | sha256sum | cut -c1-16)
  if [ ! -f js/node_modules/.wasmlab-deps ] || [ "$(cat js/node_modules/.wasmlab-deps)" != "$deps" ]; then
    say "jlpm install (js/node_modules)"
    (cd js && jlpm install >"$log" 2>&1) || { cat "$log"; exit 1; }
    echo "$deps" > js/node_modules/.wasmlab-deps
  fi
  say "building into wasmlab/labextension"
  rm -rf "$out/static"
  (cd js && jlpm build:lib >"$log" 2>&1 && jlpm build:labextension >>"$log" 2>&1) || { cat "$log"; exit 1; }
  # the build output is generated: keep it out of git (the wheel takes it through shared-data)
  printf '*\n!.gitignore\n' > "$out/.gitignore"
  echo "$key" > "$stamp"
  say "built in $(( $(date +%s) - start )) s"
fi

if [ $install -eq 1 ]; then
  # A copy, not a symlink: `pip install -e .` installs the same files there through the wheel's shared-data,
  # and pip uninstalling them through a symlink would delete the build output itself.
  dest="$prefix/share/jupyter/labextensions/$name"
  if [ -L "$dest" ] || [ ! -d "$dest" ] || ! diff -rq --exclude=.gitignore "$out" "$dest" >/dev/null 2>&1; then
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    cp -r "$out" "$dest"
    rm -f "$dest/.gitignore"
    say "installed into $dest"
  fi
fi
