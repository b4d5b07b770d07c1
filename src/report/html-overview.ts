/**
 * The top of report.html: per model, a layer × metric heat-table (the catalogue's summary columns,
 * values printed, each cell shaded by how good it is among the model's layers in the direction
 * the catalogue's `better` gives; an excess over the random layer shaded by its verdict), the
 * honest marks of every cell, and the sentences of findings.ts under it.
 */
import type { LayerReport, MetricRecord, ModelReport, Report } from './schema.js';
import { catalogRows, type MetricRow } from '../metrics/catalog.js';
import { cellMarks, MarkLegend } from './marks.js';
import { markHtml } from './html-marks.js';
import { fmtNumber } from './format.js';
import { findings } from './findings.js';
import { html, type SafeHtml } from './html-escape.js';

/** Shade classes: q0 (worst among the layers) … q4 (best); ex-good / ex-none / ex-bad for excess. */
export const OVERVIEW_STYLE = `
.overview table td.num { min-width: 64px; }
.overview .q0 { background: #fbdcdc; } .overview .q1 { background: #fdebd3; } .overview .q2 { background: #fbf6d4; }
.overview .q3 { background: #e0f2dc; } .overview .q4 { background: #c6e9c9; }
.overview .ex-good { background: #c6e9c9; } .overview .ex-none { background: #eceff2; color: var(--muted); } .overview .ex-bad { background: #fbdcdc; }
.overview td.failed { background: #fff1f0; color: var(--bad); }
ul.findings { margin: 8px 0 16px; padding-left: 20px; }
ul.findings li { margin: 2px 0; }
`;

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The summary columns this model has values for, in catalogue order. */
function columnsOf(m: ModelReport): MetricRow[] {
  return catalogRows().filter((r) => r.short !== undefined && m.layers.some((l) => l.metrics[r.key] !== undefined));
}

/** The shade of one cell: relative to the model's other layers, or the excess's verdict. */
export function shadeOf(row: MetricRow, r: MetricRecord, column: readonly (number | undefined)[]): string {
  if (!finite(r.value)) return '';
  if (row.key.startsWith('excess_')) {
    const nb = r.detail?.noBetterThanRandom;
    if (nb === false) return 'ex-good';
    if (nb !== true) return '';
    const worse = r.ci && (row.better === 'higher' ? r.ci[1] < 0 : r.ci[0] > 0);
    return worse ? 'ex-bad' : 'ex-none';
  }
  if (row.better === 'none') return '';
  const vs = column.filter(finite);
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  if (!(hi > lo)) return '';
  const t = (r.value - lo) / (hi - lo);
  const good = row.better === 'higher' ? t : 1 - t;
  return `q${Math.min(4, Math.floor(good * 5))}`;
}

function cell(row: MetricRow, l: LayerReport, column: readonly (number | undefined)[], legend: MarkLegend, model: string): SafeHtml {
  const r = l.metrics[row.key];
  if (!r) return html`<td class="num" data-v=""></td>`;
  const mk = cellMarks(row.key, r, l);
  if (mk.failed !== undefined) return html`<td class="num failed" data-v="" title="failed: ${mk.failed}">failed</td>`;
  if (mk.sampled) legend.noteSampled(model, mk.sampled.n, mk.sampled.N);
  if (mk.dims !== undefined) legend.reduced = true;
  if (mk.unreliable) legend.unreliable = true;
  if (mk.noBetter) legend.noBetter = true;
  const ci = r.ci ? ` [${fmtNumber(r.ci[0])}, ${fmtNumber(r.ci[1])}]` : '';
  const verdict = typeof r.detail?.verdictText === 'string' ? ` — ${r.detail.verdictText}` : '';
  const shade = shadeOf(row, r, column);
  return html`<td class="num${shade ? ` ${shade}` : ''}" data-v="${finite(r.value) ? String(r.value) : ''}" data-metric="${row.key}" title="${row.label} at ${l.id}: ${fmtNumber(r.value)}${ci}${verdict}">${fmtNumber(r.value)}${markHtml(mk)}</td>`;
}

function modelBlock(report: Report, m: ModelReport): SafeHtml {
  const cols = columnsOf(m);
  const legend = new MarkLegend();
  const columns = cols.map((c) => m.layers.map((l) => l.metrics[c.key]?.value ?? undefined));
  const head = html`<tr><th data-type="text">layer</th><th data-type="text">op</th><th class="num" data-type="num">dim</th>${cols.map(
    (c) => html`<th class="num" data-type="num" data-metric="${c.key}" title="${c.legend ?? c.label}${c.better === 'none' ? ' (not shaded: no better direction)' : ''}">${c.short}</th>`,
  )}</tr>`;
  const body = m.layers.map(
    (l) => html`<tr data-overview-layer="${l.id}"><td class="mono">${l.id}</td><td>${l.op}</td><td class="num" data-v="${String(l.dim)}">${String(l.dim)}</td>${cols.map((c, ci) => cell(c, l, columns[ci]!, legend, m.name))}</tr>`,
  );
  const acc = m.accuracy?.value;
  const said = findings(m, report.dataset.classes);
  const marks = legend.lines(report);
  return html`<div class="overview" data-model="${m.name}">
<h3>${m.name}${finite(acc) ? html` <span class="sub">· output accuracy ${(acc * 100).toFixed(2)}%</span>` : ''}</h3>
<div class="scroll"><table class="sortable overview-table"><thead>${head}</thead><tbody>${body}</tbody></table></div>
${said.length ? html`<ul class="findings">${said.map((s) => html`<li>${s}</li>`)}</ul>` : ''}
${marks.length ? html`<ul class="note marks">${marks.map((t) => html`<li>${t}</li>`)}</ul>` : ''}
</div>`;
}

export function overviewSection(report: Report): SafeHtml {
  const blocks = report.models.filter((m) => m.layers.length > 0).map((m) => modelBlock(report, m));
  if (blocks.length === 0) return html``;
  return html`<section id="overview">
<h2>Overview</h2>
<p class="note">One row per measured layer, the headline metrics as columns (hover a header for its meaning, a cell for its interval). Shading ranks each column among this model's layers: green is the best layer in the metric's better direction, red the worst; columns without a better direction are not shaded. Δ columns are trained − random layer: green when the interval over random draws lies on the better side of 0, grey (≈) when it does not.</p>
${blocks}
</section>`;
}
