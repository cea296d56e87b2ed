/**
 * The browser runtime, page side: runs Wasm sent by the kernel (`module.run("browser", ...)`) with this page's
 * own `WebAssembly`, in a Web Worker, and answers over the comm.
 *
 * Kernel (wasmlab/runtimes/worker/browser_comm.py)     this page
 *   comm_open target "wasmlab.browser"   ───────────►   registered on every notebook / console kernel
 *                                        ◄───────────   {op: "hello", client, subshell, user_agent, ...}
 *   {op: "ping", id, client}             ───────────►
 *                                        ◄───────────   {id, ok, ...}
 *   {op: "run", id, client, sha, wasm?, invoke, args, argv, env, stdin, timeout_ms, max_output}
 *                                        ───────────►   worker: compile, instantiate, call (timed inside)
 *                                        ◄───────────   {id, result | trap | exit_code, stdout, stderr, timings}
 *   {op: "instantiate" | "call" | "read" | "write" | "memory_size" | "close", id, client, handle, ...}
 *                                        ───────────►   kept instances in the same worker (see worker.ts)
 *   {op: "cancel", id, client}           ───────────►   terminate the worker
 *
 * The kernel waits for the answer while the cell that asked is still running, so the answer must not queue
 * behind that cell on the kernel's main shell: the comm's messages travel on a kernel subshell (JEP 91:
 * JupyterLab's `commsOverSubshells`, on by default; this comm turns it on if it was off), which ipykernel
 * serves on its own thread. `client` is the kernel connection's client id: with two pages on one kernel,
 * only the one the kernel picked (the first to say hello) runs anything.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import type { JSONObject } from '@lumino/coreutils';

import { workerSource } from './worker';

/**
 * The comm target the kernel opens.
 */
export const COMM_TARGET = 'wasmlab.browser';

/**
 * Protocol version, sent in the hello.
 */
export const PROTOCOL = 1;

const SUBSHELL_WAIT_MS = 5000;

/**
 * One Web Worker running guests, restarted when a run passes its time limit or is cancelled.
 */
export class WorkerEngine {
  /**
   * Run one request in the worker. Resolves with the worker's answer, or a time-limit / cancel answer after
   * the worker was terminated.
   */
  run(request: JSONObject, timeoutMs: number | null): Promise<JSONObject> {
    const id = String(request.id);
    const worker = this._ensure();
    return new Promise(resolve => {
      const job: IJob = { resolve, timer: null };
      if (timeoutMs !== null && timeoutMs > 0) {
        job.timer = window.setTimeout(() => {
          this._restart(
            `the worker was restarted after a time limit`,
            id,
            {
              error: `the guest ran past the ${(timeoutMs / 1000).toFixed(3).replace(/\.?0+$/, '')} s time limit`,
              kind: 'limit:time'
            }
          );
        }, timeoutMs);
      }
      this._jobs.set(id, job);
      worker.postMessage(request);
    });
  }

  /**
   * Stop a running request (the kernel was interrupted): terminates the worker.
   */
  cancel(id: string): void {
    if (this._jobs.has(id)) {
      this._restart('the worker was restarted after a cancel', id, { error: 'cancelled', kind: 'cancelled' });
    }
  }

  dispose(): void {
    this._restart('the page side was disposed', null, null);
    if (this._url) {
      URL.revokeObjectURL(this._url);
      this._url = null;
    }
  }

  private _ensure(): Worker {
    if (!this._worker) {
      if (!this._url) {
        this._url = URL.createObjectURL(new Blob([workerSource()], { type: 'text/javascript' }));
      }
      const worker = new Worker(this._url, { name: 'wasmlab-browser-runtime' });
      worker.onmessage = (event: MessageEvent) => {
        const answer = event.data as JSONObject;
        if (answer.ready) {
          return;
        }
        const id = String(answer.id);
        const job = this._jobs.get(id);
        if (job) {
          this._jobs.delete(id);
          if (job.timer !== null) {
            window.clearTimeout(job.timer);
          }
          job.resolve(answer);
        }
      };
      worker.onerror = (event: ErrorEvent) => {
        this._restart(`the worker failed: ${event.message}`, null, null);
      };
      this._worker = worker;
    }
    return this._worker;
  }

  private _restart(why: string, id: string | null, answer: JSONObject | null): void {
    if (this._worker) {
      this._worker.terminate();
      this._worker = null;
    }
    for (const [jobId, job] of this._jobs) {
      if (job.timer !== null) {
        window.clearTimeout(job.timer);
      }
      job.resolve(jobId === id && answer ? { ...answer, id: jobId } : { id: jobId, error: why, kind: 'lost' });
    }
    this._jobs.clear();
  }

  private _worker: Worker | null = null;
  private _url: string | null = null;
  private _jobs = new Map<string, IJob>();
}

interface IJob {
  resolve: (answer: JSONObject) => void;
  timer: number | null;
}

/**
 * The resolution of `performance.now()` here, in ms: the smallest step between two readings (browsers
 * coarsen the clock unless the page is cross-origin isolated: Chromium 100 µs, isolated 5 µs). Its workers
 * share the page's isolation, so this is the resolution of the runtime's timings too. Measured once.
 */
export function timerResolutionMs(): number {
  if (resolution === null) {
    let best = Infinity;
    const deadline = performance.now() + 20;
    for (let i = 0; i < 40 && performance.now() < deadline; i++) {
      const t0 = performance.now();
      let t1 = t0;
      while (t1 === t0) {
        t1 = performance.now();
      }
      best = Math.min(best, t1 - t0);
    }
    resolution = best;
  }
  return resolution;
}
let resolution: number | null = null;

/**
 * What the page says about itself in hello and ping answers.
 */
export function pageInfo(): JSONObject {
  const nav = navigator as Navigator & { userAgentData?: { brands?: { brand: string; version: string }[] } };
  const brands = (nav.userAgentData?.brands ?? [])
    .filter(b => !/not.?a.?brand/i.test(b.brand))
    .map(b => `${b.brand} ${b.version}`);
  return {
    user_agent: navigator.userAgent,
    browser: brands.join(', '),
    cores: navigator.hardwareConcurrency ?? null,
    cross_origin_isolated: typeof crossOriginIsolated !== 'undefined' ? crossOriginIsolated : false,
    timer_resolution_ms: timerResolutionMs(),
    protocol: PROTOCOL
  };
}

/**
 * The page side of one kernel's comm.
 */
export class BrowserRuntimeComm {
  constructor(kernel: Kernel.IKernelConnection, comm: Kernel.IComm, onDispose: () => void = () => undefined) {
    this._kernel = kernel;
    this._comm = comm;
    this._onDispose = onDispose;
    comm.onMsg = msg => this._onMsg(msg);
    comm.onClose = () => this.dispose();
  }

  /**
   * Make sure replies travel on a subshell (when the kernel has them), then say hello.
   */
  async start(): Promise<void> {
    const handler = this._comm as Kernel.IComm & {
      subshellStarted?: Promise<void>;
      subshellId?: string | null;
    };
    if (handler.commsOverSubshells === 'disabled') {
      handler.commsOverSubshells = 'perCommTarget' as Kernel.IComm['commsOverSubshells'];
    }
    await this._kernel.info;
    const kernel = this._kernel as Kernel.IKernelConnection & { supportsSubshells?: boolean };
    if (kernel.supportsSubshells && handler.subshellStarted) {
      await Promise.race([handler.subshellStarted, new Promise(r => window.setTimeout(r, SUBSHELL_WAIT_MS))]);
    }
    this._send({
      op: 'hello',
      client: this._kernel.clientId,
      subshell: handler.subshellId ?? null,
      ...pageInfo()
    });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._engine.dispose();
    this._onDispose();
  }

  private _send(data: JSONObject): void {
    if (this._disposed || this._comm.isDisposed) {
      return;
    }
    try {
      this._comm.send(data);
    } catch (err) {
      console.warn('wasmlab: cannot answer the kernel', err);
    }
  }

  private async _onMsg(msg: KernelMessage.ICommMsgMsg): Promise<void> {
    const data = msg.content.data as JSONObject;
    if (data.client && data.client !== this._kernel.clientId) {
      return; // the kernel picked another page
    }
    const id = String(data.id ?? '');
    switch (data.op) {
      case 'ping':
        this._send({ id, ok: true, client: this._kernel.clientId, ...pageInfo() });
        return;
      case 'cancel':
        this._engine.cancel(id);
        return;
      case 'run':
      case 'instantiate':
      case 'call':
      case 'read':
      case 'write':
      case 'memory_size':
      case 'close':
      case 'kv_clear': {
        const timeout = typeof data.timeout_ms === 'number' ? data.timeout_ms : null;
        // Not awaited: the kernel's next messages (cancel) must get through while a guest runs.
        void this._engine.run(data, timeout).then(answer => this._send({ ...answer, id }));
        return;
      }
      default:
        this._send({ id, error: `unknown op ${JSON.stringify(data.op)}`, kind: 'internal' });
    }
  }

  private _kernel: Kernel.IKernelConnection;
  private _comm: Kernel.IComm;
  private _engine = new WorkerEngine();
  private _disposed = false;
  private _onDispose: () => void;
}

/**
 * Register the comm target on a kernel connection (once per connection; targets survive restarts).
 */
export function registerBrowserRuntime(kernel: Kernel.IKernelConnection | null | undefined): void {
  if (!kernel || registered.has(kernel) || kernel.isDisposed) {
    return;
  }
  registered.add(kernel);
  const live = new Set<BrowserRuntimeComm>();
  const disposeAll = () => {
    live.forEach(bridge => bridge.dispose());
    live.clear();
  };
  kernel.registerCommTarget(COMM_TARGET, (comm: Kernel.IComm) => {
    // Must not wait here: the connection handles no other kernel message (such as the subshell reply the
    // comm is waiting for) until this callback returns.
    const bridge = new BrowserRuntimeComm(kernel, comm, () => live.delete(bridge));
    live.add(bridge);
    void bridge.start().catch(err => console.warn('wasmlab: browser runtime hello failed', err));
  });
  // A restart forgets the kernel's comms without closing them: stop their workers.
  kernel.statusChanged.connect((_, status) => {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      disposeAll();
    }
  });
  kernel.disposed.connect(disposeAll);
}

const registered = new WeakSet<Kernel.IKernelConnection>();
