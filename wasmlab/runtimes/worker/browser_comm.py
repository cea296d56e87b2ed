"""The kernel side of the browser runtime: a comm to the JupyterLab page that shows this notebook.

    kernel (this module)                                 page (wasmlab-jupyterlab, js/src/browser.ts)
      comm_open target "wasmlab.browser"   ──────────►   a comm target on every notebook/console kernel
                                           ◄──────────   {op: "hello", client, subshell, user_agent, ...}
      {op: "ping", id, client}             ──────────►
                                           ◄──────────   {id, ok, ...}
      {op: "run", id, client, sha, wasm?, invoke, args, argv, env, stdin, timeout_ms, max_output}
                                           ──────────►   a Web Worker compiles, instantiates and calls,
                                           ◄──────────   {id, result | trap | exit_code, stdout, timings}
      {op: "instantiate", ... like run}    ──────────►   an instance kept in that worker: {id, handle, exports}
      {op: "call" | "read" | "write" | "memory_size" | "close", id, client, handle, ...}
                                           ──────────►   on the kept instance; "lost" once the worker restarted
      {op: "cancel", id, client}           ──────────►   (Ctrl-C / kernel interrupt) terminates the worker

Waiting without deadlock. `module.run("browser", ...)` runs inside a cell, on the kernel's main thread, and
ipykernel dispatches shell messages (the page's comm replies among them) on that same thread once the cell is
done: a cell that blocks waiting for a reply would wait forever. ipykernel 7 has kernel subshells (JEP 91):
shell messages that name a subshell are served by that subshell's own thread, and JupyterLab (4.4+, setting
`commsOverSubshells`, on by default; the page turns it on for this comm) sends each comm's messages on a
subshell of its comm target. So the reply is handled on a subshell thread, where our handler stores it and
sets a `threading.Event` the cell waits on (`Event.wait` stays interruptible: Ctrl-C cancels the run in the
page). Two ipykernel details are overridden on our comm object only:

- `handle_msg`: the stock one fires IPython's pre/post_execute events around the callback, from the subshell
  thread while a cell runs on the main one; ours just stores the reply.
- `_reply_subshell_for` (ipykernel 7.4): routes replies to the thread that last *sent* on the comm (here the
  main thread, the blocked one); ours keeps the subshell the page chose.

If the page cannot use a subshell, its hello is handled on the main thread, after the cell: the bridge then
reports the runtime unavailable and says why, instead of hanging.

With no page at all (nbval, nbclient, a terminal, plain Python) the first check waits `HELLO_TIMEOUT` seconds
for a hello, then answers at once (re-announcing itself in the background, so a page opened later is found).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMM_TARGET",
    "NO_FRONTEND",
    "BrowserBridge",
    "BrowserUnavailable",
    "Client",
    "get_bridge",
]

COMM_TARGET = "wasmlab.browser"
PROTOCOL = 1
NO_FRONTEND = "no JupyterLab frontend connected: the browser runtime runs in the page that shows this notebook"
HELLO_TIMEOUT = float(os.environ.get("WASMLAB_BROWSER_HELLO_TIMEOUT", 2.0))  # seconds for a page to answer
PING_TIMEOUT = 2.0  # seconds for a known page to answer a ping
FRESH = 10.0  # seconds a page's last message counts as proof that it is still there
REANNOUNCE = 5.0  # seconds between background re-announcements while no page answered
REPLY_GRACE = 30.0  # seconds beyond the run's own time limit for the page's answer (transfer, compile)


class BrowserUnavailable(Exception):
    """No usable page: `reason` says why (one line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Client:
    """One page (one kernel connection in one browser tab) that said hello."""

    id: str
    info: dict[str, Any] = field(default_factory=dict)
    reachable: bool = True  # its messages arrive on a subshell thread (usable while a cell runs)
    last_seen: float = 0.0
    shas: set[str] = field(default_factory=set)  # modules it was sent (it caches compiled modules by sha256)


class _Pending:
    __slots__ = ("answer", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.answer: dict[str, Any] | None = None


def _kernel() -> Any:
    """The running ipykernel Kernel, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(kernel, "session") or not hasattr(kernel, "iopub_socket"):
        return None
    return kernel


class BrowserBridge:
    """The comm to the page(s) of this kernel. One per kernel process (`get_bridge()`); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._comm: Any = None
        self._closed_reason: str | None = None
        self._clients: dict[str, Client] = {}
        self._client: Client | None = None  # the page that runs things (the first reachable hello)
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._announced_at = 0.0
        self._checked = False  # one full HELLO_TIMEOUT wait was done
        self._hello = threading.Event()
        self._main_thread = threading.main_thread()

    # ------------------------------------------------------------------------------------------- comm
    def _open(self) -> None:
        """Open a fresh comm (the kernel's comm_open reaches every page connected now)."""
        import comm as comm_module

        self._close_comm()
        # Not opened yet (primary=False): a page may answer the comm_open within microseconds, and the
        # handlers must be in place before that.
        comm = comm_module.create_comm(target_name=COMM_TARGET, primary=False)
        # See the module docstring: store replies ourselves, on whichever thread ipykernel dispatches them.
        comm.handle_msg = self._handle_msg  # type: ignore[method-assign]  # on purpose: see above
        comm._reply_subshell_for = lambda data, default: default  # type: ignore[attr-defined]  # ipykernel's
        comm.on_close(self._on_close)
        with self._lock:
            self._comm = comm
            self._closed_reason = None
            self._announced_at = time.monotonic()
        comm.primary = True
        comm.open(data={"protocol": PROTOCOL})

    def _close_comm(self) -> None:
        with self._lock:
            comm, self._comm = self._comm, None
        if comm is not None:
            with contextlib.suppress(Exception):
                comm.close()

    def _on_close(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._comm = None
            self._clients.clear()
            self._client = None
            self._closed_reason = (
                "the JupyterLab page closed the browser runtime's comm: is the wasmlab-jupyterlab extension "
                "installed and enabled (`jupyter labextension list`)? Reload the page after installing it"
            )
            for pending in self._pending.values():
                pending.event.set()

    def _handle_msg(self, msg: dict[str, Any]) -> None:
        data = (msg.get("content") or {}).get("data") or {}
        if not isinstance(data, dict):
            return
        now = time.monotonic()
        if data.get("op") == "hello":
            client_id = str(data.get("client") or "")
            reachable = threading.current_thread() is not self._main_thread
            with self._lock:
                client = Client(client_id, dict(data), reachable, now)
                self._clients[client_id] = client
                if reachable and (self._client is None or now - self._client.last_seen > FRESH):
                    self._client = client
            self._hello.set()
            return
        with self._lock:
            known = self._clients.get(str(data.get("client") or ""))
            if known is not None:
                known.last_seen = now
            pending = self._pending.get(str(data.get("id") or ""))
        if pending is not None:
            pending.answer = data
            pending.event.set()

    def _send(self, data: dict[str, Any]) -> None:
        with self._lock:
            comm = self._comm
        if comm is None:
            raise BrowserUnavailable(self._closed_reason or NO_FRONTEND)
        comm.send(data)

    # ------------------------------------------------------------------------------------------- status
    def unavailable_reason(self) -> str | None:
        """None when a page can run modules now; else why not (one line). Cheap once a page answered."""
        try:
            self.client()
        except BrowserUnavailable as exc:
            return exc.reason
        return None

    def client(self) -> Client:
        """The page that runs modules, checked to be there; BrowserUnavailable says why there is none."""
        kernel = _kernel()
        if kernel is None:
            raise BrowserUnavailable(NO_FRONTEND)
        with self._lock:
            client = self._client
        if client is not None:
            if time.monotonic() - client.last_seen < FRESH:
                return client
            if self._ping(client):
                return client
            with self._lock:  # that page is gone (reloaded, closed): find the current one
                self._clients.pop(client.id, None)
                if self._client is client:
                    self._client = None
            self._checked = False
        return self._find()

    def _ping(self, client: Client) -> bool:
        try:
            answer = self.request({"op": "ping"}, timeout=PING_TIMEOUT, client=client)
        except BrowserUnavailable:
            return False
        return bool(answer.get("ok"))

    def _find(self) -> Client:
        """Announce the comm (comm_open) and wait for a hello: the full HELLO_TIMEOUT on the first check, then
        without waiting (re-announcing every REANNOUNCE seconds in case a page appeared)."""
        with self._lock:
            fresh = self._comm is None or time.monotonic() - self._announced_at > REANNOUNCE
        if fresh:
            self._hello.clear()
            self._open()
        if not self._checked:
            self._checked = True
            deadline = time.monotonic() + HELLO_TIMEOUT
            while time.monotonic() < deadline:
                with self._lock:
                    if self._client is not None or self._closed_reason:
                        break
                self._hello.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        with self._lock:
            if self._client is None:  # a page that answered recently, e.g. after a slow reply was given up on
                now = time.monotonic()
                recent = [c for c in self._clients.values() if c.reachable and now - c.last_seen < FRESH]
                self._client = max(recent, key=lambda c: c.last_seen, default=None)
            if self._client is not None:
                return self._client
            if self._closed_reason:
                raise BrowserUnavailable(self._closed_reason)
            stuck = [c for c in self._clients.values() if not c.reachable]
        if stuck:
            raise BrowserUnavailable(
                "the JupyterLab page answers only after the running cell: its comm messages do not use a kernel "
                "subshell (needs ipykernel >= 7 and JupyterLab >= 4.4 with Settings > Kernels > "
                "'Kernel Comms over subshells' not disabled)"
            )
        raise BrowserUnavailable(NO_FRONTEND)

    # ------------------------------------------------------------------------------------------- requests
    def request(self, message: dict[str, Any], timeout: float | None, client: Client | None = None) -> dict[str, Any]:
        """Send `message` to the page and wait (at most `timeout` s; None: forever) for its answer. Ctrl-C
        cancels the request in the page and re-raises KeyboardInterrupt."""
        client = client or self.client()
        request_id = f"r{next(self._ids)}"
        pending = _Pending()
        with self._lock:
            self._pending[request_id] = pending
        try:
            self._send({**message, "id": request_id, "client": client.id})
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                while not pending.event.is_set():
                    left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                    if left <= 0:
                        break
                    pending.event.wait(left)
            except KeyboardInterrupt:
                with contextlib.suppress(Exception):
                    self._send({"op": "cancel", "id": request_id, "client": client.id})
                raise
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        if pending.answer is None:
            with self._lock:
                closed = self._closed_reason
                if self._client is client:
                    self._client = None  # not answering: next time find the page again
            if closed:
                raise BrowserUnavailable(closed)
            raise BrowserUnavailable(
                f"the JupyterLab page did not answer within {timeout:.0f} s (closed, reloaded or busy?)"
                if timeout is not None
                else "the JupyterLab page did not answer"
            )
        if pending.answer.get("kind") in ("limit:time", "cancelled", "lost"):
            client.shas.clear()  # the page's worker was restarted: its compiled modules (and instances) are gone
        return pending.answer

    def run(
        self, message: dict[str, Any], wasm: bytes, sha256: str, timeout: float | None, op: str = "run"
    ) -> dict[str, Any]:
        """A request that needs a module ("run", "instantiate"); its bytes go along unless this page already has
        them (by sha256)."""
        import base64

        client = self.client()
        wait = None if timeout is None else timeout + REPLY_GRACE
        body = {**message, "op": op, "sha": sha256}
        if timeout is not None:
            body["timeout_ms"] = timeout * 1000.0
        first = sha256 not in client.shas
        if first:
            body["wasm"] = base64.b64encode(wasm).decode()
        answer = self.request(body, wait, client)
        if answer.get("kind") == "need_module" and not first:  # the page restarted its worker: send it again
            body["wasm"] = base64.b64encode(wasm).decode()
            answer = self.request(body, wait, client)
        if answer.get("kind") not in ("need_module", "compile", "limit:time", "cancelled", "lost"):
            client.shas.add(sha256)
        return answer

    def close(self) -> None:
        self._close_comm()
        with self._lock:
            self._clients.clear()
            self._client = None
            self._checked = False


_bridge: BrowserBridge | None = None
_bridge_lock = threading.Lock()


def get_bridge() -> BrowserBridge:
    """The bridge of this kernel process."""
    global _bridge
    with _bridge_lock:
        if _bridge is None:
            _bridge = BrowserBridge()
        return _bridge
