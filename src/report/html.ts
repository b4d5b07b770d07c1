/**
 * report.html: one self-contained page per run. Charts are rendered here to inline SVG, styles
 * are inline, and the only script is a short inline one (table sorting, heat-map layer choice)
 * allowed by hash in the page's Content-Security-Policy, which also forbids every network
 * request: the file opens offline, from an archive or an e-mail attachment, and shows the same.
 */
import path from 'node:path';
import type { LayerReport, MetricRecord, Report } from './schema.js';
import { fmtNumber } from './format.js';
import { cellMarks, MarkLegend } from './marks.js';
import { markHtml } from './html-marks.js';
import { metricRow } from '../metrics/catalog.js';
import { writeFileAtomic } from './run-folder.js';
import { html, trusted, type HtmlPart, type SafeHtml } from './html-escape.js';
import { comparisonSection } from './html-similarity.js';
import { overviewSection, OVERVIEW_STYLE } from './html-overview.js';
import { theorySection } from './html-theory.js';
import { classesSection, CLASSES_STYLE } from './html-classes.js';
import { BASE_STYLE, renderPage } from './page.js';
import { heatmapSpec, isSmallMultiples, kappaMatrices, lineSpec, metricKeys, metricLabel, planCharts, renderSvg, uniqueNames, type KappaMatrix } from './charts.js';

export { escapeHtml } from './html-escape.js';

export interface HtmlOptions {
  /** Layer id whose pairwise κ heat map is shown first (default: the last layer that has one). */
  kappaLayer?: string;
  /** Page title (default: "layerprobe report — <dataset>"). */
  title?: string;
  /**
   * Above this many heat-map cells in total, only the chosen layer's heat map is embedded rather
   * than one per layer (1000 classes would otherwise make a page of millions of rectangles).
   */
  maxHeatmapCells?: number;
}

export const REPORT_HTML = 'report.html';

const DEFAULT_MAX_HEATMAP_CELLS = 20_000;
/** Above this many classes a heat map is unreadable (and huge); the worst pairs are listed instead. */
export const MAX_HEATMAP_CLASSES = 100;

/** Sorting: numbers by data-v, text by locale; empty cells last either way. Heat maps: one layer shown. */
const SCRIPT = `(() => {
  'use strict';
  const keyOf = (cell) => (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim());
  function sortBy(table, col, th) {
    const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    for (const h of th.parentNode.cells) h.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    const numeric = th.dataset.type === 'num';
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = keyOf(a.cells[col]);
      const y = keyOf(b.cells[col]);
      if (x === '' || y === '') return x === y ? 0 : x === '' ? 1 : -1;
      if (numeric) return dir * (Number(x) - Number(y));
      return dir * x.localeCompare(y, undefined, { numeric: true });
    });
    body.append(...rows);
  }
  for (const table of document.querySelectorAll('table.sortable')) {
    for (const [i, th] of Array.from(table.tHead.rows[0].cells).entries()) {
      th.tabIndex = 0;
      th.addEventListener('click', () => sortBy(table, i, th));
      th.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          sortBy(table, i, th);
        }
      });
    }
  }
  // Chart tooltips: every point's aria-label (layer, op, width, reduction, N, value, interval).
  const tip = document.createElement('div');
  tip.id = 'tooltip';
  tip.setAttribute('role', 'tooltip');
  tip.hidden = true;
  document.body.append(tip);
  const showTip = (el) => {
    tip.textContent = el.getAttribute('aria-label');
    tip.hidden = false;
    const r = el.getBoundingClientRect();
    const w = tip.offsetWidth;
    tip.style.left = Math.max(4, Math.min(window.scrollX + r.left + r.width / 2 - w / 2, window.scrollX + document.documentElement.clientWidth - w - 4)) + 'px';
    tip.style.top = (window.scrollY + r.top - tip.offsetHeight - 8) + 'px';
  };
  for (const el of document.querySelectorAll('figure.chart svg [aria-roledescription="point"][aria-label]')) {
    el.setAttribute('tabindex', '0');
    el.addEventListener('pointerenter', () => showTip(el));
    el.addEventListener('focus', () => showTip(el));
    el.addEventListener('pointerleave', () => { tip.hidden = true; });
    el.addEventListener('blur', () => { tip.hidden = true; });
  }
  for (const sel of document.querySelectorAll('select[data-confusion]')) {
    sel.addEventListener('change', () => {
      for (const f of sel.closest('.confusions').querySelectorAll('figure[data-key]')) f.hidden = f.dataset.key !== sel.value;
    });
  }
  for (const sel of document.querySelectorAll('select[data-heatmap]')) {
    sel.addEventListener('change', () => {
      for (const f of sel.closest('.heatmaps').querySelectorAll('figure[data-layer-index]')) f.hidden = f.dataset.layerIndex !== sel.value;
    });
  }
})();`;

const STYLE = `${BASE_STYLE}:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d0d7de; --soft: #f6f8fa; --accent: #0969da; --bad: #cf222e; --good: #1a7f37; }
h3.gap { margin-top: 20px; }
.sub { color: var(--muted); margin: 0; }
nav { margin: 12px 0 0; display: flex; gap: 16px; flex-wrap: wrap; }
nav a { color: var(--accent); text-decoration: none; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
thead th { background: var(--soft); position: sticky; top: 0; z-index: 1; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: " ↕"; color: #afb8c1; font-size: 11px; }
table.sortable thead th[aria-sort="ascending"]::after { content: " ▲"; color: var(--fg); }
table.sortable thead th[aria-sort="descending"]::after { content: " ▼"; color: var(--fg); }
.scroll table { width: max-content; min-width: 100%; }
.ci { color: var(--muted); font-size: 11px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
.heatmaps { margin-bottom: 16px; }
figure.chart.wide { grid-column: 1 / -1; }
#theory figure.chart { max-width: 640px; margin-bottom: 12px; }
td.verdict { min-width: 360px; max-width: 640px; white-space: normal; }
#tooltip { position: absolute; z-index: 10; max-width: 420px; background: #1f2328; color: #fff; font-size: 12px; line-height: 1.4; padding: 4px 8px; border-radius: 4px; pointer-events: none; }
figure.chart svg [aria-roledescription="point"] { cursor: pointer; }
figure.chart svg [aria-roledescription="point"]:focus { outline: none; stroke: #1f2328; stroke-width: 2px; }
.heatmaps select { font: inherit; margin-left: 6px; }
.gate-pass { color: var(--good); font-weight: 600; }
.gate-fail { color: var(--bad); font-weight: 600; }
.warnings { border-left: 4px solid #bf8700; background: #fff8c5; padding: 8px 16px; margin: 16px 0; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
${OVERVIEW_STYLE}
${CLASSES_STYLE}
@media print { .scroll { max-height: none; overflow: visible; } thead th { position: static; } nav { display: none; } }
`;

function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? 'n/a' : `${(v * 100).toFixed(2)}%`;
}

function secs(ms: number): string {
  return (ms / 1000).toFixed(2);
}

/** A numeric cell: shown formatted, sorted by its full-precision value. */
function numCell(v: number | null | undefined, shown?: HtmlPart): SafeHtml {
  const ok = typeof v === 'number' && Number.isFinite(v);
  return html`<td class="num" data-v="${ok ? String(v) : ''}">${shown ?? fmtNumber(v)}</td>`;
}

/** A metric cell with its marks (sampled ˢ, reduced [kd], failed + footnote); see marks.ts. */
function metricCell(r: MetricRecord | undefined, key: string, m: Report['models'][number], l: LayerReport, legend: MarkLegend): SafeHtml {
  if (!r) return html`<td class="num" data-v=""></td>`;
  const mk = cellMarks(key, r, l);
  if (mk.failed !== undefined) {
    const n = legend.footnote(m.name, l.id, key, mk.failed);
    return html`<td class="num failed" data-v="" title="failed: ${mk.failed}">failed<sup><a href="#fn-${String(n)}">${String(n)}</a></sup></td>`;
  }
  if (mk.sampled) legend.noteSampled(m.name, mk.sampled.n, mk.sampled.N);
  if (mk.dims !== undefined) legend.reduced = true;
  if (mk.unreliable) legend.unreliable = true;
  if (mk.noBetter) legend.noBetter = true;
  const marks = markHtml(mk);
  const sd = r.detail?.sd;
  const extra = r.ci
    ? html` <span class="ci">[${fmtNumber(r.ci[0])}, ${fmtNumber(r.ci[1])}]</span>`
    : typeof sd === 'number' && Number.isFinite(sd)
      ? html` <span class="ci">± ${fmtNumber(sd)}</span>`
      : '';
  return numCell(r.value, html`${fmtNumber(r.value)}${marks}${extra}`);
}

function jsonText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function kv(rows: [string, HtmlPart][]): SafeHtml {
  return html`<dl class="kv">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

function header(report: Report, title: string, hasClasses: boolean): SafeHtml {
  const ds = report.dataset;
  const n = report.models.length;
  return html`<header>
<h1>${title}</h1>
<p class="sub">${ds.name} · ${ds.selectedItems} items · ${ds.classes.length} classes · ${n} model${n === 1 ? '' : 's'} · seed ${report.seed} · ${report.createdAt}</p>
<nav><a href="#overview">Overview</a><a href="#summary">Summary</a><a href="#charts">Charts</a>${report.models.some((m) => m.layers.some((l) => l.metrics.baseline_width_ratio)) ? html`<a href="#theory">Random-layer theory</a>` : ''}${report.models.some((m) => kappaMatricesOf(report, m).length) ? html`<a href="#kappa">Pairwise κ</a>` : ''}${hasClasses ? html`<a href="#classes">Classes</a>` : ''}<a href="#definitions">Definitions</a><a href="#numbers">All numbers</a></nav>
</header>`;
}

function kappaMatricesOf(report: Report, m: Report['models'][number]): KappaMatrix[] {
  return kappaMatrices(m, report.dataset.classes.length);
}

function summary(report: Report): SafeHtml {
  const ds = report.dataset;
  const gates = report.gates ?? [];
  const models = html`<div class="scroll"><table class="sortable" id="models">
<thead><tr><th data-type="text">model</th><th data-type="text">format</th><th data-type="text">backend</th><th class="num" data-type="num">accuracy</th><th class="num" data-type="num">layers</th><th class="num" data-type="num">forward s</th><th class="num" data-type="num">reductions s</th><th class="num" data-type="num">statistics s</th><th class="num" data-type="num">metrics s</th><th class="num" data-type="num">total s</th></tr></thead>
<tbody>${report.models.map(
    (m) => html`<tr data-model="${m.name}"><td>${m.name}</td><td>${m.format}</td><td>${m.backend}</td>${numCell(m.accuracy?.value, pct(m.accuracy?.value))}${numCell(m.layers.length)}${numCell(m.timings.forwardMs / 1000, secs(m.timings.forwardMs))}${numCell(m.timings.reduceMs / 1000, secs(m.timings.reduceMs))}${numCell(m.timings.statsMs / 1000, secs(m.timings.statsMs))}${numCell(m.timings.metricsMs / 1000, secs(m.timings.metricsMs))}${numCell(m.timings.totalMs / 1000, secs(m.timings.totalMs))}</tr>`,
  )}</tbody></table></div>`;
  const files = html`<div class="cards">${report.models.map(
    (m) => html`<div class="card"><h3>${m.name}</h3>${kv([
      ['file', html`<span class="mono">${m.path}</span>`],
      ['sha256', html`<span class="mono">${m.sha256}</span>`],
      ['format', m.format],
      ['backend', m.backend],
      ['accuracy', m.accuracy ? html`${pct(m.accuracy.value)}${typeof m.accuracy.detail?.n === 'number' ? ` of ${m.accuracy.detail.n}` : ''}` : 'n/a (the output is not one score per class)'],
      ['preprocessing', Object.keys(m.preprocess).length ? html`<span class="mono">${Object.entries(m.preprocess).map(([k, v]) => `${k}=${jsonText(v)}`).join(', ')}</span>` : 'none'],
      ['layers', m.layers.map((l, i) => html`${i ? ', ' : ''}<span class="mono">${l.id}</span>`)],
      ...(m.reductionRule ? [['reductions', m.reductionRule] as [string, string]] : []),
      ...(m.batchSize ? [['batch', `${m.batchSize} images (lowered by the memory budget, --max-memory)`] as [string, string]] : []),
    ])}</div>`,
  )}</div>`;
  const counts = html`<table><thead><tr><th>class</th><th class="num">items</th></tr></thead><tbody>${ds.classes.map(
    (c, i) => html`<tr><td>${c}</td><td class="num">${ds.perClassCounts[i] ?? ''}</td></tr>`,
  )}</tbody></table>`;
  const dataset = kv([
    ['name', ds.name],
    ['source', html`<span class="mono">${ds.ref}</span>`],
    ['classes', html`${ds.classes.length}: ${ds.classes.length <= 30 ? ds.classes.join(', ') : `${ds.classes.slice(0, 30).join(', ')}, …`}`],
    ['items measured', ds.selectedItems],
    ['items per class', html`<details><summary>${perClassSummary(ds.perClassCounts)}</summary>${counts}</details>`],
  ]);
  const run = kv([
    ['created', report.createdAt],
    ['command', html`<span class="mono">${report.command}</span>`],
    ['seed', report.seed],
    ['schema', html`<span class="mono">${report.schema}</span>`],
    ['versions', Object.entries(report.versions).map(([k, v], i) => html`${i ? ', ' : ''}${k} ${v ?? '(not installed)'}`)],
    ['options', html`<details><summary>${Object.keys(report.options).join(', ') || 'none'}</summary>${kv(Object.entries(report.options).map(([k, v]) => [k, html`<span class="mono">${jsonText(v)}</span>`]))}</details>`],
  ]);
  return html`<section id="summary">
<h2>Summary</h2>
${gates.length ? html`<div class="card" id="gates"><h3>Gates</h3><ul>${gates.map((g) => html`<li><span class="${g.passed ? 'gate-pass' : 'gate-fail'}">${g.passed ? 'PASS' : 'FAIL'}</span> <span class="mono">${g.spec}</span>: ${g.detail}</li>`)}</ul></div>` : ''}
${report.warnings.length ? html`<div class="warnings" id="warnings"><strong>Warnings</strong><ul>${report.warnings.map((w) => html`<li>${w}</li>`)}</ul></div>` : ''}
<h3>Models</h3>
${models}
<h3 class="gap">Data and run</h3>
<div class="cards"><div class="card"><h3>Dataset</h3>${dataset}</div><div class="card"><h3>Run</h3>${run}</div></div>
<h3 class="gap">Model files</h3>
${files}
</section>`;
}

function perClassSummary(counts: readonly number[]): string {
  if (counts.length === 0) return 'none';
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  return lo === hi ? `${lo} each` : `${lo}–${hi}`;
}

async function charts(report: Report): Promise<SafeHtml> {
  const ciLevel = typeof report.options.ci === 'number' ? report.options.ci : undefined;
  const plans = planCharts(report, ciLevel);
  const names = report.models.map((m) => m.name);
  const figures: SafeHtml[] = [];
  for (const c of plans) {
    const svg = await renderSvg(lineSpec(c, names), `c${figures.length}-`);
    const wide = isSmallMultiples(c, names);
    figures.push(html`<figure class="chart${wide ? ' wide' : ''}" data-chart="${c.def.id}" id="chart-${c.def.id}">
<figcaption><h3>${c.def.title}</h3>${wide ? html`<p class="note">One panel per model (too many lines for one frame); the y axis is shared.</p>` : ''}</figcaption>
${trusted(svg)}
<p class="note">${c.randomOnly ? html`<strong>${c.randomOnly}</strong> ` : ''}${c.def.note}${c.bands.length ? html` ${c.bands.map((b) => `${b[0]!.toUpperCase()}${b.slice(1)}.`).join(' ')}` : ''}</p>
</figure>`);
  }
  return html`<section id="charts">
<h2>Charts over layer depth</h2>
${figures.length ? html`<div class="charts">${figures}</div>` : html`<p class="sub">This report holds no per-layer metric values to chart.</p>`}
</section>`;
}

/** The class pairs k < l with a κ, least separable first. */
function pairsByKappa(km: KappaMatrix): [number, number, number][] {
  const pairs: [number, number, number][] = [];
  for (let i = 0; i < km.matrix.length; i++) {
    for (let j = i + 1; j < km.matrix.length; j++) {
      const v = km.matrix[i]![j];
      if (v !== null && v !== undefined) pairs.push([i, j, v]);
    }
  }
  return pairs.sort((a, b) => a[2] - b[2]);
}

function worstPair(km: KappaMatrix, classes: readonly string[]): string {
  const pairs = pairsByKappa(km);
  const w = pairs[0];
  if (!w) return '';
  const mean = pairs.reduce((s, p) => s + p[2], 0) / pairs.length;
  return `mean κ ${fmtNumber(mean)} over ${pairs.length} pairs; worst pair ${classes[w[0]]} vs ${classes[w[1]]} (κ ${fmtNumber(w[2])})`;
}

function worstPairsTable(km: KappaMatrix, classes: readonly string[], n = 25): SafeHtml {
  return html`<table class="sortable"><thead><tr><th data-type="text">class</th><th data-type="text">class</th><th class="num" data-type="num">κ</th></tr></thead><tbody>${pairsByKappa(km)
    .slice(0, n)
    .map(([i, j, v]) => html`<tr><td>${classes[i]}</td><td>${classes[j]}</td>${numCell(v)}</tr>`)}</tbody></table>`;
}

async function heatmaps(report: Report, opts: HtmlOptions): Promise<SafeHtml> {
  const classes = report.dataset.classes;
  const K = classes.length;
  const names = uniqueNames(classes);
  const blocks: SafeHtml[] = [];
  for (const [mi, m] of report.models.entries()) {
    const all = kappaMatricesOf(report, m);
    if (all.length === 0) continue;
    const chosen = all.find((k) => k.layer.id === opts.kappaLayer) ?? all[all.length - 1]!;
    const maxCells = opts.maxHeatmapCells ?? DEFAULT_MAX_HEATMAP_CELLS;
    const shown = all.length * K * K <= maxCells ? all : [chosen];
    if (K > MAX_HEATMAP_CLASSES) {
      blocks.push(html`<div class="heatmaps" data-model="${m.name}"><h3>${m.name} — layer <span class="mono">${chosen.layer.id}</span></h3>
<p class="note">${K} classes are too many for a heat map; the 25 least separable pairs of this layer (choose another with <span class="mono">layerprobe report --kappa-layer ID</span>). ${worstPair(chosen, names)}</p>${worstPairsTable(chosen, names)}</div>`);
      continue;
    }
    const figures: SafeHtml[] = [];
    for (const km of shown) {
      const svg = await renderSvg(heatmapSpec(km, classes), `h${mi}-${figures.length}-`);
      figures.push(html`<figure class="chart heatmap" data-chart="kappa-heatmap" data-model="${m.name}" data-layer="${km.layer.id}" data-layer-index="${km.layer.position}"${km === chosen ? '' : trusted(' hidden')}>
<figcaption><h3>${m.name} — layer <span class="mono">${km.layer.id}</span> (depth ${km.layer.depth.toFixed(2)})</h3></figcaption>
${trusted(svg)}
<p class="note">${worstPair(km, names)}</p>
</figure>`);
    }
    const select =
      shown.length > 1
        ? html`<label>layer<select data-heatmap aria-label="layer shown">${shown.map((km) => html`<option value="${km.layer.position}"${km === chosen ? trusted(' selected') : ''}>${km.layer.id}</option>`)}</select></label>`
        : all.length > 1
          ? html`<p class="note">Only this layer is embedded (${all.length} layers × ${K}×${K} classes is too many cells); choose another with <span class="mono">layerprobe report --kappa-layer ID</span>.</p>`
          : '';
    blocks.push(html`<div class="heatmaps" data-model="${m.name}"><h3>${m.name}</h3>${select}${figures}</div>`);
  }
  if (blocks.length === 0) return html``;
  return html`<section id="kappa">
<h2>Pairwise κ between classes</h2>
<p class="note">MD-LSM κ of every class pair (½: inseparable, 1: linearly separable), for one layer at a time.</p>
${blocks}
</section>`;
}

function definitions(report: Report): SafeHtml {
  const defs = new Map<string, Set<string>>();
  const add = (key: string, d: string) => {
    if (!defs.has(key)) defs.set(key, new Set());
    defs.get(key)!.add(d);
  };
  for (const m of report.models) {
    if (m.accuracy) add('accuracy', m.accuracy.definition);
  }
  for (const key of metricKeys(report)) {
    for (const m of report.models) for (const l of m.layers) if (l.metrics[key]) add(key, l.metrics[key]!.definition);
  }
  return html`<section id="definitions">
<h2>Definitions</h2>
<dl class="defs">${[...defs].map(
    ([key, ds]) => {
      const row = metricRow(key);
      const about = row ? `${row.basis === 'exact' ? 'exact over all N images' : 'computed on the sample buffer'}; ${row.better === 'none' ? 'no better direction' : `${row.better} is better`}; docs: ${row.docs}` : '';
      return html`<dt id="def-${key.replace(/[^A-Za-z0-9_-]/g, '_')}"><span class="mono">${key}</span>${metricLabel(key) !== key ? ` (${metricLabel(key)})` : ''}</dt>${[...ds].map((d) => html`<dd>${d}</dd>`)}${about ? html`<dd class="note">${about}</dd>` : ''}`;
    },
  )}</dl>
<p class="note">docs/metrics/ in the layerprobe documentation gives each metric's sources and derivation, under a heading named by its key.</p>
</section>`;
}

function definitionOf(report: Report, key: string): string {
  for (const m of report.models) for (const l of m.layers) if (l.metrics[key]) return l.metrics[key]!.definition;
  return '';
}

function numbers(report: Report): SafeHtml {
  const keys = metricKeys(report);
  const legend = new MarkLegend();
  const head = html`<tr><th data-type="text">model</th><th class="num" data-type="num">#</th><th class="num" data-type="num">depth</th><th data-type="text">layer</th><th data-type="text">op</th><th class="num" data-type="num">dim</th><th data-type="text">reduction</th><th class="num" data-type="num">samples</th>${keys.map(
    (k) => html`<th class="num" data-type="num" data-metric="${k}" title="${k}: ${definitionOf(report, k)}">${metricLabel(k)}</th>`,
  )}</tr>`;
  const row = (m: Report['models'][number], l: LayerReport) =>
    html`<tr data-model="${m.name}" data-layer="${l.id}" data-position="${l.position}"><td>${m.name}</td>${numCell(l.position)}${numCell(l.depth, l.depth.toFixed(2))}<td class="mono">${l.id}</td><td>${l.op}</td>${numCell(l.dim)}<td>${l.reduction}</td>${numCell(l.samples.buffered, `${l.samples.buffered} / ${l.samples.streamed}`)}${keys.map((k) => metricCell(l.metrics[k], k, m, l, legend))}</tr>`;
  const body = report.models.map((m) => m.layers.map((l) => row(m, l)));
  const marks = legend.lines(report);
  const notes = legend.failures;
  return html`<section id="numbers">
<h2>All numbers</h2>
<p class="note">One row per measured layer. Click a column header to sort; hover it for the definition. Brackets: confidence interval; ±: spread over label permutations. samples: kept for the sample-based metrics / streamed through the exact statistics.</p>
<div class="scroll"><table class="sortable" id="numbers-table"><thead>${head}</thead><tbody>${body}</tbody></table></div>
${marks.length ? html`<ul class="note marks">${marks.map((t) => html`<li>${t}</li>`)}</ul>` : ''}
${notes.length ? html`<ol class="note footnotes">${notes.map((f, i) => html`<li id="fn-${String(i + 1)}">${f.model} <span class="mono">${f.layer}</span> <span class="mono">${f.key}</span>: ${f.reason}</li>`)}</ol>` : ''}
</section>`;
}

/** The whole page as one string. */
export async function renderHtml(report: Report, opts: HtmlOptions = {}): Promise<string> {
  const title = opts.title ?? `layerprobe report — ${report.dataset.name}`;
  const version = report.versions.layerprobe;
  const generator = `layerprobe${version ? ` ${version}` : ''}`;
  const classes = classesSection(report);
  return renderPage({
    title,
    generator,
    style: STYLE,
    script: SCRIPT,
    header: header(report, title, classes.html !== ''),
    main: html`${overviewSection(report)}
${summary(report)}
${await charts(report)}
${await theorySection(report)}
${classes}
${await heatmaps(report, opts)}
${await comparisonSection(report)}
${definitions(report)}
${numbers(report)}`,
    footer: `Written by ${generator} from report.json (${report.schema}). Self-contained: no scripts, fonts or images are loaded from anywhere.`,
  });
}

/** Render and write report.html into a (run) folder atomically; returns the file's path. */
export async function writeReportHtml(dir: string, report: Report, opts: HtmlOptions = {}): Promise<string> {
  const file = path.join(dir, REPORT_HTML);
  await writeFileAtomic(file, await renderHtml(report, opts));
  return file;
}
