/**
 * The shell every layerprobe HTML page shares (report.html, monitor.html, sweep.html): one file
 * that opens offline. Inline style and script are allowed by hash in a Content-Security-Policy
 * that forbids every request, so a page can neither load nor leak anything.
 */
import { createHash } from 'node:crypto';
import { html, trusted, type HtmlPart, type SafeHtml } from './html-escape.js';

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
