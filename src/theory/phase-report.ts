/**
 * Files of a phase-transition run: CSV (one row per grid cell), a self-contained HTML page with
 * the heat map of P(separable) and the D* curve as inline SVG (rendered by vega through the
 * report's renderSvg, which also checks the SVG), and the JSON.
 */
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from '../report/charts.js';
import { html, trusted } from '../report/html-escape.js';
import type { PhaseAxis, PhaseResult } from '../metrics/baseline/phase.js';

const AXIS_TITLE: Record<PhaseAxis, string> = {
  intrinsic: 'intrinsic dimension r',
  ambient: 'ambient dimension d',
  angle: 'principal angle θ (degrees)',
};

function fmt(v: number | null, digits = 2): string {
  return v === null ? '' : Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

/** value,r,d,angle_deg,width,p_separable,trials,d_star — one row per (column, width). */
export function phaseCsv(res: PhaseResult): string {
  const lines = ['value,r,d,angle_deg,width,p_separable,trials,d_star'];
  for (const c of res.columns) {
    res.widths.forEach((w, j) => {
      lines.push([c.value, c.r, c.d, c.angleDeg ?? '', w, c.probability[j]!.toFixed(4), res.trials, fmt(c.dStar, 3)].join(','));
    });
  }
  return lines.join('\n') + '\n';
}

export function heatmapSpec(res: PhaseResult): TopLevelSpec {
  const cells = res.columns.flatMap((c) => res.widths.map((w, j) => ({ value: String(c.value), width: w, p: c.probability[j]! })));
  const values = res.columns.map((c) => String(c.value));
  const widths = [...res.widths].reverse();
  const cw = Math.max(8, Math.min(30, Math.floor(600 / values.length)));
  const ch = Math.max(4, Math.min(20, Math.floor(500 / widths.length)));
  const thin = <T,>(xs: T[], max: number) => xs.filter((_, i) => i % Math.ceil(xs.length / max) === 0);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: cw * values.length,
    height: ch * widths.length,
    data: { values: cells },
    mark: { type: 'rect', aria: false },
    encoding: {
      x: { field: 'value', type: 'ordinal', title: AXIS_TITLE[res.vary], sort: values, scale: { domain: values }, axis: { values: thin(values, 25), labelAngle: 0 } },
      y: { field: 'width', type: 'ordinal', title: 'width D', sort: widths, scale: { domain: widths }, axis: { values: thin(widths, 25) } },
      color: { field: 'p', type: 'quantitative', title: 'P(separable)', scale: { domain: [0, 1], scheme: 'viridis' } },
    },
    config: { font: 'sans-serif', view: { stroke: null } },
  } as TopLevelSpec;
}

/** D* per column, with r(r+1)/2 and r(r+1) for reference (log-log when r varies). */
export function dStarSpec(res: PhaseResult): TopLevelSpec | null {
  const pts = res.columns.filter((c) => c.dStar !== null);
  if (pts.length === 0) return null;
  const rows: { x: number; D: number; series: string }[] = [];
  for (const c of res.columns) {
    if (c.dStar !== null) rows.push({ x: c.value, D: c.dStar, series: 'D* (measured)' });
    if (res.activation === 'quadratic' || res.vary === 'intrinsic') {
      rows.push({ x: c.value, D: c.featureDim, series: 'r(r+1)/2' });
      if (c.sureWidth !== null) rows.push({ x: c.value, D: c.sureWidth, series: 'r(r+1)' });
    }
  }
  const log = res.vary === 'intrinsic';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 280,
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: AXIS_TITLE[res.vary], scale: log ? { type: 'log', nice: false } : { zero: false } },
      y: { field: 'D', type: 'quantitative', title: 'width D', scale: log ? { type: 'log' } : { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
      strokeDash: { field: 'series', type: 'nominal', title: null },
    },
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

export async function phaseHtml(res: PhaseResult): Promise<string> {
  const heat = await renderSvg(heatmapSpec(res), 'heat-');
  const dsSpec = dStarSpec(res);
  const curve = dsSpec ? await renderSvg(dsSpec, 'dstar-') : null;
  const rows = res.columns.map(
    (c) => html`<tr><td>${c.value}</td><td>${c.r}</td><td>${c.d}</td><td>${c.angleDeg ?? '—'}</td><td>${c.dStar === null ? c.dStarNote ?? '—' : c.dStar.toFixed(1)}</td><td>${c.featureDim}</td><td>${c.sureWidth ?? '—'}</td><td>${c.undecided}</td></tr>`,
  );
  const fit = res.fit
    ? html`<p>Fitted ln D* = ${res.fit.slope.toFixed(3)}·ln r + ${res.fit.intercept.toFixed(3)} over ${res.fit.points} values of r (R² = ${res.fit.r2.toFixed(4)}).</p>`
    : '';
  const spread = res.dStarSpread !== null ? html`<p>max/min of D* across columns: ${res.dStarSpread.toFixed(3)}.</p>` : '';
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>layerprobe theory phase: ${res.activation}, ${res.vary}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}figure{margin:1em 0}</style></head>
<body>
<h1>Random-layer phase transition</h1>
<p>${res.definition}</p>
<p>Activation <b>${res.activation}</b>, ${res.test} test, K = ${res.K}, ${res.trials} trials per column, seed ${res.seed}${
    res.samplesPerClass !== null ? html`, ${res.samplesPerClass} samples per class` : ''
  }${res.noise > 0 ? html`, noise σ = ${res.noise}` : ''}.</p>
<figure>${trusted(heat)}<figcaption>P(separable) by width D (rows) and ${AXIS_TITLE[res.vary]} (columns).</figcaption></figure>
${curve ? html`<figure>${trusted(curve)}<figcaption>50% threshold D*.</figcaption></figure>` : ''}
${fit}${spread}
<table><thead><tr><th>value</th><th>r</th><th>d</th><th>θ°</th><th>D*</th><th>r(r+1)/2</th><th>r(r+1)</th><th>undecided</th></tr></thead><tbody>${rows}</tbody></table>
</body></html>
`;
  return page.html;
}
