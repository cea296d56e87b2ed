// The node (V8) engine worker for wasmlab: JSON lines on stdin -> JSON lines on stdout.
//
// The protocol, values, traps, output capture and the built-in host module are wasmcore.js (shared with the
// JavaScript shells' worker and the browser's); this adapter gives it node's clock and base64, and WASI from
// `node:wasi` so that preopened directories work (stdin, stdout/stderr and proc_exit stay the core's: capped
// and captured in memory). Started by wasmlab/runtimes/node.py, one process per V8 tier variant (node flags
// are per process). The parent enforces the time limit and the resident-memory cap by killing this process.

import fs from 'node:fs';
import readline from 'node:readline';
import vm from 'node:vm';
import { WASI } from 'node:wasi';

Error.stackTraceLimit = 64;

const source = fs.readFileSync(new URL('./wasmcore.js', import.meta.url), 'utf8');
const wasmlabCore = vm.runInThisContext(`${source}\nwasmlabCore;`, { filename: 'wasmcore.js' });

function nodeWasi(ctx, req, version, shim) {
  const nullIn = fs.openSync('/dev/null', 'r');
  const nullOut = fs.openSync('/dev/null', 'w');
  const wasi = new WASI({
    version,
    args: req.argv && req.argv.length ? req.argv : ['main.wasm'],
    env: req.env || {},
    preopens: req.dirs || {},
    returnOnExit: true,
    stdin: nullIn,
    stdout: nullOut,
    stderr: nullOut,
  });
  ctx.wasi = wasi;
  ctx.close = () => {
    for (const fd of [nullIn, nullOut]) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    ctx.close = null;
  };
  const base = wasi.wasiImport;
  return {
    ...base,
    fd_write: (fd, ...rest) => (fd === 1 || fd === 2 ? shim.fd_write(fd, ...rest) : base.fd_write(fd, ...rest)),
    fd_read: (fd, ...rest) => (fd === 0 ? shim.fd_read(fd, ...rest) : base.fd_read(fd, ...rest)),
    fd_close: (fd) => (fd <= 2 ? shim.fd_close(fd) : base.fd_close(fd)),
    proc_exit: (code) => shim.proc_exit(code),
  };
}

const core = wasmlabCore({
  now: () => performance.now(),
  b64encode: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64'),
  b64decode: (text) => new Uint8Array(Buffer.from(text, 'base64')),
  randomFill: (bytes) => crypto.getRandomValues(bytes),
  wasi: nodeWasi,
  // Hand node's WASI the memory without letting it call _start or _initialize (the core calls them, timed).
  initialize: (ctx) => ctx.wasi.initialize({ exports: { memory: ctx.memory } }),
});

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => process.stdout.write(core.handleLine(line) + '\n'));
lines.on('close', () => process.exit(0));

process.stdout.write(
  JSON.stringify({ ready: true, node: process.version, v8: process.versions.v8, flags: process.execArgv, pid: process.pid }) + '\n',
);
