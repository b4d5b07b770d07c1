/**
 * The shell every layerprobe HTML page shares (report.html, monitor.html, sweep.html): one file
 * that opens offline. Inline style and script are allowed by hash in a Content-Security-Policy
 * that forbids every request, so a page can neither load nor leak anything.
 */
import { createHash } from 'node:crypto';
import { html, trusted, type HtmlPart, type SafeHtml } from './html-escape.js';

/** Layout, type, tables and chart figures every page shares; a page appends its own rules. */
export const BASE_STYLE = `
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
header, main, footer { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 0 0 6px; }
.sub, .note { color: var(--muted); }
.note { font-size: 12px; margin: 4px 0 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: var(--soft); }
.scroll { overflow: auto; max-height: 80vh; border: 1px solid var(--line); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 16px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 12px; }
figure.chart svg { display: block; max-width: 100%; height: auto; margin: 4px auto; }
dl.defs dt { font-weight: 600; margin-top: 8px; }
dl.defs dd { margin: 0 0 0 16px; }
footer { color: var(--muted); font-size: 12px; padding: 32px 24px; }
`;

export interface PageParts {
  title: HtmlPart;
  /** The generator meta tag: `layerprobe <version>`. */
  generator: string;
  style: string;
  /** Inline script, if the page has one (added after the body, allowed by its hash). */
  script?: string;
  header: SafeHtml;
  main: SafeHtml;
  footer: HtmlPart;
}

function sha256Base64(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('base64');
}

export function pageCsp(style: string, script?: string): string {
  return [
    "default-src 'none'",
    script === undefined ? "script-src 'none'" : `script-src 'sha256-${sha256Base64(script)}'`,
    `style-src 'sha256-${sha256Base64(style)}'`,
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

export function renderPage(p: PageParts): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${pageCsp(p.style, p.script)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${p.generator}">
<title>${p.title}</title>
<style>${trusted(p.style)}</style>
</head>
<body>
${p.header}
<main>
${p.main}
</main>
<footer>${p.footer}</footer>
${p.script === undefined ? '' : html`<script>${trusted(p.script)}</script>`}
</body>
</html>
`.html;
}
