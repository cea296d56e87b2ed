"""wasmlab in Jupyter: the `%%wasm` magics, rich displays, widgets and the "Wasm Lab" kernelspec.

    %load_ext wasmlab                      # magics + rich displays (the wasmlab kernel preloads them)
    from wasmlab.notebook import ModuleExplorer, MemoryViewer, ComparisonDashboard, LimitsExplorer

    import wasmlab.notebook
    wasmlab.notebook.install_kernelspec(user=True)   # or prefix=sys.prefix

Importing this package is cheap: IPython, anywidget and plotly load only when a magic or widget is used.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

__all__ = [
    "ComparisonDashboard",
    "LimitsExplorer",
    "MemoryViewer",
    "ModuleExplorer",
    "install_kernelspec",
    "kernelspec",
    "logo_png",
]

_WIDGETS = ("ComparisonDashboard", "LimitsExplorer", "MemoryViewer", "ModuleExplorer")

KERNEL_NAME = "wasmlab"
# The kernelspec in the source tree; a wheel without it gets the same spec from `kernelspec()`.
KERNEL_DIR = Path(__file__).resolve().parent.parent.parent / "kernels" / KERNEL_NAME


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kernelspec(python: str | None = None) -> dict[str, Any]:
    """The kernel.json of the "Wasm Lab" kernel: an IPython kernel that loads the wasmlab extension at start."""
    return {
        "argv": [
            python or "python",
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--IPKernelApp.extensions=wasmlab",
        ],
        "display_name": "Wasm Lab",
        "language": "python",
        "metadata": {"debugger": True},
    }


# ------------------------------------------------------------------------------------------ logo (PNG by hand)
WASM_PURPLE = (101, 79, 240)
_GLYPHS = {  # 5x5 pixel font
    "W": ("X...X", "X...X", "X.X.X", "XX.XX", "X...X"),
    "A": (".XXX.", "X...X", "XXXXX", "X...X", "X...X"),
}


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGBA PNG from raw rows (each `width * 4` bytes)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def logo_png(size: int = 64) -> bytes:
    """The kernel logo: the WebAssembly purple square with its notch on top and "WA" in white."""
    pixels = [[(0, 0, 0, 0)] * size for _ in range(size)]
    radius = size * 0.09
    notch = size * 0.2
    for y in range(size):
        for x in range(size):
            cx, cy = x + 0.5, y + 0.5
            dx = max(radius - cx, 0, cx - (size - radius))
            dy = max(radius - cy, 0, cy - (size - radius))
            if dx * dx + dy * dy > radius * radius:
                continue  # rounded corners
            if (cx - size / 2) ** 2 + cy**2 < notch**2:
                continue  # the notch
            pixels[y][x] = (*WASM_PURPLE, 255)
    scale = max(1, size // 16)
    text_w, text_h = (5 * 2 + 1) * scale, 5 * scale
    left, top = (size - text_w) // 2, size - text_h - max(2, size // 8)
    for i, letter in enumerate("WA"):
        for gy, row in enumerate(_GLYPHS[letter]):
            for gx, bit in enumerate(row):
                if bit != "X":
                    continue
                for sy in range(scale):
                    for sx in range(scale):
                        pixels[top + gy * scale + sy][left + (i * 6 + gx) * scale + sx] = (255, 255, 255, 255)
    rows = [bytes(channel for pixel in row for channel in pixel) for row in pixels]
    return _png(size, size, rows)


# ------------------------------------------------------------------------------------------ installer
def install_kernelspec(
    user: bool = True, prefix: str | Path | None = None, name: str = KERNEL_NAME, python: str | None = None
) -> str:
    """Install the "Wasm Lab" kernelspec (argv[0] = this interpreter, or `python`) with Jupyter's
    `KernelSpecManager`: for the user (`user=True`), or under `prefix` (e.g. `sys.prefix`: then
    `prefix/share/jupyter/kernels/NAME`). Returns the directory it was installed to."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory(prefix="wasmlab-kernelspec-") as tmp:
        target = Path(tmp) / name
        target.mkdir()
        source = KERNEL_DIR / "kernel.json"
        spec = json.loads(source.read_text()) if source.is_file() else kernelspec()
        spec["argv"][0] = python or sys.executable
        (target / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for size in (32, 64):
            logo = f"logo-{size}x{size}.png"
            if (KERNEL_DIR / logo).is_file():
                shutil.copyfile(KERNEL_DIR / logo, target / logo)
            else:
                (target / logo).write_bytes(logo_png(size))
        return KernelSpecManager().install_kernel_spec(
            str(target), kernel_name=name, user=user and prefix is None, prefix=str(prefix) if prefix else None
        )
