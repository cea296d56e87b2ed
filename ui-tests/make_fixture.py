"""Regenerate `notebooks/wasmlab_ui.ipynb`, the notebook the UI tests run (`python ui-tests/make_fixture.py`).

Only WAT modules (compiled in ~2 ms by wasmtime): the tests stay fast and need no warm toolchain cache.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

DEMO_WAT = """\
%%wasm wat --name demo
(module
  (memory (export "memory") 1)
  (global $counter (export "counter") (mut i32) (i32.const 0))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "fact64") (param $n i64) (result i64)
    (local $acc i64)
    (local.set $acc (i64.const 1))
    (block $done
      (loop $next
        (br_if $done (i64.le_s (local.get $n) (i64.const 1)))
        (local.set $acc (i64.mul (local.get $acc) (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $next)))
    (local.get $acc))
  (func (export "hyp") (param $a f64) (param $b f64) (result f64)
    (f64.sqrt (f64.add (f64.mul (local.get $a) (local.get $a)) (f64.mul (local.get $b) (local.get $b)))))
  (func (export "half") (param $x f32) (result f32)
    (f32.div (local.get $x) (f32.const 2)))
  (func (export "store") (param $addr i32) (param $value i32)
    (i32.store (local.get $addr) (local.get $value))
    (global.set $counter (i32.add (global.get $counter) (i32.const 1))))
  (func $boom (export "boom") unreachable)
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "spin") (loop $forever (br $forever))))"""

HELLO_WAT = """\
%%wasm wat --name hello --run browser -- alpha beta
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasi\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
    (call $proc_exit (i32.load (i32.const 32)))))"""

CELLS = [
    new_markdown_cell("# wasmlab UI fixture\nRun by `pytest ui-tests`: every cell must finish in a few seconds."),
    new_code_cell(
        "%load_ext wasmlab\n"
        "from wasmlab.runtimes import BUILTIN\n"
        'BUILTIN.setdefault("browser", ("browser", "BrowserRuntime"))  # until the registry lists it\n'
        "import wasmlab.runtimes as rt\n"
        'print("browser runtime:", rt.get_runtime("browser").version() or "?")'
    ),
    new_code_cell(DEMO_WAT),
    new_code_cell(
        'rb = demo.run("browser", "fib", (20,))\n'
        'rw = demo.run("wasmtime", "fib", (20,))\n'
        'print(f"browser fib(20) = {rb.result}; wasmtime fib(20) = {rw.result}; same: {rb.result == rw.result}")\n'
        'print("browser timings:", ", ".join(f"{k} {v:.3f} ms" for k, v in rb.timings.items()))'
    ),
    new_code_cell(
        "import math\n"
        'for name, args in [("fact64", (20,)), ("fact64", (-3,)), ("hyp", (3.0, 4.0)), ("half", (3.0,)),\n'
        '                   ("half", (math.inf,)), ("fib", (-1,))]:\n'
        '    b, w = demo.run("browser", name, args).result, demo.run("wasmtime", name, args).result\n'
        '    print(f"values {name}{args}: browser={b!r} wasmtime={w!r} same={b == w and type(b) is type(w)}")'
    ),
    new_code_cell(
        'for name, args in [("boom", ()), ("div", (1, 0))]:\n'
        '    b = demo.run("browser", name, args, check=False)\n'
        '    w = demo.run("wasmtime", name, args, check=False)\n'
        '    print(f"trap {name}: browser={b.trap!r} {b.trap_frames[:1]} wasmtime={w.trap!r} {w.trap_frames[:1]} "\n'
        '          f"same={b.trap == w.trap}")'
    ),
    new_code_cell(
        'r = demo.run("browser", "spin", timeout=1, check=False)\n'
        'print(f"time limit: {r.error_kind}: {r.error}")\n'
        "print(f\"after the limit: fib(10) = {demo.run('browser', 'fib', (10,)).result}\")"
    ),
    new_code_cell(HELLO_WAT),
    new_code_cell(
        'b = hello.run("browser", argv=("alpha", "beta"), check=False)\n'
        'w = hello.run("wasmtime", argv=("alpha", "beta"), check=False)\n'
        'print(f"wasi: browser={b.output!r} exit {b.exit_code}; wasmtime={w.output!r} exit {w.exit_code}; "\n'
        '      f"same={(b.output, b.exit_code) == (w.output, w.exit_code)}")'
    ),
    new_code_cell("%wasm_compare demo --invoke fib 20 --runtimes wasmtime,browser --repeat 3"),
    new_code_cell(
        'from wasmlab.notebook import MemoryViewer\nviewer = MemoryViewer(demo.instantiate("wasmtime"))\nviewer'
    ),
    new_code_cell('viewer.call("store", 16, 0x44434241)\nprint("stored; changed:", viewer.changed)'),
    new_code_cell(
        "from wasmlab.errors import InstanceLost, LimitExceeded, Trap\n"
        'kept, same = demo.instantiate("browser", timeout=2), demo.instantiate("wasmtime")\n'
        "for inst in (kept, same):\n"
        "    inst.call(\"store\", 16, 0x44434241)\n"
        "    inst.write_memory(32, b\"hello\")\n"
        "b = (kept.read_memory(16, 4), kept.read_memory(32, 5), kept.memory_size(), kept.call(\"fib\", 20))\n"
        "w = (same.read_memory(16, 4), same.read_memory(32, 5), same.memory_size(), same.call(\"fib\", 20))\n"
        'print(f"kept: browser={b!r} wasmtime={w!r} same={b == w}")\n'
        "try:\n"
        "    kept.call(\"boom\")\n"
        "except Trap as error:\n"
        '    print(f"kept trap: {error.code}; still usable: fib(12) = {kept.call(\'fib\', 12)}")\n'
        "try:\n"
        "    kept.call(\"spin\")\n"
        "except LimitExceeded as error:\n"
        '    print(f"kept time limit: {error.limit}")\n'
        "try:\n"
        "    kept.call(\"fib\", 5)\n"
        "except InstanceLost as error:\n"
        '    print(f"kept after the limit: {type(error).__name__}")\n'
        'print("kept fresh:", demo.instantiate("browser").call("fib", 15))'
    ),
    new_code_cell(
        "from wasmlab import bench\n"
        "from wasmlab.notebook.browser_comm import get_bridge\n"
        "info = get_bridge().client().info\n"
        'isolated, resolution = info.get("cross_origin_isolated"), info.get("timer_resolution_ms")\n'
        'print(f"isolated: {isolated}; resolution: {resolution} ms")\n'
        'timed = demo.instantiate("browser")\n'
        "calls = []\n"
        "for _ in range(30):\n"
        '    timed.call("fib", 18)\n'
        '    calls.append(timed.last_timings["call"])\n'
        'print("fib(18) calls, ms:", " ".join(f"{t:.4f}" for t in calls))\n'
        'tput = bench.throughput(demo, "fib", (15,), runtimes=["browser", "wasmtime"], samples=3, quick=True,\n'
        "                        progress=False)\n"
        'us = (tput.summary.set_index("runtime")["ns_per_op"] / 1000).round(4).to_dict()\n'
        'print(f"throughput fib(15), µs per call: {us}; correct: {tput.table[\'correct\'].all()}")\n'
        'start = bench.startup(module=demo, invoke="fib", args=(12,), runtimes=["browser"], samples=3, cold=0,\n'
        "                      progress=False)\n"
        'print("startup, warm medians:", start.pivot("warm").drop(columns="runtime").iloc[0].to_dict())\n'
        "tput.figure()"
    ),
    new_code_cell('print("ALL CELLS DONE")'),
]


def main() -> None:
    nb = new_notebook(
        cells=CELLS,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    nbformat.validate(nb)
    path = HERE / "notebooks" / "wasmlab_ui.ipynb"
    nbformat.write(nb, path)
    print(path)


if __name__ == "__main__":
    main()
