// wasmlab's driver for npm @bytecodealliance/componentize-js (StarlingMonkey): one JavaScript file -> one component.
//
//   node componentize_js.mjs NODE_MODULES WORKDIR SOURCE WIT WORLD OUT [DISABLED_FEATURE...]
//
// Two things the plain CLI does not do:
// * preview2-shim 0.26 (jco's) preopens no directory by default, so componentize-js's WIT reader (a component
//   running on that shim) cannot see the WIT files: preopen the build directory, and only that.
// * componentize-js reports a syntax error as "failed to parse JS source, encountered [1] errors": parse first
//   with the same parser (oxc-parser) and print the first error as `SyntaxError: ...` with `at FILE:LINE:COL`.
// Any failure prints one message to stderr (no stack) and exits 1.
import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, workdir, source, wit, world, out, ...disabled] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(nodeModules, path)).href);

function position(code, offset) {
  const before = code.slice(0, offset).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

try {
  const code = await readFile(join(workdir, source), "utf8");
  const oxc = await load("oxc-parser/index.js").catch(() => null);
  if (oxc) {
    const { errors } = await oxc.parseAsync(basename(source), code);
    if (errors.length) {
      const first = errors[0];
      const at = first.labels?.[0]?.start;
      console.error(`SyntaxError: ${first.message}`);
      if (at !== undefined) console.error(`    at ${basename(source)}:${position(code, at)}`);
      process.exit(1);
    }
  }
  const shim = await load("@bytecodealliance/preview2-shim/dist/nodejs/filesystem.js");
  shim._setPreopens({ [workdir]: workdir });
  const { componentize } = await load("@bytecodealliance/componentize-js/src/componentize.js");
  const { component } = await componentize({
    sourcePath: join(workdir, source),
    witPath: join(workdir, wit),
    worldName: world,
    disableFeatures: disabled,
  });
  await writeFile(join(workdir, out), component);
} catch (err) {
  console.error(String(err?.message ?? err));
  process.exit(1);
}
