// wasmlab's engine worker core: the protocol every JavaScript engine worker speaks (JavaScriptCore and
// SpiderMonkey shells, node, the browser page's Web Worker), over the engine's own `WebAssembly` API.
//
// Plain script, no imports: the shells load it as a file, node evaluates it, the browser bundles its text.
// `wasmlabCore(host)` returns `{handle(request) -> answer}`; the host adapter (jsshell_worker.js,
// node_worker.mjs, js/src/worker.ts) only moves lines or messages and gives what the host differs in:
//   host.now()                 milliseconds, monotonic (performance.now, preciseTime...)
//   host.b64encode/b64decode   optional: native base64 (node Buffer, atob/btoa); pure JS otherwise
//   host.randomFill(bytes)     optional: crypto.getRandomValues; the shells have no crypto (Math.random then)
//   host.wasi(ctx, req, name, shim)  optional: WASI imports of the host's own (node:wasi, for preopened
//                              directories) instead of the shim, given the shim for what it keeps (stdio, exit)
//   host.initialize(ctx)       optional: called after instantiation when host.wasi gave the imports
//
// Ops (request -> answer; every answer is one object, errors are {error, kind}):
//   load        {sha, wasm(base64)}                       -> {ok, compile_ms}
//   run         {sha, invoke|null, args, argv, env, stdin, max_output, max_memory}
//                                                         -> {result, stdout, stderr, exit_code, timings} or {trap}
//   instantiate {sha, argv, env, stdin, max_output, max_memory} -> {handle, exports, timings}
//   call        {handle, name, args}                      -> like run
//   read        {handle, address, length, memory}         -> {data(base64)}
//   write       {handle, address, data(base64), memory}   -> {ok}
//   memory_size {handle, memory}                          -> {size}
//   exports     {handle}                                  -> {exports: [{name, kind}]}
//   close       {handle} or {handles: [...]}              -> {ok}
//   kv_clear / kv_items / ping                            -> {ok} / {items: {key(base64): value(base64)}} / {ok}
// A request may carry `wasm` with `sha` on any op (the browser sends it with run/instantiate), and
// `release`: handles the parent dropped without closing them.
//
// Values: i32/f32/f64 as JSON numbers; i64 as decimal strings (exact, BigInt here); NaN, infinities and -0 as
// {"f": "nan"|"inf"|"-inf"|"-0"}; references as null or {"ref": description}.
// A trap answers {trap: the engine's message, frames: [{name, index, offset|null}], stdout, stderr, timings}:
// the parent maps messages to trap codes (wasmlab/runtimes/worker/jscodec.py), one mapping for every engine.

// eslint-disable-next-line no-unused-vars
function wasmlabCore(host) {
  'use strict';
  const modules = new Map(); // sha -> {module, compileMs, fresh}: fresh until a run or instance used it
  const MAX_MODULES = host.maxModules || 64;
  const instances = new Map(); // handle -> context
  const kv = new Map(); // latin1 key -> Uint8Array (the built-in host module's store; outlives instances)
  let nextHandle = host.firstHandle || 1;
  let lastExit = null; // the status of the last proc_exit, for exits outside any call
  const WASI_MODULES = { wasi_snapshot_preview1: 'preview1', wasi_unstable: 'unstable' };
  const ERRNO = { SUCCESS: 0, BADF: 8, FAULT: 21, INVAL: 28, NOSYS: 52, SPIPE: 70 };

  class Failure extends Error {
    constructor(message, kind) {
      super(message);
      this.kind = kind;
    }
  }

  class Exit {
    constructor(code) {
      this.code = code;
    }
  }

  const isExit = (err) => err instanceof Exit;

  // ------------------------------------------------------------------------------------------- bytes

  // Written here because the JS shells have neither TextEncoder nor (SpiderMonkey) atob/btoa.
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const B64_INDEX = new Uint8Array(128);
  for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

  function latin1(bytes) {
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return text;
  }

  function fromLatin1(text) {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function b64encode(bytes) {
    if (host.b64encode) return host.b64encode(bytes);
    if (typeof btoa === 'function') return btoa(latin1(bytes));
    const parts = [];
    let chunk = '';
    const n = bytes.length;
    for (let i = 0; i < n; i += 3) {
      const a = bytes[i];
      const b = i + 1 < n ? bytes[i + 1] : 0;
      const c = i + 2 < n ? bytes[i + 2] : 0;
      chunk += B64[a >> 2] + B64[((a & 3) << 4) | (b >> 4)];
      chunk += i + 1 < n ? B64[((b & 15) << 2) | (c >> 6)] : '=';
      chunk += i + 2 < n ? B64[c & 63] : '=';
      if (chunk.length > 0x10000) {
        parts.push(chunk);
        chunk = '';
      }
    }
    parts.push(chunk);
    return parts.join('');
  }

  function b64decode(text) {
    text = text || '';
    if (host.b64decode) return host.b64decode(text);
    if (typeof atob === 'function') return fromLatin1(atob(text));
    let end = text.length;
    while (end > 0 && text[end - 1] === '=') end--;
    const out = new Uint8Array(Math.floor((end * 3) / 4));
    let at = 0;
    for (let i = 0; i < end; i += 4) {
      const a = B64_INDEX[text.charCodeAt(i)];
      const b = B64_INDEX[text.charCodeAt(i + 1)];
      const c = B64_INDEX[text.charCodeAt(i + 2)];
      const d = B64_INDEX[text.charCodeAt(i + 3)];
      out[at++] = (a << 2) | (b >> 4);
      if (i + 2 < end) out[at++] = ((b & 15) << 4) | (c >> 2);
      if (i + 3 < end) out[at++] = ((c & 3) << 6) | d;
    }
    return out;
  }

  function utf8(text) {
    const out = [];
    for (const ch of text) {
      let cp = ch.codePointAt(0);
      if (cp < 0x80) out.push(cp);
      else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
      else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
      else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    }
    return Uint8Array.from(out);
  }

  function randomFill(bytes) {
    if (host.randomFill) return host.randomFill(bytes);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256); // not cryptographic
  }

  // ------------------------------------------------------------------------------------------- values

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

  const encodeResult = (v) => (Array.isArray(v) ? v.map(encodeValue) : encodeValue(v));

  // ----------------------------------------------------------------------------------- guest output

  // Guest stdout/stderr go to capped in-memory buffers: a guest printing forever fills max_output bytes only.
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
      this.chunks.push(kept.slice()); // a copy: the guest memory changes afterwards
      this.size += kept.length;
      this.dropped += bytes.length - kept.length;
    }

    take() {
      const all = new Uint8Array(this.size);
      let at = 0;
      for (const c of this.chunks) {
        all.set(c, at);
        at += c.length;
      }
      this.chunks = [];
      this.size = 0;
      return b64encode(all);
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

  const view = (ctx) => new DataView(memoryOf(ctx).buffer);

  // --------------------------------------------------------------------------------- WASI preview 1

  // A shim for commands and reactors: args, environ, fd_write to stdout/stderr, fd_read from stdin, clocks,
  // random, proc_exit. No files (fd_prestat_get says EBADF: no preopens); any other function links and
  // answers ENOSYS. Written here because the shells have no WASI and the browser's is not standard.
  function wasiShim(ctx, req) {
    const argv = req.argv && req.argv.length ? req.argv : ['main.wasm'];
    const env = Object.entries(req.env || {}).map(([k, v]) => `${k}=${v}`);
    const stdin = b64decode(req.stdin || '');
    let stdinPos = 0;
    const closed = new Set();
    const started = host.now();
    const epochNs = BigInt(Date.now()) * 1000000n;

    const strings = (list, ptrs, buf) => {
      const dv = view(ctx);
      let at = buf;
      list.forEach((s, i) => {
        const bytes = utf8(s + '\0');
        dv.setUint32(ptrs + 4 * i, at, true);
        guestBytes(ctx, at, bytes.length).set(bytes);
        at += bytes.length;
      });
      return ERRNO.SUCCESS;
    };
    const sizes = (list, countPtr, sizePtr) => {
      const dv = view(ctx);
      dv.setUint32(countPtr, list.length, true);
      dv.setUint32(sizePtr, list.reduce((n, s) => n + utf8(s).length + 1, 0), true);
      return ERRNO.SUCCESS;
    };
    const iovecs = (iovs, count) => {
      const dv = view(ctx);
      const list = [];
      for (let i = 0; i < count; i++) list.push([dv.getUint32(iovs + 8 * i, true), dv.getUint32(iovs + 8 * i + 4, true)]);
      return list;
    };
    const now = (clock) => {
      if (clock === 0) return BigInt(Date.now()) * 1000000n; // realtime
      return epochNs + BigInt(Math.round((host.now() - started) * 1e6)); // monotonic, process, thread
    };
    const functions = {
      args_get: (ptrs, buf) => strings(argv, ptrs, buf),
      args_sizes_get: (countPtr, sizePtr) => sizes(argv, countPtr, sizePtr),
      environ_get: (ptrs, buf) => strings(env, ptrs, buf),
      environ_sizes_get: (countPtr, sizePtr) => sizes(env, countPtr, sizePtr),
      fd_write(fd, iovs, count, nwritten) {
        if ((fd !== 1 && fd !== 2) || closed.has(fd)) return ERRNO.BADF;
        const out = fd === 1 ? ctx.stdout : ctx.stderr;
        let total = 0;
        for (const [ptr, len] of iovecs(iovs, count)) {
          out.push(guestBytes(ctx, ptr, len));
          total += len;
        }
        view(ctx).setUint32(nwritten, total, true);
        return ERRNO.SUCCESS;
      },
      fd_read(fd, iovs, count, nread) {
        if (fd !== 0 || closed.has(fd)) return ERRNO.BADF;
        let total = 0;
        for (const [ptr, len] of iovecs(iovs, count)) {
          const n = Math.min(len, stdin.length - stdinPos);
          guestBytes(ctx, ptr, n).set(stdin.subarray(stdinPos, stdinPos + n));
          stdinPos += n;
          total += n;
          if (n < len) break;
        }
        view(ctx).setUint32(nread, total, true);
        return ERRNO.SUCCESS;
      },
      fd_close(fd) {
        if (fd > 2 || closed.has(fd)) return ERRNO.BADF;
        closed.add(fd);
        return ERRNO.SUCCESS;
      },
      fd_fdstat_get(fd, ptr) {
        if (fd > 2 || closed.has(fd)) return ERRNO.BADF;
        const dv = view(ctx);
        dv.setUint8(ptr, 2); // filetype: character device
        dv.setUint16(ptr + 2, 0, true); // flags
        dv.setBigUint64(ptr + 8, fd === 0 ? 0x2n : 0x40n, true); // rights base: fd_read / fd_write
        dv.setBigUint64(ptr + 16, 0n, true);
        return ERRNO.SUCCESS;
      },
      fd_fdstat_set_flags: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
      fd_prestat_get: () => ERRNO.BADF, // no preopened directories
      fd_prestat_dir_name: () => ERRNO.BADF,
      fd_seek: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SPIPE),
      fd_tell: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SPIPE),
      fd_sync: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
      fd_datasync: (fd) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
      clock_res_get(clock, ptr) {
        if (clock < 0 || clock > 3) return ERRNO.INVAL;
        view(ctx).setBigUint64(ptr, clock === 0 ? 1000000n : 1000n, true);
        return ERRNO.SUCCESS;
      },
      clock_time_get(clock, _precision, ptr) {
        if (clock < 0 || clock > 3) return ERRNO.INVAL;
        view(ctx).setBigUint64(ptr, now(clock), true);
        return ERRNO.SUCCESS;
      },
      random_get(ptr, len) {
        randomFill(guestBytes(ctx, ptr, len));
        return ERRNO.SUCCESS;
      },
      sched_yield: () => ERRNO.SUCCESS,
      proc_exit(code) {
        ctx.exitCode = lastExit = code;
        throw new Exit(code);
      },
      proc_raise: () => ERRNO.NOSYS,
    };
    const enosys = () => ERRNO.NOSYS;
    // a pointer outside the guest's memory makes the DataView throw RangeError: the guest gets EFAULT, as from
    // a real kernel (a RangeError for a full call stack stays a stack overflow)
    const guarded = (fn) => (...args) => {
      try {
        return fn(...args);
      } catch (err) {
        if (err instanceof RangeError && !/call stack|too much recursion/i.test(err.message)) return ERRNO.FAULT;
        throw err;
      }
    };
    return new Proxy(functions, {
      get: (target, name) => (typeof name === 'string' && name in target ? guarded(target[name]) : enosys),
    });
  }

  // The built-in `wasmlab` host module (log, now_ms, random, kv_get, kv_set); the store lives in this
  // worker, so it is emptied when a time limit restarts the worker.
  function builtinHost(ctx) {
    const key = (ptr, len) => latin1(guestBytes(ctx, ptr >>> 0, len >>> 0));
    return {
      log(ptr, len) {
        ctx.stderr.push(guestBytes(ctx, ptr >>> 0, len >>> 0));
        ctx.stderr.push(Uint8Array.of(10));
      },
      now_ms: () => host.now(),
      random: () => Math.random(),
      kv_get(keyPtr, keyLen, outPtr, outCap) {
        const value = kv.get(key(keyPtr, keyLen));
        if (value === undefined) return -1;
        const n = Math.min(value.length, outCap >>> 0);
        guestBytes(ctx, outPtr >>> 0, n).set(value.subarray(0, n));
        return value.length;
      },
      kv_set(keyPtr, keyLen, valPtr, valLen) {
        kv.set(key(keyPtr, keyLen), guestBytes(ctx, valPtr >>> 0, valLen >>> 0).slice());
      },
    };
  }

  // ------------------------------------------------------------------------------------------- traps

  // One frame per stack line: V8 "at fib (wasm://wasm/1234abcd:wasm-function[3]:0x5a)";
  // SpiderMonkey "mod.fib@file line 2 > WebAssembly.Module:wasm-function[3]:0x5a";
  // JavaScriptCore "fib@mod:wasm-function[3]" (no offsets).
  const FRAME = /wasm-function\[(\d+)\](?::0x([0-9a-f]+))?/;
  const V8_NAME = /^\s*at (\S+?) \(/;
  const AT_NAME = /^\s*([^@\s]*)@/;

  function isTrap(err) {
    if (err instanceof WebAssembly.RuntimeError) return true;
    const name = err && err.name;
    return (name === 'RangeError' || name === 'InternalError') && /call stack|too much recursion/i.test(err.message);
  }

  function trapAnswer(err) {
    if (err instanceof Failure || isExit(err)) throw err;
    if (!isTrap(err)) {
      if (err instanceof TypeError) throw new Failure(err.message, 'usage');
      throw err;
    }
    const frames = [];
    for (const line of String(err.stack || '').split('\n')) {
      const m = FRAME.exec(line);
      if (!m) continue;
      const named = V8_NAME.exec(line) || AT_NAME.exec(line);
      const name = named && named[1] && !named[1].startsWith('wasm') ? named[1] : null;
      frames.push({ name, index: Number(m[1]), offset: m[2] === undefined ? null : parseInt(m[2], 16) });
    }
    // JavaScriptCore appends the JS expression that called in: " (evaluating 'fn(...values)')"
    return { trap: String(err.message).replace(/ \(evaluating '.*'\)$/s, ''), frames };
  }

  // ---------------------------------------------------------------------------------------- instances

  function load(req) {
    const entry = modules.get(req.sha);
    if (entry) return { ok: true, compile_ms: entry.compileMs };
    if (!req.wasm) throw new Failure(`module ${String(req.sha).slice(0, 12)} is not loaded in this worker`, 'lost');
    const bytes = b64decode(req.wasm);
    const t0 = host.now();
    let module;
    try {
      module = new WebAssembly.Module(bytes);
    } catch (err) {
      throw new Failure(String(err.message), 'compile');
    }
    const compileMs = host.now() - t0;
    if (modules.size >= MAX_MODULES) modules.delete(modules.keys().next().value);
    modules.set(req.sha, { module, compileMs, fresh: true });
    return { ok: true, compile_ms: compileMs };
  }

  function getModule(req) {
    if (req.wasm && !modules.has(req.sha)) load(req);
    const entry = modules.get(req.sha);
    if (!entry) throw new Failure(`module ${String(req.sha).slice(0, 12)} is not loaded in this worker`, host.missingKind || 'lost');
    return entry;
  }

  const memoryBytes = (ctx) => (ctx.memory ? ctx.memory.buffer.byteLength : 0);

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

  function firstMemory(instance) {
    const exported = instance.exports.memory;
    if (exported instanceof WebAssembly.Memory) return exported;
    for (const value of Object.values(instance.exports)) {
      if (value instanceof WebAssembly.Memory) return value;
    }
    return null;
  }

  function closeContext(ctx) {
    if (ctx.close) ctx.close();
  }

  // A fresh instance with WASI (when imported), the built-in host module and captured output.
  // `command`: the caller runs `_start`; otherwise reactors are initialised here.
  function newContext(req, command) {
    const entry = getModule(req);
    const ctx = {
      stdout: new Output(req.max_output ?? 1 << 20),
      stderr: new Output(req.max_output ?? 1 << 20),
      maxMemory: req.max_memory || 0,
      exitCode: null,
      memory: null,
      instance: null,
      wasi: null, // a host WASI object, when the host gives one (node:wasi)
      close: null,
      timings: { compile: entry.fresh ? entry.compileMs : 0 }, // as wasmtime: 0 when the code was cached
      compileMs: entry.compileMs,
    };
    entry.fresh = false;
    const importObject = {};
    const wanted = new Set(WebAssembly.Module.imports(entry.module).map((i) => i.module));
    for (const name of wanted) {
      if (name in WASI_MODULES) {
        const shim = wasiShim(ctx, req);
        importObject[name] = host.wasi ? host.wasi(ctx, req, WASI_MODULES[name], shim) : shim;
      } else if (name === 'wasmlab') importObject[name] = builtinHost(ctx);
    }
    const t0 = host.now();
    try {
      ctx.instance = new WebAssembly.Instance(entry.module, importObject);
    } catch (err) {
      closeContext(ctx);
      if (err instanceof WebAssembly.LinkError) throw new Failure(String(err.message), 'link');
      throw err; // a trap in the start function
    }
    ctx.memory = firstMemory(ctx.instance);
    try {
      checkMemory(ctx);
      if (host.initialize && ctx.wasi) {
        if (!ctx.memory) throw new Failure('a WASI module must export its memory', 'link');
        host.initialize(ctx);
      }
      if (!command && typeof ctx.instance.exports._initialize === 'function') ctx.instance.exports._initialize();
    } catch (err) {
      closeContext(ctx);
      throw err;
    }
    ctx.timings.instantiate = host.now() - t0;
    return ctx;
  }

  function exportFunction(ctx, name) {
    const fn = ctx.instance.exports[name];
    if (typeof fn !== 'function') {
      const names = Object.keys(ctx.instance.exports).filter((n) => typeof ctx.instance.exports[n] === 'function');
      throw new Failure(`no exported function ${JSON.stringify(name)}: exports ${names.join(', ') || 'none'}`, 'usage');
    }
    return fn;
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

  // Call an export (`_start` for a command); the answer carries the result or the trap, output and timings.
  function invoke(ctx, name, args, command) {
    const key = command ? 'run' : 'call';
    const answer = { timings: ctx.timings };
    const t0 = host.now();
    try {
      const result = exportFunction(ctx, name)(...(args || []).map(decodeValue));
      if (command) answer.exit_code = 0;
      else answer.result = encodeResult(result);
      answer.timings[key] = host.now() - t0;
    } catch (err) {
      answer.timings[key] = host.now() - t0;
      if (err instanceof Failure) throw err;
      if (isExit(err)) answer.exit_code = ctx.exitCode;
      else Object.assign(answer, trapAnswer(err));
    }
    return finish(ctx, answer);
  }

  function run(req) {
    const command = req.invoke === null || req.invoke === undefined;
    let ctx;
    try {
      ctx = newContext(req, command);
    } catch (err) {
      if (err instanceof Failure || isExit(err)) throw err;
      return { ...trapAnswer(err), stdout: '', stderr: '', timings: {} };
    }
    try {
      if (command && typeof ctx.instance.exports._start !== 'function') {
        throw new Failure('not a WASI command: the module exports no _start; pass invoke= an export', 'usage');
      }
      return invoke(ctx, command ? '_start' : req.invoke, req.args, command);
    } finally {
      closeContext(ctx);
    }
  }

  function instantiate(req) {
    let ctx;
    try {
      ctx = newContext(req, false);
    } catch (err) {
      if (err instanceof Failure || isExit(err)) throw err;
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
    if (!ctx) throw new Failure(`no instance ${handle} in this worker (it was restarted since)`, 'lost');
    return ctx;
  }

  function call(req) {
    const ctx = getInstance(req.handle);
    ctx.timings = {};
    const answer = invoke(ctx, req.name, req.args, false);
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
    return new Uint8Array(mem.buffer, address, length);
  }

  function exportKind(value) {
    if (typeof value === 'function') return 'func';
    if (value instanceof WebAssembly.Memory) return 'memory';
    if (value instanceof WebAssembly.Table) return 'table';
    if (value instanceof WebAssembly.Global) return 'global';
    return 'tag';
  }

  const exportList = (ctx) => Object.entries(ctx.instance.exports).map(([name, value]) => ({ name, kind: exportKind(value) }));

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
    read: (req) => ({ data: b64encode(span(namedMemory(getInstance(req.handle), req.memory), req.address, req.length)) }),
    write(req) {
      const data = b64decode(req.data);
      span(namedMemory(getInstance(req.handle), req.memory), req.address, data.length).set(data);
      return { ok: true };
    },
    memory_size: (req) => ({ size: namedMemory(getInstance(req.handle), req.memory).buffer.byteLength }),
    exports: (req) => ({ exports: exportList(getInstance(req.handle)) }),
    close,
    kv_clear() {
      kv.clear();
      return { ok: true };
    },
    kv_items: () => ({ items: Object.fromEntries([...kv].map(([k, v]) => [b64encode(fromLatin1(k)), b64encode(v)])) }),
    ping: () => ({ ok: true }),
  };

  // One request -> one answer (never throws).
  function handle(req) {
    try {
      for (const released of req.release || []) close({ handle: released });
      const op = OPS[req.op];
      if (!op) return { error: `unknown op ${JSON.stringify(req.op)}`, kind: 'internal' };
      return op(req);
    } catch (err) {
      if (err instanceof Failure) return { error: err.message, kind: err.kind };
      if (isExit(err)) return { error: 'the guest exited while instantiating', kind: 'exit', exit_code: lastExit };
      if (isTrap(err)) return trapAnswer(err);
      return { error: `${err && err.name ? err.name + ': ' : ''}${err && err.message ? err.message : err}`, kind: 'internal' };
    }
  }

  // A line of JSON in, a line of JSON out (the process workers).
  function handleLine(line) {
    let req;
    try {
      req = JSON.parse(line);
    } catch (err) {
      return JSON.stringify({ error: `bad request: ${err.message}`, kind: 'internal' });
    }
    return JSON.stringify(handle(req));
  }

  return { handle, handleLine, memoryOf };
}
