/**
 * The MIME renderers of wasmlab-jupyterlab (the package's `jupyterlab.mimeExtension`): a module inspector for
 * `application/vnd.wasmlab.module.v1+json` and a run view for `application/vnd.wasmlab.run.v1+json`.
 *
 * Both are marked safe: they build DOM from the JSON with `textContent` only, so they also render outputs of
 * untrusted notebooks, and they need no kernel (a saved notebook re-renders them).
 */
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { MODULE_MIME, ModuleInspector } from './inspector';
import { RUN_MIME, RunView } from './runview';

/**
 * Rank below the HTML renderer's (50), so JupyterLab prefers these to the `text/html` fallback in the bundle.
 */
const RANK = 0;

export const moduleRendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [MODULE_MIME],
  defaultRank: RANK,
  createRenderer: options => new ModuleInspector(options)
};

export const runRendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [RUN_MIME],
  defaultRank: RANK,
  createRenderer: options => new RunView(options)
};

const extensions: IRenderMime.IExtension[] = [
  {
    id: 'wasmlab-jupyterlab:module-renderer',
    description: 'Renders wasmlab module summaries as an interactive inspector.',
    rendererFactory: moduleRendererFactory,
    rank: RANK,
    dataType: 'json'
  },
  {
    id: 'wasmlab-jupyterlab:run-renderer',
    description: 'Renders one wasmlab run: value, output, trap, timings.',
    rendererFactory: runRendererFactory,
    rank: RANK,
    dataType: 'json'
  }
];

export default extensions;
