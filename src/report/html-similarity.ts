/**
 * The comparison section of the report: per-model depth trends, and the CKA heat map over every
 * pair of layers (all models) when the run computed representation similarity.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Report } from './schema.js';
import { renderSvg, uniqueNames } from './charts.js';
import { html, trusted, type SafeHtml } from './html-escape.js';
import { fmtNumber } from './format.js';

function ckaSpec(report: Report): TopLevelSpec | null {
  const s = report.similarity;
  if (!s || s.layers.length === 0) return null;
  const names = uniqueNames(s.layers.map((l) => `${l.model} · ${l.layer}`));
  const cells: { a: string; b: string; cka: number }[] = [];
  for (let i = 0; i < names.length; i++) for (let j = 0; j < names.length; j++) if (s.matrix[i]![j] !== null) cells.push({ a: names[i]!, b: names[j]!, cka: s.matrix[i]![j]! });
  const L = names.length;
  const cell = L <= 16 ? 28 : Math.max(4, Math.floor(480 / L));
  const axis = { labelLimit: 300, ...(L > 48 ? { labels: false, ticks: false } : {}) };
  const x = { field: 'b', type: 'ordinal' as const, title: 'layer', sort: names, scale: { domain: names }, axis: { ...axis, labelAngle: -45 } };
  const y = { field: 'a', type: 'ordinal' as const, title: 'layer', sort: names, scale: { domain: names }, axis };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: cell * L,
    height: cell * L,
    data: { values: cells },
    layer: [
      { mark: { type: 'rect', aria: false }, encoding: { x, y, color: { field: 'cka', type: 'quantitative', title: 'CKA', scale: { domain: [0, 1], scheme: 'viridis', clamp: true } } } },
      ...(L <= 16
        ? [
            {
              mark: { type: 'text' as const, fontSize: 8 },
              encoding: { x, y, text: { field: 'cka', type: 'quantitative' as const, format: '.2f' }, color: { condition: { test: 'datum.cka > 0.6', value: 'black' }, value: 'white' } },
            },
          ]
        : []),
    ],
    config: { view: { stroke: null } },
  };
}

export async function comparisonSection(report: Report): Promise<SafeHtml> {
  const trends = report.models.filter((m) => m.trend);
  const spec = ckaSpec(report);
  if (report.models.length < 2 && !spec) return html``;
  const rows = trends.map(
    (m) =>
      html`<tr data-trend-model="${m.name}"><td>${m.name}</td><td>${fmtNumber(m.trend!.compressionRatioPerLayer)}</td><td>${fmtNumber(m.trend!.discriminationSlopePerLayer)}</td><td>${fmtNumber(m.trend!.probeReachesDepth)}</td><td>${fmtNumber(m.trend!.separableDepth)}</td></tr>`,
  );
  const defs = trends[0]?.trend?.definitions ?? {};
  const svg = spec ? await renderSvg(spec, 'cka-') : null;
  const s = report.similarity;
  return html`<section id="comparison">
<h2>Comparison</h2>
<table class="sortable"><thead><tr><th>model</th><th title="${defs['compressionRatioPerLayer'] ?? ''}">C ratio per layer</th><th title="${defs['discriminationSlopePerLayer'] ?? ''}">D slope per layer</th><th title="${defs['probeReachesDepth'] ?? ''}">probe ≥ 95% from depth</th><th title="${defs['separableDepth'] ?? ''}">LP-separable from depth</th></tr></thead><tbody>${rows}</tbody></table>
<p class="note">${Object.entries(defs).map(([k, v]) => `${k}: ${v}. `)}</p>
${
  svg && s
    ? html`<figure class="chart" data-chart="cka"><figcaption><h3>Representation similarity between layers</h3></figcaption>${trusted(svg)}<p class="note">${s.definition}; ${s.n} samples, the same items for every layer.</p></figure>`
    : ''
}
</section>`;
}
