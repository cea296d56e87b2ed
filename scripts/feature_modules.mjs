// Writes wasmlab/data/feature_modules.json: the detection modules of npm `wasm-feature-detect` (tools/npm), each
// feature's module bytes as base64, recorded by calling the package's own detectors with WebAssembly's
// validate/Module/instantiate wrapped (so the bytes are exactly the package's). Run: node scripts/feature_modules.mjs
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tools/npm/package.json', import.meta.url));
const pkgPath = require.resolve('wasm-feature-detect/package.json');
const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
const detect = await import(new URL('dist/esm/index.js', `file://${pkgPath}`).href);

let seen = [];
const record = (bytes) => seen.push(Buffer.from(bytes).toString('base64'));
const { validate, Module, instantiate } = WebAssembly;
WebAssembly.validate = (bytes, ...rest) => (record(bytes), validate(bytes, ...rest));
WebAssembly.Module = function (bytes, ...rest) {
  record(bytes);
  return new Module(bytes, ...rest);
};
WebAssembly.instantiate = (bytes, ...rest) => (bytes instanceof Module ? 0 : record(bytes), instantiate(bytes, ...rest));

const modules = {};
for (const [name, detector] of Object.entries(detect)) {
  seen = [];
  await detector();
  if (seen.length === 1) modules[name] = seen[0];
}
const out = new URL('../wasmlab/data/feature_modules.json', import.meta.url);
fs.mkdirSync(new URL('.', out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ source: `npm wasm-feature-detect ${pkg.version}`, modules }, null, 1) + '\n');
console.log(Object.keys(modules).join(' '));
