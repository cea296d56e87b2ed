"""Serve the lab cross-origin isolated, so the browser runtime's clock resolves microseconds.

Browsers coarsen `performance.now()` in pages that are not cross-origin isolated (Chromium: to 100 µs,
Firefox: to 1 ms), so the browser runtime would time a 60 µs call as 0 or 100 µs. An isolated page
(`self.crossOriginIsolated`, and the workers it starts) gets 5 µs (Chromium) or 20 µs (Firefox). A document is
isolated when it is served with

    Cross-Origin-Opener-Policy: same-origin
    Cross-Origin-Embedder-Policy: credentialless

This Jupyter server extension adds both headers to the server's responses. The package installs
`etc/jupyter/jupyter_server_config.d/wasmlab.json`, which enables it for every `jupyter lab` / `jupyter
server` of the environment (`jupyter server extension list` shows `wasmlab.notebook.isolation`).

Why `credentialless` rather than `require-corp`: both isolate, but `require-corp` blocks every cross-origin
image, script or stylesheet that does not send a `Cross-Origin-Resource-Policy` header (a picture in a Markdown
cell from another site), while `credentialless` loads them, only without cookies. What isolation still changes:
a cross-origin page embedded in an `<iframe>` (an `IFrame` display of another site) is blocked unless that site
opts in, and a window the lab opens on another origin gets no `window.opener`. The lab's own pages, widgets,
plotly figures and every extension served by this server are same-origin and unaffected (the UI tests run the
lab with these headers). Browsers without `credentialless` (Safari) ignore the header: the page stays
non-isolated and the browser runtime's timings stay coarse, nothing breaks.

Headers already configured win (`ServerApp.tornado_settings = {"headers": {...}}`, e.g. a JupyterHub's);
`WASMLAB_CROSS_ORIGIN_ISOLATION=0` in the server's environment turns the extension off.
"""

from __future__ import annotations

import os
from typing import Any

HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "credentialless",
}
SWITCH = "WASMLAB_CROSS_ORIGIN_ISOLATION"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "wasmlab.notebook.isolation"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the isolation headers to the server's default headers (configured ones are kept)."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        serverapp.log.info(f"wasmlab: not cross-origin isolated ({SWITCH} is off)")
        return
    headers = serverapp.web_app.settings.setdefault("headers", {})
    added = [name for name, value in HEADERS.items() if headers.setdefault(name, value) == value]
    serverapp.log.info(f"wasmlab: cross-origin isolated pages ({', '.join(f'{h}: {headers[h]}' for h in added)})")
