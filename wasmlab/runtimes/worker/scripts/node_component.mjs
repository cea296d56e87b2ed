// One run of a component on node, transpiled by `jco transpile --instantiation async` (wasmlab.runtimes.node_component):
//
//   node node_component.mjs NODE_MODULES DIR RESULT_FD REQUEST_JSON
//
// REQUEST: {"invoke": name or null, "args": [...], "argv": [...], "env": {...}, "dirs": {guest: host}}.
// WASI preview 2 comes from jco's preview2-shim (its WASIShim sandbox: only the given dirs, env and argv, no
// network). The guest's stdout and stderr are this process's; the outcome is one JSON line written to RESULT_FD:
// {"result": value} | {"exit": status} | {"trap": message} | {"error": message}, with "timings" in ms.
// A guest that calls exit ends the process with its status before any line is written.
import { readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, dir, resultFd, requestText] = process.argv.slice(2);
const request = JSON.parse(requestText);
const timings = {};
const report = (outcome) => writeSync(Number(resultFd), JSON.stringify({ ...outcome, timings }) + "\n");

const camel = (name) => name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const encode = (value) =>
  JSON.stringify(value, (_, v) => (typeof v === "bigint" ? { "$bigint": v.toString() } : v));

function lookup(instance, name) {
  // `INTERFACE#FUNC` (full or short interface name), or a world-level function; kebab-case or camelCase
  const [iface, func] = name.includes("#") ? name.split("#") : [null, name];
  let scope = instance;
  if (iface !== null) {
    const short = (key) => key.split("/").pop().split("@")[0];
    const key = Object.keys(instance).find((k) => k === iface || short(k) === iface || k === camel(iface));
    scope = key === undefined ? undefined : instance[key];
    if (scope === undefined) throw new Error(`the component exports no interface ${JSON.stringify(iface)}`);
  }
  const fn = scope[func] ?? scope[camel(func)] ?? scope[camel(func.replace(/_/g, "-"))];
  if (typeof fn !== "function") throw new Error(`the component exports no function ${JSON.stringify(name)}`);
  return fn;
}

let instance;
try {
  const load = (path) => import(pathToFileURL(join(nodeModules, path)).href);
  const { WASIShim } = await load("@bytecodealliance/preview2-shim/dist/common/instantiation.js");
  const shim = new WASIShim({
    sandbox: { preopens: request.dirs, env: request.env, args: request.argv, enableNetwork: false },
  });
  const { instantiate } = await import(pathToFileURL(join(dir, "component.js")).href);
  // core modules may compile concurrently: "compile" is the span from the first start to the last end
  let first = null;
  let last = 0;
  const compile = async (file) => {
    first ??= performance.now();
    const module = await WebAssembly.compile(readFileSync(join(dir, file)));
    last = performance.now();
    return module;
  };
  const t0 = performance.now();
  instance = await instantiate(compile, shim.getImportObject());
  timings.compile = first === null ? 0 : last - first;
  timings.instantiate = Math.max(0, performance.now() - t0 - timings.compile);
} catch (err) {
  report({ error: `could not instantiate the component: ${err?.message ?? err}` });
  process.exit(0);
}

const t1 = performance.now();
try {
  if (request.invoke === null) {
    const key = Object.keys(instance).find((k) => k === "run" || k.startsWith("wasi:cli/run"));
    if (key === undefined) throw new Error("the component is not a wasi:cli/run command: pass invoke= an export");
    let status = 0;
    try {
      instance[key].run();
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) throw err;
      status = 1; // run returned err (jco throws a ComponentError for it)
    }
    timings.run = performance.now() - t1;
    report({ exit: status });
  } else {
    const value = lookup(instance, request.invoke)(...request.args);
    timings.call = performance.now() - t1;
    writeSync(Number(resultFd), `{"result":${encode(value ?? null)},"timings":${JSON.stringify(timings)}}\n`);
  }
} catch (err) {
  timings[request.invoke === null ? "run" : "call"] = performance.now() - t1;
  if (err instanceof WebAssembly.RuntimeError) report({ trap: err.message });
  else report({ error: String(err?.message ?? err) });
}
