"""The kernel side of the browser runtime lives with the backend, in `wasmlab.runtimes.worker.browser_comm`
(the comm to the page whose Web Worker runs the guests); this name stays for code that imported it from here."""

from ..runtimes.worker.browser_comm import *  # noqa: F403
from ..runtimes.worker.browser_comm import __all__  # noqa: F401
