/**
 * Syntax highlighting for `%%wasm LANG` cells.
 *
 * JupyterLab highlights a code cell in the language of its model's `mimeType`, which the notebook sets from
 * the kernel (Python for IPython). This watches every code cell's first line: when it reads `%%wasm LANG`,
 * the cell's mimeType becomes LANG's (C, C++, Rust, Go, TypeScript for AssemblyScript, WebAssembly text,
 * Python, and Zig, which this package registers); when the magic goes away, the notebook's mimeType comes
 * back. If the notebook resets the mimeType (kernel change), the cell's language is applied again. The
 * mimeType is not saved in the notebook file.
 */
import type { ICodeCellModel, ICellModel } from '@jupyterlab/cells';
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { zig } from './zig';

/**
 * The MIME type for Zig registered with the editor language registry.
 */
export const ZIG_MIME = 'text/x-zig';

/**
 * `%%wasm` languages (and their aliases, as in `wasmlab.toolchains.ALIASES`) -> editor MIME types known to
 * JupyterLab's language registry.
 */
export const LANGUAGE_MIMES: Record<string, string> = {
  c: 'text/x-csrc',
  cpp: 'text/x-c++src',
  'c++': 'text/x-c++src',
  cxx: 'text/x-c++src',
  cc: 'text/x-c++src',
  rust: 'text/x-rustsrc',
  rs: 'text/x-rustsrc',
  go: 'text/x-go',
  golang: 'text/x-go',
  zig: ZIG_MIME,
  assemblyscript: 'application/typescript',
  as: 'application/typescript',
  ts: 'application/typescript',
  wat: 'text/webassembly',
  wast: 'text/webassembly',
  python: 'text/x-python',
  py: 'text/x-python'
};

const MAGIC = /^\s*%%wasm[ \t]+([A-Za-z0-9_+#.-]+)/;

/**
 * The editor MIME type for a cell's source, or null when it is not a `%%wasm LANG` cell of a known language.
 */
export function magicMimeType(source: string): string | null {
  const match = MAGIC.exec(source.slice(0, 200));
  if (!match) {
    return null;
  }
  return LANGUAGE_MIMES[match[1].toLowerCase()] ?? null;
}

/**
 * Register the languages JupyterLab lacks (Zig) with the editor language registry.
 */
export function registerLanguages(languages: IEditorLanguageRegistry): void {
  if (!languages.findByMIME(ZIG_MIME)) {
    languages.addLanguage({
      name: 'Zig',
      displayName: 'Zig',
      mime: ZIG_MIME,
      extensions: ['zig'],
      load: () => Promise.resolve(zig())
    });
  }
}

/**
 * Keeps `%%wasm LANG` cells of every notebook in their language.
 */
export class MagicHighlighter {
  constructor(tracker: INotebookTracker) {
    tracker.widgetAdded.connect((_, panel) => this.watchNotebook(panel));
    tracker.forEach(panel => this.watchNotebook(panel));
  }

  /**
   * Watch a notebook's cells, present and future.
   */
  watchNotebook(panel: NotebookPanel): void {
    const notebook = panel.content;
    const scan = () => {
      const model = notebook.model;
      if (!model) {
        return;
      }
      if (!this._notebooks.has(model)) {
        this._notebooks.add(model);
        model.cells.changed.connect(scan);
      }
      for (let i = 0; i < model.cells.length; i++) {
        this.watchCell(model.cells.get(i));
      }
    };
    notebook.modelChanged.connect(scan);
    void panel.context.ready.then(scan);
    scan();
  }

  /**
   * Watch one cell: its source (the magic line) and its mimeType (the notebook may reset it).
   */
  watchCell(cell: ICellModel): void {
    if (cell.type !== 'code' || this._cells.has(cell)) {
      return;
    }
    this._cells.add(cell);
    const model = cell as ICodeCellModel;
    const apply = () => this._apply(model);
    model.sharedModel.changed.connect((_, change) => {
      if (change.sourceChange) {
        apply();
      }
    });
    model.mimeTypeChanged.connect(apply);
    apply();
  }

  private _apply(model: ICodeCellModel): void {
    if (model.isDisposed) {
      return;
    }
    const wanted = magicMimeType(model.sharedModel.getSource());
    if (wanted) {
      if (model.mimeType !== wanted) {
        if (!this._base.has(model) || !Object.values(LANGUAGE_MIMES).includes(model.mimeType)) {
          this._base.set(model, model.mimeType); // what the notebook gave it, to restore later
        }
        model.mimeType = wanted;
      }
    } else if (this._base.has(model)) {
      const base = this._base.get(model)!;
      this._base.delete(model);
      if (model.mimeType !== base) {
        model.mimeType = base;
      }
    }
  }

  private _notebooks = new WeakSet<object>();
  private _cells = new WeakSet<ICellModel>();
  private _base = new WeakMap<ICodeCellModel, string>();
}
