/**
 * monitor.html and sweep.html: self-contained pages (inline SVG charts rendered here with
 * vega-lite, inline style allowed by hash, no script, a Content-Security-Policy that forbids any
 * request), like report.html. monitor.html: one chart per metric over training, a line per hidden
 * layer, the training accuracy on a second axis; the synchronicity and timing tables. sweep.html:
 * how each sweep axis (activation, width, depth, …) moves the final per-layer metrics.
 */
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from './charts.js';
import { html, trusted, type HtmlPart, type SafeHtml } from './html-escape.js';
import type { MonitorResult, SweepRecord } from './monitor-schema.js';
import { BASE_STYLE, renderPage } from './page.js';
import { layerprobeVersion } from '../util/versions.js';

const STYLE = `${BASE_STYLE}.failed { color: #cf222e; }
`;

function page(title: string, sub: string, body: SafeHtml): string {
  const generator = `layerprobe ${layerprobeVersion()}`;
  return renderPage({
    title,
    generator,
    style: STYLE,
    header: html`<header><h1>${title}</h1><p class="sub">${sub}</p></header>`,
    main: body,
    footer: `Written by ${generator}. Self-contained: nothing is loaded from anywhere.`,
  });
}

const CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  view: { stroke: '#d0d7de' },
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal' as const, gridColor: '#eef1f4', domainColor: '#8c959f', tickColor: '#8c959f' },
  legend: { labelFontSize: 11, titleFontSize: 11, labelLimit: 320, orient: 'bottom' as const, direction: 'vertical' as const, symbolOpacity: 1 },
  background: 'white',
};

function num(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
  return v.toFixed(digits);
}

function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(2)}%`;
}

/** A numeric cell: shown right-aligned, as `shown` or a formatted number. */
class NumCell {
  constructor(readonly text: string) {}
}

function numCell(v: number | null | undefined, shown?: string): NumCell {
  return new NumCell(shown ?? num(v));
}

type Cell = HtmlPart | NumCell;

function table(head: string[], rows: Cell[][]): SafeHtml {
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => r[i] instanceof NumCell));
  const td = (c: Cell): SafeHtml => (c instanceof NumCell ? html`<td class="num">${c.text}</td>` : html`<td>${c}</td>`);
  return html`<div class="scroll"><table><thead><tr>${head.map((h, i) => (numeric[i] ? html`<th class="num">${h}</th>` : html`<th>${h}</th>`))}</tr></thead><tbody>${rows.map(
    (r) => html`<tr>${r.map(td)}</tr>`,
  )}</tbody></table></div>`;
}

async function figure(title: string, note: string, spec: TopLevelSpec, id: string): Promise<SafeHtml> {
  return html`<figure class="chart"><h3>${title}</h3>${trusted(await renderSvg(spec, id))}<p class="note">${note}</p></figure>`;
}

// ---------------------------------------------------------------------------------------------
// monitor.html

interface MetricChart {
  key: 'kappa' | 'kappaHeldOut' | 'kappaNull' | 'compression' | 'discrimination' | 'probeAccuracy';
  title: string;
  yTitle: string;
  log?: boolean;
  note: string;
}

const MONITOR_CHARTS: MetricChart[] = [
  { key: 'kappa', title: 'MD-LSM κ (one-vs-one mean)', yTitle: 'κ', note: 'In-sample lower bound over candidate directions; ½ = no separation, 1 = every class pair linearly separable.' },
  { key: 'kappaHeldOut', title: 'Held-out κ', yTitle: 'held-out κ', note: 'Directions fitted on half of each class, κ_w counted on the other half: the optimism-free version.' },
  { key: 'kappaNull', title: 'κ on permuted labels (baseline)', yTitle: 'κ_null', note: 'The same procedure on shuffled labels: how far above ½ optimism alone goes.' },
  { key: 'compression', title: 'Compression C', yTitle: 'C = tr Σ_W / tr Σ_B (log)', log: true, note: 'Smaller = more compressed within classes relative to between classes.' },
  { key: 'discrimination', title: 'Discrimination D', yTitle: 'D = 1 − max cos(μ_k, μ_l)', note: 'Larger = class means point in more different directions.' },
  { key: 'probeAccuracy', title: 'Linear probe, held-out accuracy', yTitle: 'probe accuracy', note: 'Multinomial logistic regression on the layer, fitted on 70% of the probe subset, scored on the rest.' },
];

/**
 * What a monitored metric is read against: for κ, the null band (min–max of κ on permuted labels
 * over the layers at each checkpoint) when the run measured it, else ½ (no separation); for the
 * probe, chance (1/K); for D, 0. Drawn in grey on the metric's own axis.
 */
function referenceLayers(r: MonitorResult, c: MetricChart): NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> {
  const x = { field: 'x', type: 'quantitative' as const, title: 'epoch' };
  const rule = (v: number) => [{ data: { values: [{ v }] }, mark: { type: 'rule' as const, color: '#8c959f', strokeDash: [2, 3] }, encoding: { y: { field: 'v', type: 'quantitative' as const } } }];
  if (c.key === 'kappa' || c.key === 'kappaHeldOut') {
    const band = r.checkpoints.flatMap((cp) => {
      const nulls = cp.layers.map((l) => l.kappaNull).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      return nulls.length ? [{ x: cp.epochProgress, lo: Math.min(...nulls), hi: Math.max(...nulls) }] : [];
    });
    if (band.length) return [{ data: { values: band }, mark: { type: 'area' as const, color: '#8c959f', opacity: 0.25 }, encoding: { x, y: { field: 'lo', type: 'quantitative' as const }, y2: { field: 'hi' } } }];
    return rule(0.5);
  }
  if (c.key === 'probeAccuracy' && r.classes.length > 0) return rule(1 / r.classes.length);
  if (c.key === 'discrimination') return rule(0);
  return [];
}

function monitorChartSpec(r: MonitorResult, c: MetricChart): TopLevelSpec | null {
  const layers = r.layers.map((l) => l.id);
  const values: { x: number; layer: string; value: number }[] = [];
  for (const cp of r.checkpoints) {
    for (const l of cp.layers) {
      const v = l[c.key];
      if (typeof v === 'number' && Number.isFinite(v) && (!c.log || v > 0)) values.push({ x: cp.epochProgress, layer: l.layer, value: v });
    }
  }
  if (values.length === 0) return null;
  const acc = r.checkpoints.map((cp) => ({ x: cp.epochProgress, acc: cp.trainAccuracy, series: 'training accuracy (right axis)' }));
  const x = { field: 'x', type: 'quantitative' as const, title: 'epoch' };
  const y = { field: 'value', type: 'quantitative' as const, title: c.yTitle, scale: c.log ? { type: 'log' as const } : { zero: false } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 380,
    height: 220,
    layer: [
      {
        // The reference (null band or chance level) shares the metric's axis, so the axis spans it
        // and a difference of 0.002 between layers looks as small as it is.
        layer: [
          ...referenceLayers(r, c),
          {
            data: { values },
            mark: { type: 'line', point: { filled: true, size: 30 }, strokeWidth: 2 },
            encoding: { x, y, color: { field: 'layer', type: 'nominal', title: 'layer', scale: { domain: layers } } },
          },
        ],
      },
      {
        data: { values: acc },
        mark: { type: 'line', strokeDash: [5, 4], color: '#57606a', strokeWidth: 1.5 },
        encoding: {
          x,
          y: { field: 'acc', type: 'quantitative', title: 'training accuracy (dashed)', scale: { domain: [0, 1] }, axis: { orient: 'right', grid: false } },
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
    config: CONFIG,
  } as TopLevelSpec;
}

/** Values over training (x in epochs), one line per `series`. */
function epochCurves(values: { x: number; series: string; value: number }[], yTitle: string, seriesTitle: string, pointSize: number, strokeWidth: number): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 380,
    height: 220,
    data: { values },
    mark: { type: 'line', point: { filled: true, size: pointSize }, strokeWidth },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'epoch' },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: seriesTitle },
    },
    config: CONFIG,
  } as TopLevelSpec;
}

function accuracySpec(r: MonitorResult): TopLevelSpec {
  const values: { x: number; series: string; value: number }[] = [];
  for (const cp of r.checkpoints) {
    values.push({ x: cp.epochProgress, series: 'train, probe subset (at checkpoint)', value: cp.trainAccuracy });
    if (cp.runningAccuracy !== null) values.push({ x: cp.epochProgress, series: 'train, running mean since last checkpoint', value: cp.runningAccuracy });
    if (cp.testAccuracy !== null) values.push({ x: cp.epochProgress, series: 'test', value: cp.testAccuracy });
  }
  return epochCurves(values, 'accuracy', 'series', 30, 2);
}

export async function renderMonitorHtml(r: MonitorResult, title: string): Promise<string> {
  const charts: SafeHtml[] = [await figure('Model accuracy', 'The accuracy the synchronicity summary uses is the solid "probe subset" line.', accuracySpec(r), 'acc-')];
  for (const c of MONITOR_CHARTS) {
    const spec = monitorChartSpec(r, c);
    if (spec) charts.push(await figure(c.title, c.note, spec, `${c.key}-`));
  }
  const s = r.synchronicity;
  // One row of correlations per layer, in the layer table and in the per-metric table.
  const corrCells = (l: (typeof s.layers)[number]) => [
    html`<code>${l.layer}</code>`,
    numCell(l.levels.pearson, num(l.levels.pearson, 3)),
    numCell(l.levels.spearman, num(l.levels.spearman, 3)),
    numCell(l.changes.pearson, num(l.changes.pearson, 3)),
    numCell(l.changes.spearman, num(l.changes.spearman, 3)),
    numCell(l.duringTraining.levels.pearson, num(l.duringTraining.levels.pearson, 3)),
    numCell(l.duringTraining.changes.pearson, num(l.duringTraining.changes.pearson, 3)),
  ];
  const syncRows = s.layers.map((l) => [...corrCells(l), l.layer === s.best ? 'best' : '']);
  const metricRows = (Object.keys(s.byMetric) as (keyof typeof s.byMetric)[]).flatMap((m) =>
    s.byMetric[m].map((l) => [m, ...corrCells(l)]),
  );
  const seriesRows = r.checkpoints.flatMap((cp) =>
    cp.layers.map((l) => [
      numCell(cp.epochProgress, num(cp.epochProgress, 2)),
      numCell(cp.step, String(cp.step)),
      html`<code>${l.layer}</code>`,
      numCell(l.kappa),
      numCell(l.kappaWorst?.kappa ?? null),
      l.kappaWorst ? `${r.classes[l.kappaWorst.pair[0]]} / ${r.classes[l.kappaWorst.pair[1]]}` : '—',
      numCell(l.kappaHeldOut),
      numCell(l.compression),
      numCell(l.discrimination),
      numCell(l.probeAccuracy, pct(l.probeAccuracy)),
      numCell(cp.trainAccuracy, pct(cp.trainAccuracy)),
      numCell(cp.testAccuracy, pct(cp.testAccuracy)),
    ]),
  );
  const t = r.timing;
  const body = html`
<section><h2>Curves</h2><div class="charts">${charts}</div></section>
<section><h2>Synchronicity</h2>
<p class="note">${s.definition}. ${s.note}</p>
${table(['layer', 'κ levels: Pearson', 'Spearman', 'Δκ changes: Pearson', 'Spearman', 'during training: levels', 'changes', ''], syncRows)}
<p>Tracks training best: <strong>${s.best ?? s.undetermined ?? 'undetermined (too few checkpoints: correlations undefined)'}</strong>${s.ranking.length > 1 ? ` (ranking by the Pearson correlation of the changes during training: ${s.ranking.join(' > ')})` : ''}.</p>
<h3>Every monitored metric</h3>
${table(['metric', 'layer', 'levels: Pearson', 'Spearman', 'changes: Pearson', 'Spearman', 'during training: levels', 'changes'], metricRows)}
</section>
<section><h2>Cost of monitoring</h2>
${table(
  ['', 'seconds'],
  [
    ['monitor, all checkpoints', numCell(t.monitorSeconds, t.monitorSeconds.toFixed(1))],
    ['training (steps and test evaluation), monitor excluded', numCell(t.trainSeconds, t.trainSeconds.toFixed(1))],
    ['overhead', numCell(t.overhead, pct(t.overhead))],
    ['per checkpoint', numCell(t.perCheckpointSeconds, t.perCheckpointSeconds.toFixed(2))],
    ['forward passes', numCell(t.forwardSeconds, t.forwardSeconds.toFixed(2))],
    ['MD-LSM κ', numCell(t.kappaSeconds, t.kappaSeconds.toFixed(2))],
    ['C and D', numCell(t.geometrySeconds, t.geometrySeconds.toFixed(2))],
    ['linear probes', numCell(t.probeSeconds, t.probeSeconds.toFixed(2))],
  ],
)}
</section>
<section><h2>All numbers</h2>
${table(['epoch', 'step', 'layer', 'κ', 'worst κ', 'worst pair', 'held-out κ', 'C', 'D', 'probe acc', 'train acc', 'test acc'], seriesRows)}
<p class="note">The same numbers, one row per checkpoint and layer, are in monitor.csv; everything (probe-subset indices included) is in monitor.json.</p>
</section>
<section><h2>Definitions</h2><dl class="defs">${Object.entries(r.definitions).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
<p class="note">Layers: ${r.layers.map((l) => `${l.id} (${l.className}, ${l.reduction === 'none' ? `${l.dim} units` : `${l.reduction} → ${l.dim}`})`).join('; ')}. κ uses the audit's saturation guard (PCA to at most ${r.options.kappa.maxDimFraction} of the smallest class pair's rows).</p></section>`;
  const sub =
    `${r.probeSet.n} training images (${r.probeSet.perClass}/class, seed ${r.probeSet.seed}) · ${r.checkpoints.length} checkpoints, ` +
    `every ${r.schedule.every} ${r.schedule.unit}${r.schedule.every === 1 ? '' : 's'}${r.schedule.initial ? ' and before training' : ''} · ${r.createdAt}`;
  return page(title, sub, body);
}

// ---------------------------------------------------------------------------------------------
// sweep.html

const SWEEP_METRICS: { key: 'kappa' | 'kappaHeldOut' | 'compression' | 'discrimination' | 'probeAccuracy'; title: string; log?: boolean }[] = [
  { key: 'kappa', title: 'final κ' },
  { key: 'kappaHeldOut', title: 'final held-out κ' },
  { key: 'compression', title: 'final compression C (log)', log: true },
  { key: 'discrimination', title: 'final discrimination D' },
  { key: 'probeAccuracy', title: 'final probe accuracy' },
];

function axisChartSpec(s: SweepRecord, axis: string, metric: (typeof SWEEP_METRICS)[number]): TopLevelSpec | null {
  const values: { value: string; depth: number; y: number; cell: string }[] = [];
  for (const c of s.cells) {
    if (c.status !== 'ok') continue;
    for (const l of c.layers) {
      const v = l[metric.key];
      if (typeof v === 'number' && Number.isFinite(v) && (!metric.log || v > 0)) values.push({ value: String(c.settings[axis]), depth: l.relativeDepth, y: v, cell: c.name });
    }
  }
  if (values.length === 0) return null;
  const domain = s.axes.find((a) => a.key === axis)!.values.map(String);
  const x = { field: 'depth', type: 'quantitative' as const, title: 'relative depth (layer / hidden layers)', scale: { domain: [0, 1] } };
  const yScale = metric.log ? { type: 'log' as const } : metric.key === 'probeAccuracy' ? { domain: [0, 1] } : { zero: false };
  const colour = { field: 'value', type: 'nominal' as const, title: axis, scale: { domain } };
  // A reference on the metric's axis (½ for κ: no separation; 0 for D; the [0, 1] range for the
  // probe), so the axis cannot zoom onto differences far inside the noise.
  const ref = metric.key === 'kappa' || metric.key === 'kappaHeldOut' ? 0.5 : metric.key === 'discrimination' ? 0 : null;
  const refLayer = ref === null ? [] : [{ data: { values: [{ v: ref }] }, mark: { type: 'rule' as const, color: '#8c959f', strokeDash: [2, 3] }, encoding: { y: { field: 'v', type: 'quantitative' as const } } }];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 380,
    height: 220,
    data: { values },
    layer: [
      ...refLayer,
      // Thin lines: every cell. Thick: the mean over the cells sharing this value of the axis.
      { mark: { type: 'line', strokeWidth: 0.7, opacity: 0.35 }, encoding: { x, y: { field: 'y', type: 'quantitative', title: metric.title, scale: yScale }, color: colour, detail: { field: 'cell' } } },
      {
        mark: { type: 'line', strokeWidth: 2.5, point: { filled: true, size: 40 } },
        encoding: { x, y: { aggregate: 'mean', field: 'y', type: 'quantitative', title: metric.title, scale: yScale }, color: colour },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

function curveSpec(s: SweepRecord): TopLevelSpec | null {
  const values: { x: number; series: string; value: number }[] = [];
  for (const c of s.cells) for (const p of c.lastLayerCurve) if (p.kappa !== null) values.push({ x: p.epochProgress, series: c.name, value: p.kappa });
  return values.length ? epochCurves(values, 'κ of the last hidden layer', 'cell', 20, 1.5) : null;
}

export async function renderSweepHtml(s: SweepRecord, title: string): Promise<string> {
  const axes = s.axes.map((a) => a.key);
  const sections: SafeHtml[] = [];
  for (const axis of axes) {
    const figs: SafeHtml[] = [];
    for (const m of SWEEP_METRICS) {
      const spec = axisChartSpec(s, axis, m);
      if (spec) figs.push(await figure(`${m.title} by ${axis}`, `Each thin line is one cell; the thick line averages the cells with that ${axis} over the other axes.`, spec, `${axis}-${m.key}-`));
    }
    sections.push(html`<h3>${axis}</h3><div class="charts">${figs}</div>`);
  }
  const curve = curveSpec(s);
  const cellRows = s.cells.map((c) => {
    const last = c.layers[c.layers.length - 1];
    return [
      html`<code>${c.name}</code>`,
      ...axes.map((a) => String(c.settings[a])),
      c.status === 'ok' ? 'ok' : html`<span class="failed">failed: ${c.error ?? ''}</span>`,
      numCell(c.trainAccuracy, pct(c.trainAccuracy)),
      numCell(c.testAccuracy, pct(c.testAccuracy)),
      c.layers.map((l) => num(l.kappa, 3)).join(' · '),
      numCell(last?.kappaHeldOut ?? null),
      numCell(last?.compression ?? null),
      numCell(last?.discrimination ?? null),
      numCell(last?.probeAccuracy ?? null, pct(last?.probeAccuracy ?? null)),
      c.bestTrackingLayer ?? 'undetermined',
      numCell(c.seconds, c.seconds.toFixed(1)),
    ];
  });
  const layerRows = s.cells.flatMap((c) =>
    c.layers.map((l) => [
      html`<code>${c.name}</code>`,
      html`<code>${l.layer}</code>`,
      numCell(l.relativeDepth, num(l.relativeDepth, 2)),
      numCell(l.kappa),
      numCell(l.kappaHeldOut),
      numCell(l.compression),
      numCell(l.discrimination),
      numCell(l.probeAccuracy, pct(l.probeAccuracy)),
      numCell(l.syncLevels, num(l.syncLevels, 3)),
      numCell(l.syncChanges, num(l.syncChanges, 3)),
      numCell(l.syncChangesDuringTraining, num(l.syncChangesDuringTraining, 3)),
    ]),
  );
  const body = html`
<section><h2>Cells</h2>
${table(
  ['cell', ...axes, 'status', 'train acc', 'test acc', 'κ per layer (input → output)', 'last: held-out κ', 'last: C', 'last: D', 'last: probe acc', 'tracks training best', 'seconds'],
  cellRows,
)}
<p class="note">Final values are at the last checkpoint (the end of training), on each cell's probe subset of the training data. Each cell's folder holds its model, monitor.json/csv/html and model card.</p>
</section>
<section><h2>How each axis moves hidden-layer separability</h2>${sections}</section>
${curve ? html`<section><h2>κ of the last hidden layer during training</h2><div class="charts">${await figure('last hidden layer κ(t), every cell', 'One line per cell.', curve, 'curve-')}</div></section>` : ''}
<section><h2>Every layer of every cell</h2>
${table(['cell', 'layer', 'relative depth', 'κ', 'held-out κ', 'C', 'D', 'probe acc', 'sync: levels Pearson', 'sync: changes Pearson', 'sync: changes during training'], layerRows)}
</section>`;
  const sub = `${s.arch} · ${s.cells.length} cells (${s.axes.map((a) => `${a.key} ∈ {${a.values.join(', ')}}`).join(' × ')}) · ${s.base.epochs} epochs${s.base.limit ? `, ${s.base.limit} images per epoch` : ''} · seed ${s.base.seed} · ${s.createdAt}`;
  return page(title, sub, body);
}
