/**
 * The report's charts: which metrics go into which chart, the vega-lite specs, and server-side
 * rendering to SVG (vega-lite → vega → SVG string, no canvas, no browser). The page must open
 * offline and show the same thing everywhere, so nothing is left for a browser to draw.
 *
 * A chart exists only when the report holds at least one finite value for it: a report without
 * MD-LSM has no κ chart rather than an empty one.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { LayerReport, MetricRecord, ModelReport, Report } from './schema.js';
import { RuntimeFailure } from '../errors.js';
import { catalogRows, metricRow, type Dash } from '../metrics/catalog.js';
import { fmtNumber } from './format.js';

export type { Dash } from '../metrics/catalog.js';

export interface SeriesDef {
  key: string;
  label: string;
  dash?: Dash;
  /** Drawn as −value (an excess whose better direction is lower, in an up-is-better chart). */
  flip?: boolean;
}

export interface ChartDef {
  id: string;
  title: string;
  yTitle: string;
  log?: boolean;
  /** Fixed y range where the metric has one (accuracies), so charts of different runs compare. */
  yDomain?: [number, number];
  series: SeriesDef[];
  /** One sentence under the chart: how to read it. */
  note: string;
  /** Draw a rule at y = 0 (the excess charts: 0 is "no better than random"). */
  zero?: boolean;
}

/**
 * The fixed charts, in page order; their series are the catalogue rows that name the chart
 * (src/metrics/catalog.ts), in catalogue order. Series absent from a report are dropped.
 */
const CHART_FRAMES: Omit<ChartDef, 'series'>[] = [
  {
    id: 'compression',
    title: 'Within-class compression C',
    yTitle: 'C = tr(Σ_W)/tr(Σ_B) (log)',
    log: true,
    note: 'Smaller is more compressed; the deep-linear theory predicts a straight (geometric) decline on this log axis.',
  },
  {
    id: 'discrimination',
    title: 'Between-class discrimination D',
    yTitle: 'D = 1 − max cos(μ_k, μ_l)',
    note: 'Larger is more separated class means; the deep-linear theory predicts linear growth with depth.',
  },
  {
    id: 'nc1',
    title: 'Neural collapse NC1',
    yTitle: 'NC1 = tr(Σ_W Σ_B⁺)/K (log)',
    log: true,
    note: 'Within-class variability relative to the class-mean spread; falls towards 0 as features collapse.',
  },
  {
    id: 'probe',
    title: 'Linear probe accuracy',
    yTitle: 'accuracy',
    yDomain: [0, 1],
    note: 'Held-out accuracy of a linear read-out of the layer (solid); dashed: the same probe on random layers of the same width and activation, with its interval over draws; dotted: the shuffled-label control, how much a probe can memorise.',
  },
  {
    id: 'rank',
    title: 'Numerical rank',
    yTitle: 'rank',
    note: 'rank95: singular values holding 95% of the singular-value sum of the centred features; effective rank: exp(entropy).',
  },
  {
    id: 'mdlsm',
    title: 'MD-LSM linear separability κ',
    yTitle: 'κ (mean over class pairs)',
    note: 'κ is ½ for inseparable and 1 for separable classes (a lower bound); the shaded null band is what maximising over directions gives on permuted labels.',
  },
  {
    id: 'mdlsm-inseparable',
    title: 'Inseparable fraction 1 − κ',
    yTitle: '1 − κ (share of point pairs misordered, log)',
    log: true,
    note: 'The share of cross-class point pairs the best direction misorders, on a log axis so that 0.01 → 0.002 shows: ½ when classes are indistinguishable, smaller is more separable; the band on held-out values is its bootstrap interval, the dotted line with its band the same procedure on permuted labels (chance), dashed: random layers of the same width.',
  },
  {
    id: 'lp',
    title: 'Exact linear separability (LP)',
    yTitle: 'fraction of class pairs separable',
    yDomain: [0, 1],
    note: 'Fraction of class pairs an LP proves strictly linearly separable.',
  },
  {
    id: 'cdnv',
    title: 'Class-distance normalised variance CDNV',
    yTitle: 'CDNV (log)',
    log: true,
    note: 'Mean over class pairs of (Var_k + Var_l)/(2‖μ_k − μ_l‖²); smaller is better separated.',
  },
  {
    id: 'nc2',
    title: 'Neural collapse NC2 (simplex geometry of the class means)',
    yTitle: 'deviation from a simplex ETF',
    note: 'All three fall to 0 when the centred class means form a simplex equiangular tight frame.',
  },
  {
    id: 'nc3',
    title: 'Neural collapse NC3 (classifier vs class means)',
    yTitle: 'NC3 = ‖W/‖W‖ − M̃ᵀ/‖M̃‖‖²',
    note: 'Measured only at the layer that feeds the classifier head, so one point per model; 0 when the head is self-dual with the centred class means.',
  },
  {
    id: 'width-ratio',
    title: 'Width against the random-layer theory',
    yTitle: 'D / D*(r̂)',
    log: true,
    note: 'Layer width over the width a random layer needs to separate classes of the estimated intrinsic rank r̂ (docs/metrics/baseline.md); above 1, width alone would suffice.',
  },
  {
    id: 'excess',
    title: 'What training added over a random layer: separability',
    yTitle: 'trained − random',
    zero: true,
    note: 'What this means: each point is the trained layer minus random Gaussian layers of the same width and activation on the same input, with the interval over the random draws shaded. Above the 0 line, training made the classes more separable than width alone; where the interval touches 0 the layer is no better than random.',
  },
  {
    id: 'excess-geometry',
    title: 'What training added over a random layer: geometry',
    yTitle: 'better than random →',
    zero: true,
    note: 'What this means: up is better for both series — C reduction is random C − trained C (how much more training compressed the classes), excess D is trained D − random D (how much further apart training put the class means). Shaded: interval over the random draws; touching 0: no better than random.',
  },
  {
    id: 'nc4',
    title: 'Neural collapse NC4',
    yTitle: 'nearest-mean ≠ prediction',
    note: 'Fraction of samples whose nearest class mean disagrees with the network’s prediction.',
  },
];

/** The chart catalogue: each frame with the catalogue rows charted in it. */
export function chartCatalogue(): ChartDef[] {
  const rows = catalogRows();
  return CHART_FRAMES.map((f) => ({
    ...f,
    series: rows.flatMap((r) => (r.chart && r.chart.id === f.id ? [{ key: r.key, label: r.chart.label, ...(r.chart.dash ? { dash: r.chart.dash } : {}), ...(r.chart.flip ? { flip: true } : {}) }] : [])),
  }));
}

/** κ-like keys the catalogue does not name still belong in the κ chart. */
function isKappaKey(key: string): boolean {
  return key.startsWith('mdlsm_') && key.includes('kappa');
}

export interface ChartPoint {
  model: string;
  layer: string;
  depth: number;
  series: string;
  value: number;
  lo?: number;
  hi?: number;
  /** The point's tooltip: layer, op, width, reduction, N, value and interval. */
  tip: string;
}

export interface ChartData {
  def: ChartDef;
  points: ChartPoint[];
  /** How the shaded bands were obtained, for the caption; empty when there are none. */
  bands: string[];
  /** Set when the chart holds only random-layer series (the trained metric was not computed). */
  randomOnly?: string;
}

/** A key's label from the metric catalogue; a key the catalogue lacks shows its own name. */
export function metricLabel(key: string): string {
  return metricRow(key)?.label ?? key;
}

/** Every metric key in the report, in catalogue order and then alphabetically. */
export function metricKeys(report: Report): string[] {
  const seen = new Set<string>();
  for (const m of report.models) for (const l of m.layers) for (const k of Object.keys(l.metrics)) seen.add(k);
  const order = new Map<string, number>();
  // A random-layer twin `baseline_X` sorts right after X; other catalogue keys in catalogue order.
  for (const r of catalogRows()) if (!r.key.startsWith('baseline_') || !metricRow(r.key.slice('baseline_'.length))) order.set(r.key, order.size);
  return [...seen].sort((a, b) => {
    const base = (k: string) => (k.startsWith('baseline_') && !order.has(k) ? k.slice('baseline_'.length) : k);
    const oa = order.get(base(a)) ?? Infinity;
    const ob = order.get(base(b)) ?? Infinity;
    if (oa !== ob) return oa - ob;
    if (base(a) !== base(b)) return base(a) < base(b) ? -1 : 1;
    return a.startsWith('baseline_') === b.startsWith('baseline_') ? 0 : a.startsWith('baseline_') ? 1 : -1;
  });
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * The band of one value: its confidence interval when it has one; for the permutation null
 * (which reports a spread, not an interval) mean ± 2 sd.
 */
function band(r: MetricRecord): { lo: number; hi: number; how: string } | undefined {
  if (r.ci && finite(r.ci[0]) && finite(r.ci[1])) return { lo: r.ci[0], hi: r.ci[1], how: 'ci' };
  const sd = r.detail?.sd;
  if (finite(r.value) && finite(sd)) return { lo: r.value - 2 * sd, hi: r.value + 2 * sd, how: 'sd' };
  return undefined;
}

/** A point's tooltip line: where it is (layer, op, width, reduction, N) and what it says. */
function pointTip(m: ModelReport, l: LayerReport, s: SeriesDef, r: MetricRecord, value: number, b: { lo: number; hi: number; how: string } | undefined): string {
  const parts = [`${m.name} · ${l.id}`, `${l.op}, width ${l.dim}, ${l.reduction}`, `N = ${l.samples.streamed}${r.basis?.sampled ? `, computed on ${r.basis.n}` : l.samples.buffered < l.samples.streamed && metricRow(s.key)?.basis === 'sampled' ? `, computed on ${l.samples.buffered}` : ''}`];
  const iv = b ? ` ${b.how === 'ci' ? '' : '±2 sd '}[${fmtNumber(b.lo)}, ${fmtNumber(b.hi)}]` : '';
  parts.push(`${s.label}: ${fmtNumber(value)}${iv}`);
  if (r.detail?.noBetterThanRandom === true) parts.push('no better than random');
  return parts.join(' · ');
}

/**
 * The charts this report can fill. Beyond the catalogue: extra κ keys join the κ chart;
 * `baseline_X` (a random-layer baseline of X) joins the chart of X as a dotted curve, or gets a
 * chart of its own; any other metric with numbers gets a plain chart, so every metric is drawn.
 */
export function planCharts(report: Report, ciLevel?: number): ChartData[] {
  const keys = metricKeys(report);
  const defs: ChartDef[] = chartCatalogue();
  const placed = new Set([...defs.flatMap((c) => c.series.map((s) => s.key)), ...catalogRows().filter((r) => r.chart === false).map((r) => r.key)]);
  const kappa = defs.find((c) => c.id === 'mdlsm')!;
  for (const k of keys) {
    if (!placed.has(k) && isKappaKey(k)) {
      kappa.series.push({ key: k, label: k.replace(/^mdlsm_/, '').replace(/_/g, ' '), dash: 'dashed' });
      placed.add(k);
    }
  }
  for (const k of keys) {
    if (!k.startsWith('baseline_') || placed.has(k)) continue;
    const base = k.slice('baseline_'.length);
    const host = defs.find((c) => c.series.some((s) => s.key === base));
    if (host) {
      const of = host.series.find((s) => s.key === base)!;
      host.series.push({ key: k, label: `random layer: ${of.label}`, dash: 'dashed' });
    } else {
      defs.push({
        id: k,
        title: `Random-layer baseline: ${base}`,
        yTitle: base,
        series: [
          { key: base, label: 'trained layer' },
          { key: k, label: 'random layer', dash: 'dashed' },
        ],
        note: 'The same measurement on a random Gaussian layer of the same width and activation applied to the same input (docs/metrics/baseline.md).',
      });
      placed.add(base);
    }
    placed.add(k);
  }
  for (const k of keys) {
    if (placed.has(k)) continue;
    defs.push({ id: k, title: k, yTitle: k, series: [{ key: k, label: metricLabel(k) }], note: 'A metric this page has no dedicated chart for; its definition is listed below.' });
    placed.add(k);
  }
  const out: ChartData[] = [];
  for (const def of defs) {
    const points: ChartPoint[] = [];
    const hows = new Set<string>();
    const present = def.series.filter((s) => report.models.some((m) => m.layers.some((l) => l.metrics[s.key] !== undefined)));
    for (const s of present) {
      for (const m of report.models) {
        for (const l of m.layers) {
          const r = l.metrics[s.key];
          if (!r || !finite(r.value)) continue;
          const value = s.flip ? -r.value : r.value;
          if (def.log && value <= 0) continue;
          const b0 = band(r);
          const b = b0 && s.flip ? { lo: -b0.hi, hi: -b0.lo, how: b0.how } : b0;
          const p: ChartPoint = { model: m.name, layer: l.id, depth: l.depth, series: s.label, value, tip: pointTip(m, l, s, r, value, b) };
          if (b && !(def.log && b.lo <= 0)) {
            p.lo = b.lo;
            p.hi = b.hi;
            const drawLevel = r.detail?.ciLevel;
            hows.add(
              b.how !== 'ci'
                ? `shaded: mean ± 2 sd over the label permutations (${s.label})`
                : /^(baseline|excess)_/.test(s.key)
                  ? `shaded: ${finite(drawLevel) ? `${Math.round(drawLevel * 100)}% ` : ''}interval over the random-layer draws (${s.label})`
                  : `shaded: ${ciLevel !== undefined ? `${Math.round(ciLevel * 100)}% ` : ''}confidence interval (${s.label})`,
            );
          }
          points.push(p);
        }
      }
    }
    if (points.length === 0) continue;
    const used = new Set(points.map((p) => p.series));
    const series = present.filter((s) => used.has(s.label));
    // A frame that holds only random-layer series (its trained metric was not computed) says so,
    // rather than showing the random layer's curve under the trained metric's caption.
    const randomOnly = series.every((s) => s.key.startsWith('baseline_')) && def.series.some((s) => !s.key.startsWith('baseline_'))
      ? `Only the random layers are drawn here: the trained layer's ${def.series.filter((s) => !s.key.startsWith('baseline_')).map((s) => s.label).join(', ')} ${def.series.filter((s) => !s.key.startsWith('baseline_')).length === 1 ? 'was' : 'were'} not computed in this run.`
      : undefined;
    out.push({ def: { ...def, series }, points, bands: [...hows], ...(randomOnly ? { randomOnly } : {}) });
  }
  return out;
}

const DASHES: Record<Dash, number[]> = { solid: [1, 0], dashed: [6, 4], dotted: [1.5, 3] };
const SHAPES = ['circle', 'square', 'triangle-up', 'diamond', 'triangle-down', 'cross'];
const WIDTH = 380;
const HEIGHT = 220;
const SMALL_WIDTH = 250;
const SMALL_HEIGHT = 160;

const CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  view: { stroke: '#d0d7de' },
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal' as const, gridColor: '#eef1f4', domainColor: '#8c959f', tickColor: '#8c959f' },
  legend: { labelFontSize: 11, titleFontSize: 11, labelLimit: 320, symbolOpacity: 1, orient: 'bottom' as const, direction: 'vertical' as const, symbolStrokeWidth: 2 },
  background: 'white',
};

/** Above this many lines in one frame, the chart becomes small multiples: one panel per model. */
export const MAX_LINES_PER_FRAME = 4;

/** Whether a chart is drawn as one panel per model. */
export function isSmallMultiples(chart: ChartData, models: readonly string[]): boolean {
  const present = new Set(chart.points.map((p) => p.model));
  return present.size > 1 && present.size * chart.def.series.length > MAX_LINES_PER_FRAME;
}

/**
 * One model in the frame: ticks at its layers' depths, labelled with the layer names (overlapping
 * labels dropped), so a reader need not hover to know which layer a point is. Several models
 * place different layers at the same depth, so their frames keep the numeric depth axis (each
 * point's tooltip names its layer).
 */
function layerAxis(chart: ChartData): { title?: string; axis?: Record<string, unknown> } {
  if (new Set(chart.points.map((p) => p.model)).size !== 1) return {};
  const byDepth = new Map<number, string>();
  for (const p of chart.points) if (!byDepth.has(p.depth)) byDepth.set(p.depth, p.layer);
  const depths = [...byDepth.keys()].sort((a, b) => a - b);
  // A Vega expression: the tick value's index among the depths picks the name (JSON literals escape the names).
  const labelExpr = `${JSON.stringify(depths.map((d) => byDepth.get(d)!))}[indexof(${JSON.stringify(depths)}, datum.value)]`;
  return {
    title: 'layer (placed by depth: 0 = first measured, 1 = last)',
    axis: { values: depths, labelExpr, labelAngle: -40, labelAlign: 'right', labelLimit: 120, labelOverlap: 'greedy' },
  };
}

export function lineSpec(chart: ChartData, models: readonly string[]): TopLevelSpec {
  const { def } = chart;
  const facet = isSmallMultiples(chart, models);
  // A lone random-layer series still gets a legend entry, so it is never an unlabelled line.
  const multi = def.series.length > 1 || def.series.some((s) => s.key.startsWith('baseline_'));
  const seriesDomain = def.series.map((s) => s.label);
  // Several models in one frame: colour tells models apart, dash and shape the series. One model
  // (or one panel per model): the panel names it, so colour goes to the series.
  const colour =
    !facet && (models.length > 1 || !multi)
      ? { field: 'model', type: 'nominal' as const, title: 'model', scale: { domain: [...models] }, legend: models.length > 1 ? {} : null }
      : { field: 'series', type: 'nominal' as const, title: 'series', scale: { domain: seriesDomain } };
  const dash = multi
    ? { strokeDash: { field: 'series', type: 'nominal' as const, title: 'series', scale: { domain: seriesDomain, range: def.series.map((s) => DASHES[s.dash ?? 'solid']) } } }
    : {};
  const shape = multi ? { shape: { field: 'series', type: 'nominal' as const, title: 'series', scale: { domain: seriesDomain, range: def.series.map((_, i) => SHAPES[i % SHAPES.length]!) } } } : {};
  const y = {
    field: 'value',
    type: 'quantitative' as const,
    title: def.yTitle,
    scale: def.log ? { type: 'log' as const } : def.yDomain ? { domain: def.yDomain } : { zero: def.zero ?? false },
  };
  const x = { field: 'depth', type: 'quantitative' as const, title: facet ? 'layer depth (0 = first, 1 = last)' : 'layer depth (0 = first measured layer, 1 = last)', scale: { domain: [0, 1] }, ...layerAxis(chart) };
  const hasBands = chart.points.some((p) => p.lo !== undefined);
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [];
  if (def.zero) {
    layers.push({ mark: { type: 'rule', color: '#59636e', strokeWidth: 1, aria: false }, encoding: { y: { datum: 0, type: 'quantitative' } } });
  }
  if (hasBands) {
    layers.push({
      transform: [{ filter: 'isValid(datum.lo)' }],
      mark: { type: 'area', opacity: 0.16, interpolate: 'linear', aria: false },
      encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: colour, detail: { field: 'series' } },
    });
  }
  layers.push({
    mark: { type: 'line', strokeWidth: 2, aria: false },
    encoding: { x, y, color: colour, ...(multi ? dash : {}), detail: { field: 'series' }, order: { field: 'depth' } },
  });
  layers.push({
    // Each point carries its tooltip as its accessible description (aria-label in the SVG); the
    // page's script shows it on hover and focus.
    mark: { type: 'point', filled: true, size: 40, opacity: 1 },
    encoding: { x, y, color: colour, ...shape, description: { field: 'tip' } },
  });
  const data = { values: chart.points.map((p) => ({ ...p })) };
  if (facet) {
    const present = models.filter((m) => chart.points.some((p) => p.model === m));
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      data,
      facet: { field: 'model', type: 'nominal', title: null, sort: present, header: { labelFontSize: 12, labelFontWeight: 'bold' } },
      columns: Math.min(present.length, 3),
      spec: { width: SMALL_WIDTH, height: SMALL_HEIGHT, layer: layers },
      resolve: { scale: { y: 'shared' } },
      config: CONFIG,
    } as TopLevelSpec;
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height: HEIGHT,
    data,
    layer: layers,
    config: CONFIG,
  } as TopLevelSpec;
}

export interface KappaMatrix {
  model: string;
  layer: LayerReport;
  matrix: (number | null)[][];
}

/** The K×K pairwise κ of a layer, if the report carries one (`detail.matrix`, or mdlsm's `pairs`). */
export function kappaMatrix(layer: LayerReport, K: number): (number | null)[][] | undefined {
  const d = layer.metrics.mdlsm_kappa?.detail;
  const m = d?.matrix ?? d?.pairs;
  if (!Array.isArray(m) || m.length !== K || K < 2) return undefined;
  const out: (number | null)[][] = [];
  for (const row of m) {
    if (!Array.isArray(row) || row.length !== K) return undefined;
    out.push(row.map((v: unknown) => (finite(v) ? v : null)));
  }
  return out.some((r) => r.some((v) => v !== null)) ? out : undefined;
}

export function kappaMatrices(model: ModelReport, K: number): KappaMatrix[] {
  const out: KappaMatrix[] = [];
  for (const l of model.layers) {
    const m = kappaMatrix(l, K);
    if (m) out.push({ model: model.name, layer: l, matrix: m });
  }
  return out;
}

/** Class names as axis values must be distinct even when the dataset repeats a name. */
export function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const c = (seen.get(n) ?? 0) + 1;
    seen.set(n, c);
    return c === 1 ? n : `${n} (${c})`;
  });
}

export function heatmapSpec(km: KappaMatrix, classes: readonly string[]): TopLevelSpec {
  const K = classes.length;
  const names = uniqueNames(classes);
  const cells: { a: string; b: string; kappa: number }[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) if (i !== j && km.matrix[i]![j] !== null) cells.push({ a: names[i]!, b: names[j]!, kappa: km.matrix[i]![j]! });
  const cell = K <= 12 ? 30 : Math.max(4, Math.floor(420 / K));
  const axis = { labelLimit: 90, ...(K > 40 ? { labels: false, ticks: false } : {}) };
  const x = { field: 'b', type: 'ordinal' as const, title: 'class', sort: names, scale: { domain: names }, axis: { ...axis, labelAngle: -45 } };
  const y = { field: 'a', type: 'ordinal' as const, title: 'class', sort: names, scale: { domain: names }, axis };
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [
    {
      // Per-cell aria labels would be most of the file at K = 100; the numbers are in the caption.
      mark: { type: 'rect', aria: false },
      encoding: { x, y, color: { field: 'kappa', type: 'quantitative', title: 'κ', scale: { domain: [0.5, 1], scheme: 'viridis', clamp: true }, legend: { orient: 'right', direction: 'vertical', gradientLength: Math.min(200, cell * K) } } },
    },
  ];
  if (K <= 12) {
    layers.push({
      mark: { type: 'text', fontSize: 9 },
      encoding: {
        x,
        y,
        text: { field: 'kappa', type: 'quantitative', format: '.2f' },
        color: { condition: { test: 'datum.kappa > 0.8', value: 'black' }, value: 'white' },
      },
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: cell * K,
    height: cell * K,
    data: { values: cells },
    layer: layers,
    config: { ...CONFIG, legend: { ...CONFIG.legend, orient: 'right' } },
  } as TopLevelSpec;
}

type VegaModule = typeof import('vega');
type VegaLiteModule = typeof import('vega-lite');
let modules: Promise<[VegaModule, VegaLiteModule]> | undefined;

/** vega is large; load it only when a report is rendered, not whenever the CLI starts. */
function loadVega(): Promise<[VegaModule, VegaLiteModule]> {
  modules ??= Promise.all([import('vega'), import('vega-lite')]);
  return modules;
}

const SVG_TAGS = new Set(['svg', 'g', 'path', 'rect', 'text', 'tspan', 'line', 'circle', 'ellipse', 'polygon', 'polyline', 'defs', 'clippath', 'lineargradient', 'radialgradient', 'stop', 'title', 'desc']);

/**
 * vega escapes the text it renders; this is the check that it still does. Any element outside
 * plain SVG drawing, any event-handler or link attribute, is refused rather than embedded.
 */
export function assertSafeSvg(svg: string): void {
  const tag = /<\/?([A-Za-z][\w:-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*\/?>/g;
  let m: RegExpExecArray | null;
  let covered = 0;
  while ((m = tag.exec(svg)) !== null) {
    if (/[<>]/.test(svg.slice(covered, m.index))) throw new RuntimeFailure('internal: rendered chart has markup that is not well-formed SVG');
    covered = tag.lastIndex;
    const name = m[1]!.toLowerCase();
    if (!SVG_TAGS.has(name)) throw new RuntimeFailure(`internal: rendered chart contains a <${name}> element`);
    for (const a of (m[2] ?? '').matchAll(/\s+([\w:-]+)(?:="([^"]*)")?/g)) {
      const attr = a[1]!.toLowerCase();
      if (attr.startsWith('on') || attr === 'href' || attr === 'xlink:href' || attr === 'style') throw new RuntimeFailure(`internal: rendered chart contains a ${attr} attribute`);
    }
  }
  if (/[<>]/.test(svg.slice(covered))) throw new RuntimeFailure('internal: rendered chart has markup that is not well-formed SVG');
}

/**
 * vega-lite spec → standalone SVG string, checked by assertSafeSvg. Element ids (gradients, clip
 * paths) get `idPrefix`: many SVGs share one HTML document, where an id must be unique.
 */
export async function renderSvg(spec: TopLevelSpec, idPrefix = ''): Promise<string> {
  const [vega, vl] = await loadVega();
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    let svg = await view.toSVG();
    if (idPrefix) svg = svg.replace(/ id="([^"]+)"/g, ` id="${idPrefix}$1"`).replace(/url\(#([^)]+)\)/g, `url(#${idPrefix}$1)`);
    assertSafeSvg(svg);
    return svg;
  } finally {
    view.finalize();
  }
}
