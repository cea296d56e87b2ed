// The node (V8) engine worker for wasmlab: JSON lines on stdin -> JSON lines on stdout.
//
// Started by wasmlab/runtimes/node.py (worker/jsshell.py, worker/process.py), one process per V8 tier variant
// (node flags are per process). The parent enforces the wall-clock timeout and the resident-memory cap by
// killing this process: a guest in an endless loop blocks the event loop, so nothing in here could stop it.
//
// Ops (request -> answer; every answer is one line, errors are {"error", "kind"}):
//   load        {sha, wasm(base64)}                       -> {ok, compile_ms}
//   run         {sha, invoke|null, args, argv, env, stdin, dirs, max_output, max_memory}
//                                                         -> {result, stdout, stderr, exit_code, timings} or {trap}
//   instantiate {sha, argv, env, stdin, dirs, max_output, max_memory} -> {handle, exports, timings}
//   call        {handle, name, args}                      -> {result, stdout, stderr, exit_code, timings} or {trap}
//   read        {handle, address, length, memory}         -> {data(base64)}
//   write       {handle, address, data(base64), memory}   -> {ok}
//   memory_size {handle, memory}                          -> {size}
//   exports     {handle}                                  -> {exports: [{name, kind}]}
//   close       {handle} or {handles: [...]}              -> {ok}
//   kv_clear / kv_items                                   -> {ok} / {items: {key(base64): value(base64)}}
//
// Values: i32/f32/f64 as JSON numbers; i64 as decimal strings (exact, BigInt here); NaN, infinities and -0 as
// {"f": "nan"|"inf"|"-inf"|"-0"}; references as null or {"ref": description}.
// A trap answers {trap: message, frames: [{name, index, offset}], stdout, stderr, timings}.
// Timings (ms) are measured here with process.hrtime.bigint(), never across the pipe.

import fs from 'node:fs';
import readline from 'node:readline';
import { WASI } from 'node:wasi';

Error.stackTraceLimit = 64;

const modules = new Map(); // sha -> {module, compileMs, fresh}: fresh until a run or instance used it
const instances = new Map(); // handle -> context
const kv = new Map(); // latin1 key -> Uint8Array (the builtin host module's store; outlives instances)
let nextHandle = 1;
let lastExit = null; // the status of the last proc_exit, for exits outside any call

const WASI_MODULES = { wasi_snapshot_preview1: 'preview1', wasi_unstable: 'unstable' };

function now() {
  return process.hrtime.bigint();
}

function ms(start, end = now()) {
  return Number(end - start) / 1e6;
}

class Failure extends Error {
  constructor(message, kind) {
    super(message);
    this.kind = kind;
  }
}

// ------------------------------------------------------------------------------------------------ values

function decodeValue(v) {
  if (typeof v === 'string') return BigInt(v); // i64
  if (v !== null && typeof v === 'object' && 'f' in v) {
    return { nan: NaN, inf: Infinity, '-inf': -Infinity, '-0': -0 }[v.f];
  }
  return v; // number, or null for references
}

function encodeValue(v) {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { f: 'nan' };
    if (v === Infinity) return { f: 'inf' };
    if (v === -Infinity) return { f: '-inf' };
    if (Object.is(v, -0)) return { f: '-0' };
    return v;
  }
  if (v === null || v === undefined) return null;
  if (typeof v === 'function') return { ref: `funcref ${v.name}` };
  return { ref: `externref ${typeof v}` };
}

function encodeResult(v) {
  return Array.isArray(v) ? v.map(encodeValue) : encodeValue(v);
}

// ------------------------------------------------------------------------------------------ guest output

// Guest stdout/stderr go to capped in-memory buffers: fd_write on fds 1 and 2 is served here, so a guest
// printing forever fills nothing but max_output bytes.
class Output {
  constructor(cap) {
    this.cap = cap;
    this.chunks = [];
    this.size = 0;
    this.dropped = 0;
  }

  push(bytes) {
    const room = this.cap - this.size;
    if (room <= 0) {
      this.dropped += bytes.length;
      return;
    }
    const kept = bytes.length <= room ? bytes : bytes.subarray(0, room);
    this.chunks.push(Buffer.from(kept)); // copy: the guest memory changes afterwards
    this.size += kept.length;
    this.dropped += bytes.length - kept.length;
  }

  take() {
    const data = Buffer.concat(this.chunks).toString('base64');
    this.chunks = [];
    this.size = 0;
    return data;
  }
}

function memoryOf(ctx) {
  if (!ctx.memory) throw new Failure('the guest exports no memory named "memory"', 'link');
  return ctx.memory;
}

function guestBytes(ctx, ptr, len) {
  const mem = memoryOf(ctx);
  if (ptr < 0 || len < 0 || ptr + len > mem.buffer.byteLength) {
    throw new WebAssembly.RuntimeError('memory access out of bounds');
  }
  return new Uint8Array(mem.buffer, ptr, len);
}

// ------------------------------------------------------------------------------------------------- imports

function builtinHost(ctx) {
  return {
    log(ptr, len) {
      ctx.stderr.push(guestBytes(ctx, ptr >>> 0, len >>> 0));
      ctx.stderr.push(Buffer.from('\n'));
    },
    now_ms() {
      return performance.now();
    },
    random() {
      return Math.random();
    },
    kv_get(keyPtr, keyLen, outPtr, outCap) {
      const key = Buffer.from(guestBytes(ctx, keyPtr >>> 0, keyLen >>> 0)).toString('latin1');
      const value = kv.get(key);
      if (value === undefined) return -1;
      const n = Math.min(value.length, outCap >>> 0);
      guestBytes(ctx, outPtr >>> 0, n).set(value.subarray(0, n));
      return value.length;
    },
    kv_set(keyPtr, keyLen, valPtr, valLen) {
      const key = Buffer.from(guestBytes(ctx, keyPtr >>> 0, keyLen >>> 0)).toString('latin1');
      kv.set(key, Uint8Array.from(guestBytes(ctx, valPtr >>> 0, valLen >>> 0)));
    },
  };
}

function wasiImports(ctx, version, req) {
  const nullIn = fs.openSync('/dev/null', 'r');
  const nullOut = fs.openSync('/dev/null', 'w');
  ctx.fds = [nullIn, nullOut];
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
  const base = wasi.wasiImport;
  const stdin = Buffer.from(req.stdin || '', 'base64');
  let stdinPos = 0;
  const closed = new Set();
  const iovecs = (iovs, count) => {
    const view = new DataView(memoryOf(ctx).buffer);
    const list = [];
    for (let i = 0; i < count; i++) {
      list.push([view.getUint32(iovs + 8 * i, true), view.getUint32(iovs + 8 * i + 4, true)]);
    }
    return list;
  };
  const imports = {
    ...base,
    fd_write(fd, iovs, count, nwritten) {
      if ((fd !== 1 && fd !== 2) || closed.has(fd)) return base.fd_write(fd, iovs, count, nwritten);
      const out = fd === 1 ? ctx.stdout : ctx.stderr;
      let total = 0;
      for (const [ptr, len] of iovecs(iovs, count)) {
        out.push(guestBytes(ctx, ptr, len));
        total += len;
      }
      new DataView(memoryOf(ctx).buffer).setUint32(nwritten, total, true);
      return 0;
    },
    fd_read(fd, iovs, count, nread) {
      if (fd !== 0 || closed.has(fd)) return base.fd_read(fd, iovs, count, nread);
      let total = 0;
      for (const [ptr, len] of iovecs(iovs, count)) {
        const n = Math.min(len, stdin.length - stdinPos);
        guestBytes(ctx, ptr, n).set(stdin.subarray(stdinPos, stdinPos + n));
        stdinPos += n;
        total += n;
        if (n < len) break;
      }
      new DataView(memoryOf(ctx).buffer).setUint32(nread, total, true);
      return 0;
    },
    fd_close(fd) {
      const errno = base.fd_close(fd);
      if (errno === 0 && fd <= 2) closed.add(fd);
      return errno;
    },
    proc_exit(code) {
      ctx.exitCode = lastExit = code;
      return base.proc_exit(code); // throws node's internal exit marker (returnOnExit)
    },
  };
  ctx.wasi = wasi;
  return imports;
}

function closeContext(ctx) {
  for (const fd of ctx.fds || []) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }
  ctx.fds = [];
}

// -------------------------------------------------------------------------------------------- instances

function getModule(sha) {
  const entry = modules.get(sha);
  if (!entry) throw new Failure(`module ${sha.slice(0, 12)} is not loaded in this worker`, 'lost');
  return entry;
}

function memoryBytes(ctx) {
  return ctx.memory ? ctx.memory.buffer.byteLength : 0;
}

// Each memory's maximum is lowered to max_memory by the parent (memory.grow fails past it), so this only
// catches what that cannot cover (64-bit memories, custom page sizes).
function checkMemory(ctx) {
  if (!ctx.maxMemory) return;
  let used = 0;
  for (const value of Object.values(ctx.instance.exports)) {
    if (value instanceof WebAssembly.Memory) used = Math.max(used, value.buffer.byteLength);
  }
  if (used > ctx.maxMemory) {
    throw new Failure(
      `linear memory grew to ${(used / 2 ** 20).toFixed(1)} MiB, past the ` +
        `${(ctx.maxMemory / 2 ** 20).toFixed(1)} MiB limit; raise max_memory= if it needs more`,
      'limit:memory',
    );
  }
}

// A fresh instance with WASI (when imported), the builtin host module and captured output.
// `command`: the caller runs `_start` through wasi.start; otherwise reactors are initialised here.
function newContext(req, command) {
  const entry = getModule(req.sha);
  const { module, compileMs } = entry;
  const ctx = {
    stdout: new Output(req.max_output ?? 1 << 20),
    stderr: new Output(req.max_output ?? 1 << 20),
    maxMemory: req.max_memory || 0,
    exitCode: null,
    memory: null,
    wasi: null,
    timings: { compile: entry.fresh ? compileMs : 0 }, // as wasmtime: 0 when the compiled code was cached
    compileMs,
  };
  entry.fresh = false;
  const importObject = {};
  const wanted = new Set(WebAssembly.Module.imports(module).map((i) => i.module));
  for (const name of wanted) {
    if (name in WASI_MODULES) importObject[name] = wasiImports(ctx, WASI_MODULES[name], req);
    else if (name === 'wasmlab') importObject[name] = builtinHost(ctx);
  }
  const t0 = now();
  let instance;
  try {
    instance = new WebAssembly.Instance(module, importObject);
  } catch (err) {
    closeContext(ctx);
    if (err instanceof WebAssembly.LinkError) throw new Failure(err.message, 'link');
    throw err; // a trap in the start function
  }
  ctx.instance = instance;
  const exported = instance.exports.memory;
  ctx.memory = exported instanceof WebAssembly.Memory ? exported : firstMemory(instance);
  try {
    checkMemory(ctx);
    if (ctx.wasi && !command) {
      // Hand node's WASI the memory without letting it call _initialize (timed and trapped like any call).
      if (!ctx.memory) throw new Failure('a WASI module must export its memory', 'link');
      ctx.wasi.initialize({ exports: { memory: ctx.memory } });
    }
    if (!command && typeof instance.exports._initialize === 'function') instance.exports._initialize();
  } catch (err) {
    closeContext(ctx);
    throw err;
  }
  ctx.timings.instantiate = ms(t0);
  return ctx;
}

function firstMemory(instance) {
  for (const value of Object.values(instance.exports)) {
    if (value instanceof WebAssembly.Memory) return value;
  }
  return null;
}

function exportFunction(ctx, name) {
  const fn = ctx.instance.exports[name];
  if (typeof fn !== 'function') {
    const names = Object.keys(ctx.instance.exports).filter((n) => typeof ctx.instance.exports[n] === 'function');
    throw new Failure(`no exported function ${JSON.stringify(name)}: exports ${names.join(', ') || 'none'}`, 'usage');
  }
  return fn;
}

function isExitMarker(err) {
  return typeof err === 'symbol'; // node:wasi's proc_exit throws a private symbol
}

// Call an export; the answer carries the result or the trap, the output and the timings.
function invoke(ctx, name, args, timingKey) {
  const fn = exportFunction(ctx, name);
  const values = (args || []).map(decodeValue);
  const answer = { timings: ctx.timings };
  const t0 = now();
  try {
    answer.result = encodeResult(fn(...values));
    answer.timings[timingKey] = ms(t0);
  } catch (err) {
    answer.timings[timingKey] = ms(t0);
    if (isExitMarker(err)) answer.exit_code = ctx.exitCode;
    else Object.assign(answer, trapAnswer(err));
  }
  return finish(ctx, answer);
}

function finish(ctx, answer) {
  answer.stdout = ctx.stdout.take();
  answer.stderr = ctx.stderr.take();
  if (ctx.stdout.dropped || ctx.stderr.dropped) {
    answer.dropped = [ctx.stdout.dropped, ctx.stderr.dropped];
    ctx.stdout.dropped = ctx.stderr.dropped = 0;
  }
  if (!('trap' in answer)) {
    try {
      checkMemory(ctx);
    } catch (err) {
      answer.error = err.message;
      answer.kind = err.kind;
    }
  }
  answer.memory_bytes = memoryBytes(ctx);
  answer.compile_ms = ctx.compileMs;
  return answer;
}

// A JS exception from guest code -> {trap, frames}. Non-trap errors (TypeError from a bad argument, a
// failure of ours) are not traps.
// V8 frames: "at fib (wasm://wasm/1234abcd:wasm-function[3]:0x5a)"; with a module name in the name section
// "at mod.fib (wasm://wasm/mod-1234abcd:...)"; without a function name "at wasm://wasm/1234abcd:...".
const FRAME = /at (?:(.*?) \()?wasm:\/\/wasm\/[^:\s]+:wasm-function\[(\d+)\]:0x([0-9a-f]+)\)?/;

function trapAnswer(err) {
  if (err instanceof Failure) throw err;
  const isTrap = err instanceof WebAssembly.RuntimeError || (err instanceof RangeError && /call stack/i.test(err.message));
  if (!isTrap) {
    if (err instanceof TypeError) throw new Failure(err.message, 'usage');
    throw err;
  }
  const frames = [];
  for (const line of String(err.stack || '').split('\n')) {
    const m = FRAME.exec(line);
    if (m) frames.push({ name: m[1] || null, index: Number(m[2]), offset: parseInt(m[3], 16) });
  }
  return { trap: err.message, frames };
}

// ------------------------------------------------------------------------------------------------------ ops

async function load(req) {
  if (modules.has(req.sha)) return { ok: true, compile_ms: modules.get(req.sha).compileMs };
  const bytes = Buffer.from(req.wasm, 'base64');
  const t0 = now();
  let module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (err) {
    throw new Failure(err.message, 'compile');
  }
  const compileMs = ms(t0);
  modules.set(req.sha, { module, compileMs, fresh: true });
  return { ok: true, compile_ms: compileMs };
}

function run(req) {
  const command = req.invoke === null || req.invoke === undefined;
  let ctx;
  try {
    ctx = newContext(req, command);
  } catch (err) {
    if (err instanceof Failure || isExitMarker(err)) throw err;
    return { ...trapAnswer(err), stdout: '', stderr: '', timings: {} };
  }
  try {
    if (!command) return invoke(ctx, req.invoke, req.args, 'call');
    if (typeof ctx.instance.exports._start !== 'function') {
      throw new Failure('not a WASI command: the module exports no _start; pass invoke= an export', 'usage');
    }
    const answer = { timings: ctx.timings };
    const t0 = now();
    try {
      if (ctx.wasi) answer.exit_code = ctx.wasi.start(ctx.instance);
      else {
        ctx.instance.exports._start();
        answer.exit_code = 0;
      }
    } catch (err) {
      if (isExitMarker(err)) answer.exit_code = ctx.exitCode;
      else Object.assign(answer, trapAnswer(err));
    }
    answer.timings.run = ms(t0);
    return finish(ctx, answer);
  } finally {
    closeContext(ctx);
  }
}

function instantiate(req) {
  let ctx;
  try {
    ctx = newContext(req, false);
  } catch (err) {
    if (err instanceof Failure || isExitMarker(err)) throw err;
    return { ...trapAnswer(err), timings: {} };
  }
  const handle = nextHandle++;
  instances.set(handle, ctx);
  const answer = finish(ctx, { handle, exports: exportList(ctx), timings: ctx.timings });
  if (answer.error) {
    instances.delete(handle);
    closeContext(ctx);
  }
  return answer;
}

function getInstance(handle) {
  const ctx = instances.get(handle);
  if (!ctx) throw new Failure(`no instance ${handle} in this worker`, 'lost');
  return ctx;
}

function call(req) {
  const ctx = getInstance(req.handle);
  ctx.timings = {};
  const answer = invoke(ctx, req.name, req.args, 'call');
  if (answer.kind === 'limit:memory') {
    instances.delete(req.handle); // free it: the parent reports the limit and forgets the handle
    closeContext(ctx);
  }
  return answer;
}

function namedMemory(ctx, name) {
  const mem = name ? ctx.instance.exports[name] : ctx.memory;
  if (!(mem instanceof WebAssembly.Memory)) {
    throw new Failure(name ? `no exported memory ${JSON.stringify(name)}` : 'the instance exports no memory', 'usage');
  }
  return mem;
}

function span(mem, address, length) {
  const size = mem.buffer.byteLength;
  if (!Number.isInteger(address) || !Number.isInteger(length) || address < 0 || length < 0 || address + length > size) {
    throw new Failure(`bytes ${address}..${address + length} are outside the ${size}-byte memory`, 'usage');
  }
}

function read(req) {
  const mem = namedMemory(getInstance(req.handle), req.memory);
  span(mem, req.address, req.length);
  return { data: Buffer.from(mem.buffer, req.address, req.length).toString('base64') };
}

function write(req) {
  const mem = namedMemory(getInstance(req.handle), req.memory);
  const data = Buffer.from(req.data, 'base64');
  span(mem, req.address, data.length);
  new Uint8Array(mem.buffer).set(data, req.address);
  return { ok: true };
}

function exportList(ctx) {
  return Object.entries(ctx.instance.exports).map(([name, value]) => ({
    name,
    kind:
      typeof value === 'function'
        ? 'func'
        : value instanceof WebAssembly.Memory
          ? 'memory'
          : value instanceof WebAssembly.Table
            ? 'table'
            : value instanceof WebAssembly.Global
              ? 'global'
              : 'tag',
  }));
}

function close(req) {
  for (const handle of req.handles || [req.handle]) {
    const ctx = instances.get(handle);
    if (ctx) closeContext(ctx);
    instances.delete(handle);
  }
  return { ok: true };
}

const OPS = {
  load,
  run,
  instantiate,
  call,
  read,
  write,
  memory_size: (req) => ({ size: namedMemory(getInstance(req.handle), req.memory).buffer.byteLength }),
  exports: (req) => ({ exports: exportList(getInstance(req.handle)) }),
  close,
  kv_clear: () => {
    kv.clear();
    return { ok: true };
  },
  kv_items: () => ({
    items: Object.fromEntries([...kv].map(([k, v]) => [Buffer.from(k, 'latin1').toString('base64'), Buffer.from(v).toString('base64')])),
  }),
  ping: () => ({ ok: true }),
};

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (err) {
    return { error: `bad request: ${err.message}`, kind: 'internal' };
  }
  const op = OPS[req.op];
  if (!op) return { error: `unknown op ${JSON.stringify(req.op)}`, kind: 'internal' };
  try {
    return await op(req);
  } catch (err) {
    if (err instanceof Failure) return { error: err.message, kind: err.kind };
    if (isExitMarker(err)) return { error: 'the guest exited while instantiating', kind: 'exit', exit_code: lastExit };
    return { error: `${err && err.name ? err.name + ': ' : ''}${err && err.message ? err.message : err}`, kind: 'internal' };
  }
}

function send(answer) {
  process.stdout.write(JSON.stringify(answer) + '\n');
}

let queue = Promise.resolve();
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  queue = queue.then(() => handle(line)).then(send);
});
lines.on('close', () => process.exit(0));

send({
  ready: true,
  node: process.version,
  v8: process.versions.v8,
  flags: process.execArgv,
  pid: process.pid,
});
