/**
 * wasmlab-jupyterlab: the JupyterLab side of wasmlab.
 *
 * - `wasmlab-jupyterlab:highlight`: `%%wasm LANG` cells are highlighted as LANG (and Zig is registered).
 * - `wasmlab-jupyterlab:browser-runtime`: the "browser" runtime, the page's own WebAssembly behind a comm.
 * - The MIME renderers (module inspector, run view) are the package's `mimeExtension` (see `mime.ts`).
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { IConsoleTracker } from '@jupyterlab/console';
import { INotebookTracker } from '@jupyterlab/notebook';
import type { ISessionContext } from '@jupyterlab/apputils';

import { registerBrowserRuntime } from './browser';
import { MagicHighlighter, registerLanguages } from './highlight';

export { COMM_TARGET, registerBrowserRuntime } from './browser';
export { LANGUAGE_MIMES, magicMimeType } from './highlight';

/**
 * Highlighting of `%%wasm LANG` cells.
 */
const highlightPlugin: JupyterFrontEndPlugin<void> = {
  id: 'wasmlab-jupyterlab:highlight',
  description: 'Highlights %%wasm LANG cells in their language.',
  autoStart: true,
  requires: [INotebookTracker, IEditorLanguageRegistry],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker, languages: IEditorLanguageRegistry) => {
    registerLanguages(languages);
    new MagicHighlighter(tracker);
  }
};

/**
 * The browser runtime: the comm target on the kernel of every notebook and console.
 */
const browserRuntimePlugin: JupyterFrontEndPlugin<void> = {
  id: 'wasmlab-jupyterlab:browser-runtime',
  description: 'Runs Wasm for the kernel with the browser page\'s own WebAssembly ("browser" runtime).',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IConsoleTracker],
  activate: (_app: JupyterFrontEnd, notebooks: INotebookTracker, consoles: IConsoleTracker | null) => {
    const watch = (sessionContext: ISessionContext) => {
      registerBrowserRuntime(sessionContext.session?.kernel);
      sessionContext.kernelChanged.connect((_, change) => registerBrowserRuntime(change.newValue));
    };
    notebooks.forEach(panel => watch(panel.sessionContext));
    notebooks.widgetAdded.connect((_, panel) => watch(panel.sessionContext));
    if (consoles) {
      consoles.forEach(panel => watch(panel.sessionContext));
      consoles.widgetAdded.connect((_, panel) => watch(panel.sessionContext));
    }
  }
};

const plugins: JupyterFrontEndPlugin<void>[] = [highlightPlugin, browserRuntimePlugin];

export default plugins;
