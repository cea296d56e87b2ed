"""`jco serve`: the Bytecode Alliance's standard wasi:http/proxy host on node (npm `@bytecodealliance/jco`).

It transpiles the component on every start (a componentize-py component takes seconds: that is in its cold
start, as a user of `jco serve` sees it) and serves it with preview2-shim's node HTTP server. Node 20 needs
`--experimental-wasm-extended-const` for componentize-py output; `jco serve` passes `JCO_RUN_ARGS` to node
(NODE_OPTIONS cannot carry V8 flags).
"""

from __future__ import annotations

from pathlib import Path

from .base import NPM_INSTALL, Platform, jco_script, node_modules, node_program, package_version

V8_FLAGS = "--experimental-wasm-extended-const"


class JcoPlatform(Platform):
    name = "jco"
    title = "jco serve (node)"
    install = f"{NPM_INSTALL}: npm packages @bytecodealliance/jco and @bytecodealliance/preview2-shim"

    def unavailable_reason(self) -> str | None:
        if node_program() is None:
            return "node is not installed (apt-get install nodejs)"
        if jco_script() is None or node_modules("@bytecodealliance/preview2-shim") is None:
            return "jco is not installed (npm @bytecodealliance/jco, @bytecodealliance/preview2-shim)"
        return None

    def version(self) -> str:
        script = jco_script()
        return f"jco {package_version(script.parents[1])}" if script else ""

    def command(self, path: Path, port: int) -> list[str]:
        return [str(node_program()), str(jco_script()), "serve", "--host", "127.0.0.1", "--port", str(port), str(path)]

    def environment(self) -> dict[str, str]:
        return {"JCO_RUN_ARGS": V8_FLAGS}
