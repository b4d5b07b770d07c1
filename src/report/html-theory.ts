/**
 * The random-layer theory in report.html (docs/metrics/baseline.md): the phase-transition inset
 * that the baseline computed per layer (P(separable) against width on the D/D*(r) axis, by the
 * code of `theory phase`), with each measured layer placed at its own D/D*(r̂), and a table of the
 * prediction with its assumptions: r̂ of the layer input, D, D*(r̂), the ratio and the verdict.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Report } from './schema.js';
import { html, trusted, type SafeHtml } from './html-escape.js';
import { fmtNumber } from './format.js';
import { renderSvg } from './charts.js';

interface InsetPoint {
  ratio: number;
  probability: number;
}

interface Inset {
  activation: string;
  r: number;
  d: number;
  trials: number;
  test: string;
  points: InsetPoint[];
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function insetOf(v: unknown): Inset | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (!Array.isArray(o.points) || typeof o.activation !== 'string' || !finite(o.r)) return undefined;
  const points = o.points.flatMap((p: unknown) => {
    const q = p as Record<string, unknown> | null;
    return q && finite(q.ratio) && finite(q.probability) && q.ratio > 0 ? [{ ratio: q.ratio, probability: q.probability }] : [];
  });
  if (points.length < 2) return undefined;
  return { activation: o.activation, r: o.r, d: finite(o.d) ? o.d : NaN, trials: finite(o.trials) ? o.trials : NaN, test: typeof o.test === 'string' ? o.test : '', points: points.sort((a, b) => a.ratio - b.ratio) };
}

/** The curve's P at a ratio: linear between grid widths, the end values outside the grid. */
export function curveAt(points: readonly InsetPoint[], x: number): number {
  if (x <= points[0]!.ratio) return points[0]!.probability;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    if (x <= b.ratio) return a.probability + ((x - a.ratio) / (b.ratio - a.ratio)) * (b.probability - a.probability);
  }
  return points[points.length - 1]!.probability;
}

interface LayerRow {
  model: string;
  layer: string;
  ratio: number | null;
  rHat: number | null;
  energy: number | null;
  width: number | null;
  inputDim: number | null;
  dStar: number | null;
  verdict: string;
  inset?: Inset;
}

function rows(report: Report): LayerRow[] {
  const out: LayerRow[] = [];
  for (const m of report.models) {
    for (const l of m.layers) {
      const r = l.metrics.baseline_width_ratio;
      if (!r) continue;
      const d = r.detail ?? {};
      const inset = insetOf(d.inset);
      out.push({
        model: m.name,
        layer: l.id,
        ratio: finite(r.value) ? r.value : null,
        rHat: finite(d.rHat) ? d.rHat : null,
        energy: finite(d.energy) ? d.energy : null,
        width: finite(d.width) ? d.width : null,
        inputDim: finite(d.inputDim) ? d.inputDim : null,
        dStar: finite(d.predictedThreshold) ? d.predictedThreshold : null,
        verdict: typeof d.verdictText === 'string' ? d.verdictText : r.failed ? `failed: ${r.failed}` : '',
        ...(inset ? { inset } : {}),
      });
    }
  }
  return out;
}

function insetSpec(curves: { label: string; points: InsetPoint[] }[], layers: { model: string; layer: string; ratio: number; p: number; tip: string }[], models: readonly string[]): TopLevelSpec {
  const xs = [...curves.flatMap((c) => c.points.map((p) => p.ratio)), ...layers.map((l) => l.ratio)];
  const x = { field: 'ratio', type: 'quantitative' as const, title: 'layer width / D*(r̂)  (log)', scale: { type: 'log' as const, domain: [Math.min(...xs) / 1.5, Math.max(...xs) * 1.5] } };
  const y = { field: 'p', type: 'quantitative' as const, title: 'P(random layer separates)', scale: { domain: [0, 1] } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 200,
    layer: [
      { mark: { type: 'rule', strokeDash: [3, 3], color: '#8c959f', aria: false }, encoding: { x: { datum: 1, type: 'quantitative' } } },
      {
        data: { values: curves.flatMap((c) => c.points.map((p) => ({ curve: c.label, ratio: p.ratio, p: p.probability }))) },
        mark: { type: 'line', color: '#59636e', strokeWidth: 2, point: { color: '#59636e', size: 16 }, aria: false },
        encoding: { x, y, detail: { field: 'curve' }, strokeDash: { field: 'curve', type: 'nominal', title: 'theory curve', legend: { orient: 'bottom', direction: 'vertical' } } },
      },
      {
        data: { values: layers },
        mark: { type: 'point', filled: true, size: 70, opacity: 0.9 },
        encoding: { x, y, color: { field: 'model', type: 'nominal', title: 'layer of model', scale: { domain: [...models] }, legend: { orient: 'bottom', direction: 'vertical' } }, description: { field: 'tip' } },
      },
    ],
    config: {
      font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', gridColor: '#eef1f4' },
      legend: { labelFontSize: 11, titleFontSize: 11, labelLimit: 320 },
      background: 'white',
    },
  } as TopLevelSpec;
}

export async function theorySection(report: Report): Promise<SafeHtml> {
  const rs = rows(report);
  if (rs.length === 0) return html``;
  const curves = new Map<string, { label: string; points: InsetPoint[] }>();
  for (const r of rs) {
    if (!r.inset) continue;
    const label = `${r.inset.activation}, r = ${r.inset.r}, d = ${r.inset.d}`;
    if (!curves.has(label)) curves.set(label, { label, points: r.inset.points });
  }
  const placed = rs.flatMap((r) => {
    if (!r.inset || r.ratio === null || r.ratio <= 0) return [];
    const p = curveAt(r.inset.points, r.ratio);
    return [{ model: r.model, layer: r.layer, ratio: r.ratio, p, tip: `${r.model} · ${r.layer} · width ${r.width ?? '?'}, D*(r̂ = ${r.rHat ?? '?'}) = ${fmtNumber(r.dStar)} · D/D* = ${fmtNumber(r.ratio)} · theory's P(separable) there ≈ ${p.toFixed(2)} · ${r.verdict}` }];
  });
  const models = report.models.map((m) => m.name);
  const chart = placed.length && curves.size ? trusted(await renderSvg(insetSpec([...curves.values()], placed, models), 'theory-')) : '';
  const first = rs.find((r) => r.inset)?.inset;
  const table = html`<div class="scroll"><table class="sortable" id="theory-table"><thead><tr><th data-type="text">model</th><th data-type="text">layer</th><th class="num" data-type="num">input dim</th><th class="num" data-type="num">r̂</th><th class="num" data-type="num">width D</th><th class="num" data-type="num">D*(r̂)</th><th class="num" data-type="num">D/D*</th><th data-type="text">verdict</th></tr></thead><tbody>${rs.map(
    (r) => html`<tr data-theory-model="${r.model}" data-theory-layer="${r.layer}"><td>${r.model}</td><td class="mono">${r.layer}</td><td class="num">${r.inputDim ?? ''}</td><td class="num" title="${r.energy !== null ? `at ${Math.round(r.energy * 100)}% energy` : ''}">${r.rHat ?? ''}</td><td class="num">${r.width ?? ''}</td><td class="num">${fmtNumber(r.dStar)}</td><td class="num">${fmtNumber(r.ratio)}</td><td class="verdict">${r.verdict}</td></tr>`,
  )}</tbody></table></div>`;
  return html`<section id="theory">
<h2>Random-layer theory: where each layer sits</h2>
<p class="note">The union-of-subspaces result: a random layer makes classes lying on subspaces of dimension r linearly separable once its width passes D*(r) (between r(r+1)/2 and r(r+1) for a quadratic layer, about twice that for ReLU). r̂ is the largest per-class rank of the layer's input at ${first ? '95%' : 'the verdict'} energy. The assumption — classes on exact low-dimensional subspaces — rarely holds for real images, and each verdict says when it does not (docs/metrics/baseline.md).</p>
${chart ? html`<figure class="chart" data-chart="theory-inset" id="chart-theory-inset"><figcaption><h3>Phase-transition inset</h3></figcaption>${chart}<p class="note">What this means: the grey curve is P(a random layer separates two union-of-subspaces classes) against width on the D/D* axis, computed by the code of <span class="mono">layerprobe theory phase</span>${first ? ` (${first.trials} trials per width, ${first.test} test)` : ''}; the dashed line is D = D*. Each coloured point is a measured layer at its own D/D*(r̂), set on that curve: left of the transition the theory expects a random layer of this width not to separate the classes. Hover a point for the layer's verdict.</p></figure>` : ''}
${table}
</section>`;
}
