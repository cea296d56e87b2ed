/**
 * Small DOM helpers for the renderers. Text always goes in through `textContent`, never as HTML, so output
 * data from an untrusted notebook cannot inject markup.
 */

/**
 * Create an element with a class and children (strings become text nodes).
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { className?: string; title?: string; style?: Partial<CSSStyleDeclaration>; [key: string]: unknown } = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) {
      continue;
    }
    if (key === 'className') {
      el.className = String(value);
    } else if (key === 'style') {
      Object.assign(el.style, value);
    } else if (key.startsWith('data-') || key === 'title' || key === 'type' || key === 'placeholder') {
      el.setAttribute(key, String(value));
    } else {
      (el as unknown as Record<string, unknown>)[key] = value;
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

/**
 * Bytes as "812 B", "3.4 KiB", "1.92 MiB".
 */
export function formatSize(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) {
    return 'n/a';
  }
  if (n < 1024) {
    return `${n} B`;
  }
  if (n < 1 << 20) {
    return `${(n / 1024).toFixed(1)} KiB`;
  }
  return `${(n / (1 << 20)).toFixed(2)} MiB`;
}

/**
 * Milliseconds as "412 ms", "3.21 ms", "85.0 µs".
 */
export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return '';
  }
  if (value >= 100) {
    return `${value.toFixed(0)} ms`;
  }
  if (value >= 1) {
    return `${value.toFixed(2)} ms`;
  }
  return `${(value * 1000).toFixed(1)} µs`;
}

/**
 * Colours of the known sections (the same palette as the HTML fallback in `wasmlab.notebook.display`).
 */
export const SECTION_COLORS: Record<string, string> = {
  type: '#8250df',
  import: '#bf3989',
  function: '#0969da',
  table: '#1b7c83',
  memory: '#4d2d00',
  global: '#6e7781',
  export: '#d1242f',
  start: '#953800',
  element: '#116329',
  code: '#654ff0',
  data: '#bc4c00',
  datacount: '#57606a',
  tag: '#a40e26'
};

export function sectionColor(name: string): string {
  if (name.startsWith('custom')) {
    return '#afb8c1';
  }
  return SECTION_COLORS[name] ?? '#8c959f';
}
