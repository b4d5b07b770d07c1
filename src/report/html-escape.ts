/**
 * HTML built from a tagged template that escapes every interpolated value unless it is marked
 * as already-safe markup. Model names, layer ids, class names, paths and warnings all come from
 * files a user did not necessarily write; escaping by default is what keeps them text.
 */

export class SafeHtml {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

export type HtmlPart = string | number | SafeHtml | null | undefined | false | readonly HtmlPart[];

/** Escapes for text and for double- or single-quoted attribute values alike. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

function part(v: HtmlPart): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.html;
  if (Array.isArray(v)) return (v as readonly HtmlPart[]).map(part).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: HtmlPart[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += part(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Markup produced elsewhere and already checked (the rendered SVG charts, the page's own script). */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
