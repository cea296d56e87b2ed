/**
 * The browser runtime's engine: a dedicated Web Worker that compiles and runs Wasm with the page's own
 * `WebAssembly`, so a guest in an endless loop blocks the worker, never the page (the page terminates the
 * worker when the run's time limit passes).
 *
 * `workerMain` is turned into the worker's source text (`workerSource()`), so it must be self-contained:
 * no imports and no references to anything outside its own body.
 *
 * Protocol (page -> worker -> page), the same fields as wasmlab's node worker so the kernel side decodes both
 * alike:
 *   {op: "run", id, sha, wasm?(base64), invoke|null, args, argv, env, stdin(base64), max_output}
 *     -> {id, result, stdout, stderr, exit_code, timings, compile_ms} or {id, trap, frames, ...}
 *        or {id, error, kind}   (kind: "need_module", "compile", "link", "usage", "internal")
 *   {op: "instantiate", id, sha, wasm?, argv, env, stdin, max_output} -> {id, handle, exports, timings, ...}
 *   {op: "call", id, handle, name, args} -> like "run"; {op: "read", handle, address, length} -> {data};
 *   {op: "write", handle, address, data} -> {ok}; {op: "memory_size", handle} -> {size}; {op: "close", handle}
 *   (a handle this worker does not hold -> {error, kind: "lost"}: the worker was restarted since);
 *   any request may carry "release": handles the kernel dropped without closing them
 *   {op: "kv_clear"} -> {id, ok}
 * Values: i32/f32/f64 as numbers; i64 as decimal strings (BigInt here); NaN, infinities and -0 as
 * {"f": "nan"|"inf"|"-inf"|"-0"}. Timings are milliseconds from `performance.now()` inside the worker.
 */
export function workerMain(): void {
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const scope: any = self as any;
  const modules = new Map<string, { module: WebAssembly.Module; compileMs: number; fresh: boolean }>();
  const MAX_MODULES = 16;
  const kv = new Map<string, Uint8Array>();
  const kept = new Map<number, { instance: WebAssembly.Instance; ctx: any }>();
  // Handles never repeat across worker restarts: a lost instance's handle must not name a new one.
  let nextHandle = Math.floor(Math.random() * 2 ** 40) * 1024 + 1;
  const ERRNO = { SUCCESS: 0, BADF: 8, INVAL: 28, NOSYS: 52, SPIPE: 70 };
  const WASI_MODULES = ['wasi_snapshot_preview1', 'wasi_unstable'];
  const encoder = new TextEncoder();

  class Failure extends Error {
    kind: string;
    constructor(message: string, kind: string) {
      super(message);
      this.kind = kind;
    }
  }

  class Exit {
    code: number;
    constructor(code: number) {
      this.code = code;
    }
  }

  class Output {
    cap: number;
    chunks: Uint8Array[] = [];
    size = 0;
    dropped = 0;
    constructor(cap: number) {
      this.cap = cap;
    }
    push(bytes: Uint8Array): void {
      const room = this.cap - this.size;
      if (room <= 0) {
        this.dropped += bytes.length;
        return;
      }
      const kept = bytes.length <= room ? bytes : bytes.subarray(0, room);
      this.chunks.push(kept.slice()); // a copy: guest memory changes afterwards
      this.size += kept.length;
      this.dropped += bytes.length - kept.length;
    }
    take(): string {
      const all = new Uint8Array(this.size);
      let at = 0;
      for (const c of this.chunks) {
        all.set(c, at);
        at += c.length;
      }
      this.chunks = [];
      this.size = 0;
      return toBase64(all);
    }
  }

  function toBase64(bytes: Uint8Array): string {
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 0x8000)));
    }
    return btoa(text);
  }

  function fromBase64(text: string): Uint8Array {
    const raw = atob(text || '');
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out;
  }

  function decodeValue(v: any): any {
    if (typeof v === 'string') {
      return BigInt(v);
    }
    if (v !== null && typeof v === 'object' && 'f' in v) {
      return ({ nan: NaN, inf: Infinity, '-inf': -Infinity, '-0': -0 } as any)[v.f];
    }
    return v;
  }

  function encodeValue(v: any): any {
    if (typeof v === 'bigint') {
      return v.toString();
    }
    if (typeof v === 'number') {
      if (Number.isNaN(v)) {
        return { f: 'nan' };
      }
      if (v === Infinity) {
        return { f: 'inf' };
      }
      if (v === -Infinity) {
        return { f: '-inf' };
      }
      if (Object.is(v, -0)) {
        return { f: '-0' };
      }
      return v;
    }
    if (v === null || v === undefined) {
      return null;
    }
    if (typeof v === 'function') {
      return { ref: `funcref ${v.name}` };
    }
    return { ref: `externref ${typeof v}` };
  }

  // ------------------------------------------------------------------------------------------ guest memory
  function memoryOf(ctx: any): WebAssembly.Memory {
    if (!ctx.memory) {
      throw new Failure('the guest exports no memory named "memory"', 'link');
    }
    return ctx.memory;
  }

  function guestBytes(ctx: any, ptr: number, len: number): Uint8Array {
    const mem = memoryOf(ctx);
    if (ptr < 0 || len < 0 || ptr + len > mem.buffer.byteLength) {
      throw new WebAssembly.RuntimeError('memory access out of bounds');
    }
    return new Uint8Array(mem.buffer, ptr, len);
  }

  function view(ctx: any): DataView {
    return new DataView(memoryOf(ctx).buffer);
  }

  // ------------------------------------------------------------------------------------------ WASI preview 1
  // Enough for commands: args, environ, fd_write to stdout/stderr, fd_read from stdin, clocks, random,
  // proc_exit. No files (no preopens: fd_prestat_get says EBADF); anything else answers ENOSYS.
  function wasiImports(ctx: any, req: any): any {
    const argv: string[] = req.argv && req.argv.length ? req.argv : ['main.wasm'];
    const env: string[] = Object.entries(req.env || {}).map(([k, v]) => `${k}=${v}`);
    const stdin = fromBase64(req.stdin || '');
    let stdinPos = 0;
    const closed = new Set<number>();

    const strings = (list: string[], ptrs: number, buf: number): number => {
      const dv = view(ctx);
      let at = buf;
      list.forEach((s, i) => {
        const bytes = encoder.encode(s + '\0');
        dv.setUint32(ptrs + 4 * i, at, true);
        guestBytes(ctx, at, bytes.length).set(bytes);
        at += bytes.length;
      });
      return ERRNO.SUCCESS;
    };
    const sizes = (list: string[], countPtr: number, sizePtr: number): number => {
      const dv = view(ctx);
      dv.setUint32(countPtr, list.length, true);
      dv.setUint32(sizePtr, list.reduce((n, s) => n + encoder.encode(s).length + 1, 0), true);
      return ERRNO.SUCCESS;
    };
    const iovecs = (iovs: number, count: number): [number, number][] => {
      const dv = view(ctx);
      const list: [number, number][] = [];
      for (let i = 0; i < count; i++) {
        list.push([dv.getUint32(iovs + 8 * i, true), dv.getUint32(iovs + 8 * i + 4, true)]);
      }
      return list;
    };
    const now = (clock: number): bigint => {
      if (clock === 0) {
        return BigInt(Date.now()) * 1000000n; // realtime
      }
      return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)); // monotonic, process, thread
    };

    const functions: Record<string, (...a: any[]) => any> = {
      args_get: (ptrs: number, buf: number) => strings(argv, ptrs, buf),
      args_sizes_get: (countPtr: number, sizePtr: number) => sizes(argv, countPtr, sizePtr),
      environ_get: (ptrs: number, buf: number) => strings(env, ptrs, buf),
      environ_sizes_get: (countPtr: number, sizePtr: number) => sizes(env, countPtr, sizePtr),
      fd_write(fd: number, iovs: number, count: number, nwritten: number) {
        if ((fd !== 1 && fd !== 2) || closed.has(fd)) {
          return ERRNO.BADF;
        }
        const out = fd === 1 ? ctx.stdout : ctx.stderr;
        let total = 0;
        for (const [ptr, len] of iovecs(iovs, count)) {
          out.push(guestBytes(ctx, ptr, len));
          total += len;
        }
        view(ctx).setUint32(nwritten, total, true);
        return ERRNO.SUCCESS;
      },
      fd_read(fd: number, iovs: number, count: number, nread: number) {
        if (fd !== 0 || closed.has(fd)) {
          return ERRNO.BADF;
        }
        let total = 0;
        for (const [ptr, len] of iovecs(iovs, count)) {
          const n = Math.min(len, stdin.length - stdinPos);
          guestBytes(ctx, ptr, n).set(stdin.subarray(stdinPos, stdinPos + n));
          stdinPos += n;
          total += n;
          if (n < len) {
            break;
          }
        }
        view(ctx).setUint32(nread, total, true);
        return ERRNO.SUCCESS;
      },
      fd_close(fd: number) {
        if (fd > 2 || closed.has(fd)) {
          return ERRNO.BADF;
        }
        closed.add(fd);
        return ERRNO.SUCCESS;
      },
      fd_fdstat_get(fd: number, ptr: number) {
        if (fd > 2 || closed.has(fd)) {
          return ERRNO.BADF;
        }
        const dv = view(ctx);
        dv.setUint8(ptr, 2); // filetype: character device
        dv.setUint16(ptr + 2, 0, true); // flags
        dv.setBigUint64(ptr + 8, fd === 0 ? 0x2n : 0x40n, true); // rights base: fd_read / fd_write
        dv.setBigUint64(ptr + 16, 0n, true);
        return ERRNO.SUCCESS;
      },
      fd_fdstat_set_flags: (fd: number) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
      fd_prestat_get: () => ERRNO.BADF, // no preopened directories
      fd_prestat_dir_name: () => ERRNO.BADF,
      fd_seek: (fd: number) => (fd > 2 ? ERRNO.BADF : ERRNO.SPIPE),
      fd_tell: (fd: number) => (fd > 2 ? ERRNO.BADF : ERRNO.SPIPE),
      fd_sync: (fd: number) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
      fd_datasync: (fd: number) => (fd > 2 ? ERRNO.BADF : ERRNO.SUCCESS),
      clock_res_get(clock: number, ptr: number) {
        view(ctx).setBigUint64(ptr, clock === 0 ? 1000000n : 1000n, true);
        return clock >= 0 && clock <= 3 ? ERRNO.SUCCESS : ERRNO.INVAL;
      },
      clock_time_get(clock: number, _precision: bigint, ptr: number) {
        if (clock < 0 || clock > 3) {
          return ERRNO.INVAL;
        }
        view(ctx).setBigUint64(ptr, now(clock), true);
        return ERRNO.SUCCESS;
      },
      random_get(ptr: number, len: number) {
        const target = guestBytes(ctx, ptr, len);
        for (let at = 0; at < len; at += 65536) {
          crypto.getRandomValues(target.subarray(at, Math.min(len, at + 65536)));
        }
        return ERRNO.SUCCESS;
      },
      sched_yield: () => ERRNO.SUCCESS,
      proc_exit(code: number) {
        ctx.exitCode = code;
        throw new Exit(code);
      },
      proc_raise: () => ERRNO.NOSYS
    };
    const enosys = () => ERRNO.NOSYS;
    // Any other preview 1 function links and answers ENOSYS.
    return new Proxy(functions, {
      get: (target, name) => (typeof name === 'string' && name in target ? target[name] : enosys)
    });
  }

  // The built-in `wasmlab` host module (log, now_ms, random, kv_get, kv_set); the store lives in this
  // worker, so it is emptied when a time limit restarts the worker.
  function builtinHost(ctx: any): any {
    const latin1 = (bytes: Uint8Array) => String.fromCharCode.apply(null, Array.from(bytes));
    return {
      log(ptr: number, len: number) {
        ctx.stderr.push(guestBytes(ctx, ptr >>> 0, len >>> 0));
        ctx.stderr.push(encoder.encode('\n'));
      },
      now_ms: () => performance.now(),
      random: () => Math.random(),
      kv_get(keyPtr: number, keyLen: number, outPtr: number, outCap: number) {
        const value = kv.get(latin1(guestBytes(ctx, keyPtr >>> 0, keyLen >>> 0)));
        if (value === undefined) {
          return -1;
        }
        const n = Math.min(value.length, outCap >>> 0);
        guestBytes(ctx, outPtr >>> 0, n).set(value.subarray(0, n));
        return value.length;
      },
      kv_set(keyPtr: number, keyLen: number, valPtr: number, valLen: number) {
        kv.set(latin1(guestBytes(ctx, keyPtr >>> 0, keyLen >>> 0)), guestBytes(ctx, valPtr >>> 0, valLen >>> 0).slice());
      }
    };
  }

  // -------------------------------------------------------------------------------------------- traps
  // V8: "at fib (wasm://wasm/1234abcd:wasm-function[3]:0x5a)"; SpiderMonkey: "fib@http://...:wasm-function[3]:0x5a".
  const FRAME = /(?:at (?:(\S+?) \()?|^(\S*?)@)?[^\s@]*?wasm-function\[(\d+)\]:0x([0-9a-f]+)/;

  function isTrap(err: any): boolean {
    return (
      err instanceof WebAssembly.RuntimeError ||
      ((err instanceof RangeError || (err && err.name === 'InternalError')) &&
        /call stack|too much recursion/i.test(err.message))
    );
  }

  function trapAnswer(err: any): any {
    if (err instanceof Failure || err instanceof Exit) {
      throw err;
    }
    if (!isTrap(err)) {
      if (err instanceof TypeError) {
        throw new Failure(err.message, 'usage');
      }
      throw err;
    }
    const frames: any[] = [];
    for (const line of String(err.stack || '').split('\n')) {
      const m = FRAME.exec(line.trim());
      if (m) {
        const name = m[1] || m[2] || null;
        frames.push({ name: name && !name.startsWith('wasm://') ? name : null, index: Number(m[3]), offset: parseInt(m[4], 16) });
      }
    }
    return { trap: err.message, frames };
  }

  // ----------------------------------------------------------------------------------------------- running
  async function load(req: any): Promise<any> {
    let entry = modules.get(req.sha);
    if (entry) {
      return entry;
    }
    if (!req.wasm) {
      throw new Failure(`module ${String(req.sha).slice(0, 12)} is not loaded in this page`, 'need_module');
    }
    const bytes = fromBase64(req.wasm);
    const t0 = performance.now();
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(bytes);
    } catch (err: any) {
      throw new Failure(err.message, 'compile');
    }
    entry = { module, compileMs: performance.now() - t0, fresh: true };
    if (modules.size >= MAX_MODULES) {
      modules.delete(modules.keys().next().value as string);
    }
    modules.set(req.sha, entry);
    return entry;
  }

  function firstMemory(instance: WebAssembly.Instance): WebAssembly.Memory | null {
    const exported = instance.exports.memory;
    if (exported instanceof WebAssembly.Memory) {
      return exported;
    }
    for (const value of Object.values(instance.exports)) {
      if (value instanceof WebAssembly.Memory) {
        return value;
      }
    }
    return null;
  }

  function finish(ctx: any, answer: any): any {
    answer.stdout = ctx.stdout.take();
    answer.stderr = ctx.stderr.take();
    if (ctx.stdout.dropped || ctx.stderr.dropped) {
      answer.dropped = [ctx.stdout.dropped, ctx.stderr.dropped];
    }
    answer.memory_bytes = ctx.memory ? ctx.memory.buffer.byteLength : 0;
    answer.compile_ms = ctx.compileMs;
    return answer;
  }

  // Compile (or reuse) the request's module and instantiate it with fresh WASI / host contexts. `instance` is
  // null when instantiating already ended the request (a trap or an exit): `answer` is then complete.
  async function start(req: any, command: boolean): Promise<any> {
    const entry = await load(req);
    const cap = req.max_output ?? 1 << 20;
    const ctx: any = {
      stdout: new Output(cap),
      stderr: new Output(cap),
      exitCode: null,
      memory: null,
      compileMs: entry.compileMs
    };
    // As wasmtime: "compile" is what this request spent compiling (0 when the compiled module was cached).
    const answer: any = { timings: { compile: entry.fresh ? entry.compileMs : 0 } };
    entry.fresh = false;
    const importObject: any = {};
    const wanted = new Set(WebAssembly.Module.imports(entry.module).map(i => i.module));
    for (const name of wanted) {
      if (WASI_MODULES.includes(name)) {
        importObject[name] = wasiImports(ctx, req);
      } else if (name === 'wasmlab') {
        importObject[name] = builtinHost(ctx);
      }
    }
    const t0 = performance.now();
    try {
      const instance = (await WebAssembly.instantiate(entry.module, importObject)) as unknown as WebAssembly.Instance;
      ctx.memory = firstMemory(instance);
      if (!command && typeof instance.exports._initialize === 'function') {
        (instance.exports._initialize as any)();
      }
      answer.timings.instantiate = performance.now() - t0;
      return { instance, ctx, answer, entry };
    } catch (err: any) {
      answer.timings.instantiate = performance.now() - t0;
      if (err instanceof WebAssembly.LinkError) {
        throw new Failure(err.message, 'link');
      }
      if (err instanceof Exit) {
        answer.exit_code = err.code;
        return { instance: null, answer: finish(ctx, answer) };
      }
      return { instance: null, answer: finish(ctx, Object.assign(answer, trapAnswer(err))) };
    }
  }

  // Call export `name` (a command's `_start`) of an instance: the answer, with its output and timing.
  function invoke(instance: WebAssembly.Instance, ctx: any, name: string, args: any[], command: boolean, answer: any) {
    const key = command ? 'run' : 'call';
    const fn: any = instance.exports[name];
    if (typeof fn !== 'function') {
      const names = Object.keys(instance.exports).filter(n => typeof instance.exports[n] === 'function');
      if (command) {
        throw new Failure('not a WASI command: the module exports no _start; pass invoke= an export', 'usage');
      }
      throw new Failure(`no exported function ${JSON.stringify(name)}: exports ${names.join(', ') || 'none'}`, 'usage');
    }
    const values = (args || []).map(decodeValue);
    const t0 = performance.now();
    try {
      const result = fn(...values);
      answer.timings[key] = performance.now() - t0;
      if (command) {
        answer.exit_code = 0;
      } else {
        answer.result = Array.isArray(result) ? result.map(encodeValue) : encodeValue(result);
      }
    } catch (err: any) {
      answer.timings[key] = performance.now() - t0;
      if (err instanceof Exit) {
        answer.exit_code = err.code;
      } else {
        Object.assign(answer, trapAnswer(err));
      }
    }
    return finish(ctx, answer);
  }

  async function run(req: any): Promise<any> {
    const command = req.invoke === null || req.invoke === undefined;
    const started = await start(req, command);
    if (!started.instance) {
      return started.answer;
    }
    return invoke(started.instance, started.ctx, command ? '_start' : req.invoke, req.args, command, started.answer);
  }

  // Kept instances: instantiate once, then call and read or write memory many times, by handle.
  async function instantiate(req: any): Promise<any> {
    const started = await start(req, false);
    if (!started.instance) {
      return started.answer;
    }
    const handle = nextHandle++;
    kept.set(handle, { instance: started.instance, ctx: started.ctx });
    started.answer.handle = handle;
    started.answer.exports = WebAssembly.Module.exports(started.entry.module);
    return finish(started.ctx, started.answer);
  }

  function keptInstance(req: any): any {
    const entry = kept.get(req.handle);
    if (!entry) {
      throw new Failure(`instance ${req.handle} is not in this page's worker (it was restarted)`, 'lost');
    }
    return entry;
  }

  function memoryRange(ctx: any, address: number, length: number): Uint8Array {
    const memory = ctx.memory;
    if (!memory) {
      throw new Failure('the instance has no memory', 'usage');
    }
    const size = memory.buffer.byteLength;
    if (address < 0 || length < 0 || address + length > size) {
      throw new Failure(`bytes ${address}..${address + length} are outside memory (${size} bytes)`, 'usage');
    }
    return new Uint8Array(memory.buffer, address, length);
  }

  async function handle(req: any): Promise<any> {
    try {
      for (const released of req.release || []) {
        kept.delete(released); // instances the kernel dropped without closing them
      }
      switch (req.op) {
        case 'run':
          return await run(req);
        case 'instantiate':
          return await instantiate(req);
        case 'call': {
          const entry = keptInstance(req);
          return invoke(entry.instance, entry.ctx, req.name, req.args, false, { timings: {} });
        }
        case 'memory_size': {
          const memory = keptInstance(req).ctx.memory;
          return { size: memory ? memory.buffer.byteLength : 0 };
        }
        case 'read':
          return { data: toBase64(memoryRange(keptInstance(req).ctx, req.address, req.length)) };
        case 'write': {
          const data = fromBase64(req.data);
          memoryRange(keptInstance(req).ctx, req.address, data.length).set(data);
          return { ok: true };
        }
        case 'close':
          kept.delete(req.handle);
          return { ok: true };
        case 'kv_clear':
          kv.clear();
          return { ok: true };
      }
      return { error: `unknown op ${JSON.stringify(req.op)}`, kind: 'internal' };
    } catch (err: any) {
      if (err instanceof Failure) {
        return { error: err.message, kind: err.kind };
      }
      if (err instanceof Exit) {
        return { error: 'the guest exited while instantiating', kind: 'exit', exit_code: err.code };
      }
      if (isTrap(err)) {
        return trapAnswer(err);
      }
      return { error: `${err && err.name ? err.name + ': ' : ''}${err && err.message ? err.message : err}`, kind: 'internal' };
    }
  }

  let queue: Promise<unknown> = Promise.resolve();
  scope.onmessage = (event: MessageEvent) => {
    const req = event.data;
    queue = queue.then(async () => {
      const answer = await handle(req);
      answer.id = req.id;
      scope.postMessage(answer);
    });
  };
  scope.postMessage({ ready: true });
}

/**
 * The worker's source text: `workerMain` called at the top level of a classic worker script.
 */
export function workerSource(): string {
  return `(${workerMain.toString()})();\n`;
}
