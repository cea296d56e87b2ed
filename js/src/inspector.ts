import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { formatMs, formatSize, h, sectionColor } from './dom';

/**
 * The MIME type of a module summary (`Module.summary()` in Python).
 */
export const MODULE_MIME = 'application/vnd.wasmlab.module.v1+json';

/**
 * The parts of `Module.summary()` the inspector reads. Every field is optional so an older or newer summary
 * still renders what it can.
 */
export interface IModuleSummary {
  name?: string;
  size?: number;
  sha256?: string;
  kind?: string;
  imports?: { module?: string; name: string; kind: string; type: string }[];
  exports?: { name: string; kind: string; type: string }[];
  memories?: { min: number; max: number | null; shared?: boolean }[];
  tables?: { element: string; min: number; max: number | null }[];
  globals?: { type: string; mutable: boolean }[];
  start?: number | null;
  data_segments?: number;
  element_segments?: number;
  sections?: { name: string; offset: number; size: number }[];
  custom_sections?: { name: string; size: number }[];
  functions?: { index: number; name: string | null; size: number }[];
  producers?: Record<string, [string, string][]>;
  has_dwarf?: boolean;
  provenance?: Record<string, unknown>;
  size_report?: Record<string, number | null>;
}

type FunctionRow = { index: number; name: string | null; size: number };
type SortKey = 'index' | 'name' | 'size';

/**
 * Rows of the functions table shown at once before "show all".
 */
const FUNCTION_PAGE = 25;

/**
 * An interactive module inspector: identity, a section size bar, tables of exports, imports and sections,
 * and a sortable, filterable functions table. Renders from the saved output alone (no kernel needed).
 */
export class ModuleInspector extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('wasmlab-inspector');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._summary = (model.data[this._mimeType] ?? {}) as IModuleSummary;
    this._render();
    return Promise.resolve();
  }

  private _render(): void {
    const s = this._summary;
    const node = this.node;
    node.textContent = '';
    node.appendChild(this._header(s));
    node.appendChild(this._sectionsBar(s));
    node.appendChild(this._facts(s));

    const exports = s.exports ?? [];
    node.appendChild(
      this._block(
        `Exports (${exports.length})`,
        'exports',
        this._table(
          'wasmlab-exports',
          ['name', 'kind', 'type'],
          exports.map(e => [code(e.name), e.kind, code(e.type)])
        ),
        true
      )
    );
    const imports = s.imports ?? [];
    node.appendChild(
      this._block(
        `Imports (${imports.length})`,
        'imports',
        this._table(
          'wasmlab-imports',
          ['module', 'name', 'kind', 'type'],
          imports.map(i => [code(i.module ?? ''), code(i.name), i.kind, code(i.type)])
        ),
        imports.length <= 12
      )
    );
    const sections = s.sections ?? [];
    const total = s.size || 1;
    node.appendChild(
      this._block(
        `Sections (${sections.length})`,
        'sections',
        this._table(
          'wasmlab-sections',
          ['section', 'offset', 'bytes', 'share'],
          sections.map(x => [
            swatch(x.name),
            code(`0x${x.offset.toString(16)}`),
            x.size.toLocaleString(),
            `${((100 * x.size) / total).toFixed(1)}%`
          ]),
          [false, true, true, true]
        ),
        false
      )
    );
    const functions = s.functions ?? [];
    if (functions.length) {
      node.appendChild(this._block(`Functions (${functions.length})`, 'functions', this._functions(functions), true));
    }
  }

  private _header(s: IModuleSummary): HTMLElement {
    const p = (s.provenance ?? {}) as Record<string, any>;
    const bits: string[] = [];
    if (p.origin === 'compile') {
      bits.push(`${p.lang ?? ''} ${p.kind ?? ''} -${p.opt ?? ''}`.trim());
      if (p.toolchain) {
        bits.push(String(p.toolchain));
      }
      if (typeof p.compile_ms === 'number') {
        bits.push(`compiled in ${formatMs(p.compile_ms)}${p.cached ? ' (cached)' : ''}`);
      }
    } else if (p.source_name) {
      bits.push(`${p.origin} ${p.source_name}`);
    }
    return h(
      'div',
      { className: 'wasmlab-inspector-header' },
      h('span', { className: 'wasmlab-inspector-name' }, s.name ?? 'module'),
      h(
        'span',
        { className: 'wasmlab-muted' },
        ` Wasm ${s.kind ?? 'module'} · ${formatSize(s.size)} · sha256 `,
        code((s.sha256 ?? '').slice(0, 12))
      ),
      bits.length ? h('div', { className: 'wasmlab-muted wasmlab-small' }, bits.join(' · ')) : null
    );
  }

  private _sectionsBar(s: IModuleSummary): HTMLElement {
    const sections = s.sections ?? [];
    const total = s.size || 1;
    const bar = h('div', { className: 'wasmlab-section-bar' });
    const legend = h('div', { className: 'wasmlab-section-legend' });
    for (const x of sections) {
      const share = (100 * x.size) / total;
      bar.appendChild(
        h('div', {
          className: 'wasmlab-section-bar-part',
          title: `${x.name}: ${x.size.toLocaleString()} bytes at 0x${x.offset.toString(16)} (${share.toFixed(1)}%)`,
          'data-section': x.name,
          style: { width: `${share.toFixed(3)}%`, background: sectionColor(x.name) }
        })
      );
      if (share >= 1 || sections.length <= 8) {
        legend.appendChild(h('span', { className: 'wasmlab-legend-item' }, swatch(x.name), ` ${formatSize(x.size)}`));
      }
    }
    return h('div', { className: 'wasmlab-sections' }, bar, legend);
  }

  private _facts(s: IModuleSummary): HTMLElement {
    const facts: string[] = [];
    for (const m of s.memories ?? []) {
      const max = m.max === null || m.max === undefined ? 'no max' : `max ${m.max} pages`;
      facts.push(`memory ${m.min} pages (${formatSize(m.min * 65536)}), ${max}${m.shared ? ', shared' : ''}`);
    }
    for (const t of s.tables ?? []) {
      facts.push(`table ${t.element} ${t.min}${t.max !== null && t.max !== undefined ? `..${t.max}` : '..'}`);
    }
    if (s.globals && s.globals.length) {
      facts.push(`${s.globals.length} globals`);
    }
    if (s.start !== null && s.start !== undefined) {
      facts.push(`start function ${s.start}`);
    }
    if (s.data_segments) {
      facts.push(`${s.data_segments} data segments`);
    }
    if (s.has_dwarf) {
      facts.push('DWARF debug info');
    }
    for (const [field, values] of Object.entries(s.producers ?? {})) {
      facts.push(`${field}: ${values.map(v => v.join(' ')).join(', ')}`);
    }
    if (s.size_report) {
      facts.push(
        'sizes: ' +
          Object.entries(s.size_report)
            .map(([k, v]) => `${k} ${formatSize(v)}`)
            .join(', ')
      );
    }
    return h('div', { className: 'wasmlab-facts wasmlab-small' }, facts.join(' · '));
  }

  private _block(title: string, key: string, body: HTMLElement, open: boolean): HTMLElement {
    const details = h('details', { className: `wasmlab-block wasmlab-block-${key}` });
    details.open = open;
    details.appendChild(h('summary', {}, title));
    details.appendChild(body);
    return details;
  }

  private _table(className: string, headers: string[], rows: (Node | string)[][], numeric: boolean[] = []): HTMLElement {
    if (!rows.length) {
      return h('div', { className: 'wasmlab-muted' }, 'none');
    }
    const head = h('tr', {}, ...headers.map((x, i) => h('th', { className: numeric[i] ? 'wasmlab-num' : '' }, x)));
    const body = h('tbody');
    for (const row of rows) {
      body.appendChild(h('tr', {}, ...row.map((c, i) => h('td', { className: numeric[i] ? 'wasmlab-num' : '' }, c))));
    }
    return h('table', { className: `wasmlab-table ${className}` }, h('thead', {}, head), body);
  }

  private _functions(functions: FunctionRow[]): HTMLElement {
    const box = h('div', { className: 'wasmlab-functions' });
    const filter = h('input', {
      className: 'wasmlab-filter',
      type: 'search',
      placeholder: 'filter by name'
    }) as HTMLInputElement;
    filter.value = this._filter;
    const count = h('span', { className: 'wasmlab-muted wasmlab-small' });
    const table = h('table', { className: 'wasmlab-table wasmlab-functions-table' });
    const more = h('button', { className: 'wasmlab-more', type: 'button' });
    const largest = Math.max(1, ...functions.map(f => f.size));

    const headers: [SortKey | null, string][] = [
      ['index', '#'],
      ['name', 'function'],
      ['size', 'bytes'],
      [null, '']
    ];
    const draw = () => {
      const needle = this._filter.trim().toLowerCase();
      const matching = functions.filter(f => !needle || label(f).toLowerCase().includes(needle));
      const dir = this._sortDescending ? -1 : 1;
      matching.sort((a, b) => {
        const key = this._sortKey;
        const x = key === 'name' ? label(a) : a[key];
        const y = key === 'name' ? label(b) : b[key];
        return (x < y ? -1 : x > y ? 1 : 0) * dir || a.index - b.index;
      });
      const shown = this._showAll ? matching : matching.slice(0, FUNCTION_PAGE);
      table.textContent = '';
      const head = h('tr');
      for (const [key, text] of headers) {
        const arrow = key && key === this._sortKey ? (this._sortDescending ? ' ▾' : ' ▴') : '';
        const th = h('th', { className: key === 'size' || key === 'index' ? 'wasmlab-num' : '' }, text + arrow);
        if (key) {
          th.classList.add('wasmlab-sortable');
          th.setAttribute('data-sort', key);
          th.onclick = () => {
            if (this._sortKey === key) {
              this._sortDescending = !this._sortDescending;
            } else {
              this._sortKey = key;
              this._sortDescending = key === 'size';
            }
            draw();
          };
        }
        head.appendChild(th);
      }
      const body = h('tbody');
      for (const f of shown) {
        const width = Math.max(1, (120 * f.size) / largest);
        body.appendChild(
          h(
            'tr',
            {},
            h('td', { className: 'wasmlab-num' }, String(f.index)),
            h('td', {}, code(label(f))),
            h('td', { className: 'wasmlab-num' }, f.size.toLocaleString()),
            h('td', {}, h('div', { className: 'wasmlab-size-bar', style: { width: `${width.toFixed(0)}px` } }))
          )
        );
      }
      table.appendChild(h('thead', {}, head));
      table.appendChild(body);
      count.textContent = ` ${matching.length} of ${functions.length} functions`;
      more.textContent = this._showAll ? 'show fewer' : `show all ${matching.length}`;
      more.style.display = matching.length > FUNCTION_PAGE ? '' : 'none';
    };
    filter.oninput = () => {
      this._filter = filter.value;
      draw();
    };
    more.onclick = () => {
      this._showAll = !this._showAll;
      draw();
    };
    draw();
    box.appendChild(h('div', { className: 'wasmlab-toolbar' }, filter, count));
    box.appendChild(table);
    box.appendChild(more);
    return box;
  }

  private _mimeType: string;
  private _summary: IModuleSummary = {};
  private _filter = '';
  private _sortKey: SortKey = 'size';
  private _sortDescending = true;
  private _showAll = false;
}

function label(f: FunctionRow): string {
  return f.name || `func[${f.index}]`;
}

function code(text: string): HTMLElement {
  return h('code', {}, text);
}

function swatch(name: string): HTMLElement {
  return h(
    'span',
    { className: 'wasmlab-swatch-label' },
    h('span', { className: 'wasmlab-swatch', style: { background: sectionColor(name) } }),
    name
  );
}
