import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { formatMs, h } from './dom';

/**
 * The MIME type of one run (`RunResult.to_dict()` in Python).
 */
export const RUN_MIME = 'application/vnd.wasmlab.run.v1+json';

interface IRunData {
  runtime?: string;
  invoke?: string | null;
  result?: unknown;
  ok?: boolean;
  stdout?: string;
  stderr?: string;
  exit_code?: number | null;
  trap?: string | null;
  trap_frames?: string[];
  error?: string | null;
  error_kind?: string | null;
  timings?: Record<string, number>;
  fuel_used?: number | null;
}

const PHASES = ['compile', 'instantiate', 'call', 'run'];
const PHASE_COLORS: Record<string, string> = {
  compile: '#8250df',
  instantiate: '#0969da',
  call: '#1a7f37',
  run: '#1a7f37'
};

/**
 * One run: runtime, status badge, value or exit code, guest output, trap with its backtrace, and a bar of the
 * time spent per phase.
 */
export class RunView extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('wasmlab-run-view');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const r = (model.data[this._mimeType] ?? {}) as IRunData;
    const node = this.node;
    node.textContent = '';
    const [label, status] = statusOf(r);
    const head = h(
      'div',
      { className: 'wasmlab-run-head' },
      h('b', {}, r.runtime ?? '?'),
      ' ',
      h('code', {}, r.invoke ? `${r.invoke}(…)` : 'WASI command'),
      ' ',
      h('span', { className: `wasmlab-badge wasmlab-badge-${status}` }, label)
    );
    if (r.invoke && (r.ok ?? true) && !r.trap && !r.error) {
      head.appendChild(document.createTextNode(' → '));
      head.appendChild(h('code', { className: 'wasmlab-run-value' }, JSON.stringify(r.result)));
    } else if (!r.invoke && r.exit_code !== null && r.exit_code !== undefined) {
      head.appendChild(h('span', { className: 'wasmlab-muted' }, ` exit code ${r.exit_code}`));
    }
    node.appendChild(head);
    if (r.trap) {
      node.appendChild(h('div', { className: 'wasmlab-error' }, 'Trap: ', h('b', {}, r.trap)));
      if (r.trap_frames && r.trap_frames.length) {
        const list = h('ol', { className: 'wasmlab-frames', start: 0 } as any);
        for (const frame of r.trap_frames) {
          list.appendChild(h('li', {}, h('code', {}, frame)));
        }
        node.appendChild(list);
      }
    }
    if (r.error) {
      node.appendChild(h('div', { className: 'wasmlab-error' }, h('b', {}, r.error_kind ?? 'error'), `: ${r.error}`));
    }
    for (const [name, text] of [
      ['stdout', r.stdout],
      ['stderr', r.stderr]
    ] as [string, string | undefined][]) {
      if (text) {
        node.appendChild(h('div', { className: 'wasmlab-muted wasmlab-small' }, name));
        node.appendChild(h('pre', { className: 'wasmlab-output' }, text));
      }
    }
    const timings = r.timings ?? {};
    const phases = [...PHASES.filter(p => p in timings), ...Object.keys(timings).filter(p => !PHASES.includes(p))];
    if (phases.length) {
      const total = phases.reduce((sum, p) => sum + (timings[p] || 0), 0) || 1;
      const bar = h('div', { className: 'wasmlab-timing-bar' });
      for (const p of phases) {
        bar.appendChild(
          h('div', {
            title: `${p}: ${formatMs(timings[p])}`,
            style: { width: `${((100 * (timings[p] || 0)) / total).toFixed(2)}%`, background: PHASE_COLORS[p] ?? '#8c959f' }
          })
        );
      }
      node.appendChild(bar);
      node.appendChild(
        h('div', { className: 'wasmlab-muted wasmlab-small' }, phases.map(p => `${p} ${formatMs(timings[p])}`).join(' · '))
      );
    }
    return Promise.resolve();
  }

  private _mimeType: string;
}

function statusOf(r: IRunData): [string, string] {
  if (r.trap) {
    return [`trap: ${r.trap}`, 'bad'];
  }
  if (r.error) {
    const kind = r.error_kind ?? 'error';
    return kind.startsWith('limit:') ? [`limit: ${kind.slice(6)}`, 'warn'] : [kind, 'bad'];
  }
  if (r.exit_code !== null && r.exit_code !== undefined && r.exit_code !== 0) {
    return [`exit ${r.exit_code}`, 'bad'];
  }
  return ['ok', 'ok'];
}
