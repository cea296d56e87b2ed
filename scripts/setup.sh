#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: Debian packages (when root), the project venv, npm tools,
# the Python 3.10 worker venv for wasmer, and warm compiler caches. Each step leaves a stamp keyed by
# its inputs, so a second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
stamps="$venv/.stamps"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
# stamp NAME INPUTS...: true when the step already ran with these inputs.
stamp_key() { echo "$*" | cat - "${@:2}" 2>/dev/null | sha256sum | cut -c1-16; }
done_already() { [ -f "$stamps/$1-$(stamp_key "$@")" ]; }
mark_done() { mkdir -p "$stamps"; rm -f "$stamps/$1-"*; touch "$stamps/$1-$(stamp_key "$@")"; }

apt_packages=(
  rustc libstd-rust-dev-wasm32          # Rust -> wasm32-wasi / wasm32-unknown-unknown
  clang lld wasi-libc libclang-rt-14-dev-wasm32   # fallback C toolchain
  binaryen                               # wasm-opt for size reports
  libtinfo5 patchelf                     # wasmer's LLVM compiler needs libtinfo.so.5
  chromium                               # the browser for UI tests and the browser runtime
  libjavascriptcoregtk-4.0-bin libmozjs-102-dev   # JavaScriptCore (jsc) and SpiderMonkey (js102) shells
  wrk                                    # HTTP load generator for edge benchmarks
)

step_apt() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "not root: install these Debian packages for every toolchain: sudo apt-get install ${missing[*]}"
    return 0
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local wait=(-o DPkg::Lock::Timeout=900)  # another apt-get (or a second checkout's set-up) may hold the lock
  apt-get "${wait[@]}" update -qq >/dev/null || true
  apt-get "${wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return
    fi
  done
  echo "no Python 3.11+ found: install python3.11" >&2; exit 1
}

step_venv() {
  if ! done_already venv pyproject.toml; then
    [ -x "$venv/bin/python" ] || { say "creating $venv"; "$(pick_python)" -m venv "$venv"; }
    say "pip install -e .[all,dev]"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    "$venv/bin/pip" install -q -e ".[all,dev]"
    mark_done venv pyproject.toml
  fi
}

# wasmer-python 1.1 has real wheels for CPython 3.10 only: its worker runs in its own venv.
step_wasmer_venv() {
  local req=scripts/wasmer-requirements.txt
  done_already wasmer "$req" && return 0
  local py310=""
  for c in python3.10 "$(pyenv root 2>/dev/null)/versions/3.10.13/bin/python3.10"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      py310=$c; break
    fi
  done
  if [ -z "$py310" ]; then
    say "no Python 3.10: the wasmer runtime stays unavailable (install python3.10 to enable it)"
    return 0
  fi
  say "creating .venv-py310 for the wasmer worker"
  [ -x "$root/.venv-py310/bin/python" ] || "$py310" -m venv "$root/.venv-py310"
  "$root/.venv-py310/bin/pip" install -q -r "$req"
  mark_done wasmer "$req"
}

step_npm() {
  done_already npm tools/npm/package.json && [ -d tools/npm/node_modules ] && return 0
  if ! command -v npm >/dev/null; then
    say "npm not found: AssemblyScript stays unavailable (apt-get install npm)"; return 0
  fi
  say "npm install (AssemblyScript, jco, componentize-js, workerd) into tools/npm"
  npm install --silent --no-audit --no-fund --prefix tools/npm >/dev/null 2>&1
  mark_done npm tools/npm/package.json
}

# The prebuilt JupyterLab extension: module inspector, %%wasm highlighting, the browser runtime.
step_labextension() {
  if ! command -v node >/dev/null; then
    say "node not found: the JupyterLab extension (inspector, %%wasm highlighting, browser runtime) is not built"
    return 0
  fi
  PATH="$venv/bin:$PATH" bash scripts/build_labextension.sh
}

# First compiles build wasi-libc (zig) and the standard library (Go): do it once here, not in a test.
step_warm() {
  done_already warm scripts/warm.py wasmlab/toolchains/*.py && return 0
  say "warming compiler caches (zig, Go, rustc); first time only, a few minutes"
  "$venv/bin/python" scripts/warm.py
  mark_done warm scripts/warm.py wasmlab/toolchains/*.py
}

# The "Wasm Lab" kernel (preloads %load_ext wasmlab) inside the venv, where its jupyter looks.
step_kernel() {
  done_already kernel kernels/wasmlab/kernel.json && return 0
  say "installing the Wasm Lab kernelspec into $venv"
  "$venv/bin/python" -c "import sys; from wasmlab.notebook import install_kernelspec; install_kernelspec(prefix=sys.prefix)" >/dev/null
  mark_done kernel kernels/wasmlab/kernel.json
}

step_apt
step_venv
step_kernel
step_wasmer_venv
step_npm
step_labextension
step_warm
say "ready: $("$venv/bin/wasmlab" toolchains 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
