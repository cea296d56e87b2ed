// The Workers-side glue wasmlab gives workerd: a standard wasi:http/proxy component, transpiled by
// `jco transpile --instantiation async` (handler/component.js + its core .wasm files, listed in handler/cores.js),
// imports WASI from jco's own browser shim (@bytecodealliance/preview2-shim, copied in as shim/*.js), and its
// wasi:http/incoming-handler answers the Worker's fetch events through the shim's handleIncomingRequest.
// Nothing here is specific to a language: C, Python (componentize-py) and every other component take this path.
import { instantiate } from "./handler/component.js";
import cores from "./handler/cores.js";
import * as cli from "./shim/cli.js";
import * as clocks from "./shim/clocks.js";
import * as filesystem from "./shim/filesystem.js";
import * as http from "./shim/http.js";
import * as io from "./shim/io.js";
import * as random from "./shim/random.js";
import * as sockets from "./shim/sockets.js";

// The same interface -> implementation map as preview2-shim's WASIShim.getImportObject (common/instantiation.js,
// which imports the shim by its bare package name: workerd modules are named by path, so it is spelt out here).
const WASI = {
  "wasi:cli/environment": cli.environment,
  "wasi:cli/exit": cli.exit,
  "wasi:cli/stderr": cli.stderr,
  "wasi:cli/stdin": cli.stdin,
  "wasi:cli/stdout": cli.stdout,
  "wasi:cli/terminal-input": cli.terminalInput,
  "wasi:cli/terminal-output": cli.terminalOutput,
  "wasi:cli/terminal-stderr": cli.terminalStderr,
  "wasi:cli/terminal-stdin": cli.terminalStdin,
  "wasi:cli/terminal-stdout": cli.terminalStdout,
  "wasi:clocks/monotonic-clock": clocks.monotonicClock,
  "wasi:clocks/wall-clock": clocks.wallClock,
  "wasi:filesystem/preopens": filesystem.preopens,
  "wasi:filesystem/types": filesystem.types,
  "wasi:http/types": http.types,
  "wasi:http/outgoing-handler": http.outgoingHandler,
  "wasi:io/error": io.error,
  "wasi:io/poll": io.poll,
  "wasi:io/streams": io.streams,
  "wasi:random/random": random.random,
  "wasi:random/insecure": random.insecure,
  "wasi:random/insecure-seed": random.insecureSeed,
  "wasi:sockets/instance-network": sockets.instanceNetwork,
  "wasi:sockets/ip-name-lookup": sockets.ipNameLookup,
  "wasi:sockets/network": sockets.network,
  "wasi:sockets/tcp": sockets.tcp,
  "wasi:sockets/tcp-create-socket": sockets.tcpCreateSocket,
  "wasi:sockets/udp": sockets.udp,
  "wasi:sockets/udp-create-socket": sockets.udpCreateSocket,
};

// Workers may not compile Wasm from bytes: the core modules arrive compiled (config `wasm = embed`), and the
// component is instantiated once, on the first request (no I/O or randomness is allowed at global scope).
let ready;
function handler() {
  ready ??= instantiate((name) => cores[name], WASI).then((exports) => exports.incomingHandler);
  return ready;
}

export default {
  async fetch(request) {
    try {
      const incoming = await handler();
      return await http.handleIncomingRequest(request, (req, out) => incoming.handle(req, out));
    } catch (error) {
      console.error(`wasmlab: handler failed: ${error && error.stack ? error.stack : error}`);
      return new Response(`handler failed: ${error}\n`, { status: 500 });
    }
  },
};
