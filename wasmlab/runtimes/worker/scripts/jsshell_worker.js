// The JavaScript shells' worker (JavaScriptCore's `jsc`, SpiderMonkey's `js`): JSON lines on stdin -> JSON
// lines on stdout, the protocol of wasmcore.js (loaded before this file: `jsc wasmcore.js jsshell_worker.js`,
// `js -f wasmcore.js -f jsshell_worker.js`). Started by wasmlab/runtimes/jsc.py and spidermonkey.py.
//
// The shells are synchronous: `readline()` blocks for the next request (JSC answers "" at EOF,
// SpiderMonkey null; the parent never sends a blank line), `print()` writes one line and flushes. The parent
// enforces the time limit and the resident-memory cap by killing this process.
(function main() {
  const jsc = typeof preciseTime === 'function';
  const now = jsc ? () => preciseTime() * 1000 : () => performance.now();
  const core = wasmlabCore({ now });
  const hello = { ready: true, engine: jsc ? 'JavaScriptCore' : 'SpiderMonkey' };
  if (typeof wasmCompileMode === 'function') hello.compilers = wasmCompileMode(); // SpiderMonkey's tiers
  print(JSON.stringify(hello));
  for (;;) {
    const line = readline();
    if (!line) break;
    print(core.handleLine(line));
  }
})();
