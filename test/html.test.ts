/**
 * report.html and `layerprobe report`: the page holds exactly the models and layers of its
 * report.json, charts only for metrics that exist, every foreign string escaped (in text,
 * attributes and inside the SVG), and report.json is read back with clear errors.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import yargs from 'yargs';
import { audit } from '../src/pipeline/audit.js';
import { renderHtml, writeReportHtml, escapeHtml } from '../src/report/html.js';
import { assertSafeSvg, lineSpec, planCharts, renderSvg } from '../src/report/charts.js';
import { loadReport } from '../src/report/load.js';
import { csvCell, csvLine } from '../src/report/csv.js';
import { reportCommand } from '../src/cli/report.js';
import { renderReportFile } from '../src/report/render.js';
import { RuntimeFailure, UsageError } from '../src/errors.js';
import type { Report } from '../src/report/schema.js';
import { randomMlp, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

let dir = '';
let runDir = '';
let report: Report;

before(async () => {
  dir = await tempDir('lp-html-');
  const data = await writeIdxDataset(path.join(dir, 'data'), 90, 3);
  const a = path.join(dir, 'mlp-a.onnx');
  const b = path.join(dir, 'mlp-b.onnx');
  await writeOnnxMlp(a, randomMlp([64, 12, 7, 3], 3));
  await writeOnnxMlp(b, randomMlp([64, 10, 6, 3], 5));
  runDir = path.join(dir, 'run');
  const r = await audit({ models: [{ path: a }, { path: b }], dataset: data.images, perClass: 30, out: runDir, force: true });
  report = r.report;
});

/** A deep copy with MD-LSM and random-layer baseline metrics, as a separability audit adds them. */
function withSeparability(r: Report): Report {
  const out = structuredClone(r);
  const K = out.dataset.classes.length;
  for (const m of out.models) {
    for (const l of m.layers) {
      const k = 0.7 + 0.25 * l.depth;
      const matrix = Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => (i === j ? null : k - 0.01 * (i + j))));
      const def = 'SCIENCE.md §3.1 MD-LSM κ';
      l.metrics.mdlsm_kappa ??= { name: 'mdlsm_kappa', value: k, definition: def, detail: { matrix } };
      l.metrics.mdlsm_heldout_kappa ??= { name: 'mdlsm_heldout_kappa', value: k - 0.05, definition: `${def}, held-out` };
      l.metrics.mdlsm_null_kappa ??= { name: 'mdlsm_null_kappa', value: 0.55, definition: `${def}, permuted labels`, detail: { sd: 0.01 } };
      l.metrics.baseline_probe_heldout_accuracy ??= { name: 'baseline_probe_heldout_accuracy', value: 0.5, definition: 'SCIENCE.md §4 random-layer baseline' };
    }
  }
  return out;
}

const EVIL_LAYER = '<script>alert(1)</script>';
const EVIL_CLASS = '"><img src=x onerror=alert(1)>';
const EVIL_MODEL = "</title><svg onload=alert(2)>'";

function evil(r: Report): Report {
  const out = withSeparability(r);
  out.models[0]!.layers[0]!.id = EVIL_LAYER;
  out.models[0]!.name = EVIL_MODEL;
  out.dataset.classes[1] = EVIL_CLASS;
  out.dataset.name = '<iframe src="https://example.com">';
  out.models[1]!.path = 'javascript:alert(3)';
  out.warnings.push('<b onmouseover=alert(4)>warning</b>');
  out.models[0]!.layers[0]!.metrics.compression!.definition = '<style>body{display:none}</style>';
  out.gates = [{ spec: `--fail-under compression@${EVIL_LAYER}=1`, passed: false, detail: `${EVIL_CLASS} failed` }];
  return out;
}

function unescape(s: string): string {
  return s.replace(/&(lt|gt|quot|#39|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", amp: '&' })[e]!);
}

interface Tag {
  name: string;
  attrs: Map<string, string>;
}

/**
 * A strict tokenizer for the page the renderer writes (double-quoted attributes, escaped text):
 * fails on anything it cannot read, so a stray `<` or `"` from an unescaped name shows up here.
 */
function tags(page: string): Tag[] {
  const out: Tag[] = [];
  const body = page.replace(/<!doctype html>/i, '');
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+(?:="[^"<>]*")?)*)\s*\/?>/g;
  let at = 0;
  let inRaw: string | undefined;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body)) !== null) {
    const between = body.slice(at, m.index);
    const name = m[2]!.toLowerCase();
    if (inRaw) {
      if (m[1] === '/' && name === inRaw) inRaw = undefined;
      else continue;
    } else {
      assert.doesNotMatch(between, /[<>]/, `markup outside a tag near: ${between.slice(0, 80)}`);
    }
    at = re.lastIndex;
    if (m[1] === '/') continue;
    const attrs = new Map<string, string>();
    for (const a of (m[3] ?? '').matchAll(/\s+([\w:-]+)(?:="([^"]*)")?/g)) attrs.set(a[1]!.toLowerCase(), unescape(a[2] ?? ''));
    out.push({ name, attrs });
    if (name === 'script' || name === 'style') inRaw = name;
  }
  assert.doesNotMatch(body.slice(at), /[<>]/);
  return out;
}

function rows(page: string): { model: string; layer: string; position: number }[] {
  return tags(page)
    .filter((t) => t.name === 'tr' && t.attrs.has('data-layer'))
    .map((t) => ({ model: t.attrs.get('data-model')!, layer: t.attrs.get('data-layer')!, position: Number(t.attrs.get('data-position')) }));
}

test('the page of a two-model run holds exactly the models and layers of its report.json', async () => {
  const file = await writeReportHtml(runDir, report);
  assert.equal(file, path.join(runDir, 'report.html'));
  const loaded = await loadReport(runDir);
  const page = await readFile(file, 'utf8');
  const expected = loaded.report.models.flatMap((m) => m.layers.map((l) => ({ model: m.name, layer: l.id, position: l.position })));
  assert.equal(loaded.report.models.length, 2);
  assert.deepEqual(rows(page), expected);
  const summaryRows = tags(page).filter((t) => t.name === 'tr' && t.attrs.has('data-model') && !t.attrs.has('data-layer'));
  assert.deepEqual(summaryRows.map((t) => t.attrs.get('data-model')), loaded.report.models.map((m) => m.name));
  // Every metric value of the report is in the table, at full precision, for sorting.
  const values = new Set(tags(page).filter((t) => t.name === 'td' && t.attrs.get('data-v')).map((t) => t.attrs.get('data-v')));
  for (const m of loaded.report.models) for (const l of m.layers) for (const r of Object.values(l.metrics)) if (r.value !== null) assert.ok(values.has(String(r.value)), `${m.name}/${l.id}/${r.name}`);
});

test('self-contained: no external resource, one inline script allowed by hash, a CSP that blocks the network', async () => {
  const page = await renderHtml(withSeparability(report));
  const all = tags(page);
  const scripts = all.filter((t) => t.name === 'script');
  assert.equal(scripts.length, 1);
  assert.equal(scripts[0]!.attrs.has('src'), false);
  for (const t of all) {
    for (const [k, v] of t.attrs) {
      assert.ok(!['src', 'href', 'xlink:href', 'srcset', 'action', 'poster', 'data'].includes(k) || v.startsWith('#'), `<${t.name} ${k}="${v}">`);
    }
  }
  assert.ok(!all.some((t) => t.name === 'link' || t.name === 'img' || t.name === 'iframe'));
  assert.doesNotMatch(page, /@import|url\((?!#)/, 'url() only for fragments inside the page');
  const ids = all.map((t) => t.attrs.get('id')).filter((x) => x !== undefined);
  assert.equal(new Set(ids).size, ids.length, 'element ids are unique');
  for (const m of page.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(m[1]), `url(#${m[1]}) resolves`);
  const cspTag = all.find((t) => t.name === 'meta' && t.attrs.get('http-equiv') === 'Content-Security-Policy');
  assert.ok(cspTag);
  assert.match(cspTag.attrs.get('content')!, /default-src 'none'/);
  assert.match(cspTag.attrs.get('content')!, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.doesNotMatch(cspTag.attrs.get('content')!, /unsafe-inline/);
});

test('charts exist only for metrics in the report; κ, its heat map and baselines appear when present', async () => {
  const plain = await renderHtml(report);
  const ids = (page: string) => tags(page).filter((t) => t.name === 'figure').map((t) => t.attrs.get('data-chart'));
  const plainIds = ids(plain);
  for (const id of ['compression', 'discrimination', 'nc1', 'probe', 'rank']) assert.ok(plainIds.includes(id), id);
  assert.ok(!plainIds.includes('mdlsm') && !plainIds.includes('kappa-heatmap') && !plainIds.includes('lp'));
  assert.doesNotMatch(plain, /id="kappa"/);

  const sep = withSeparability(report);
  const page = await renderHtml(sep);
  const figs = tags(page).filter((t) => t.name === 'figure');
  assert.ok(ids(page).includes('mdlsm'));
  const heat = figs.filter((t) => t.attrs.get('data-chart') === 'kappa-heatmap');
  assert.equal(heat.length, sep.models.reduce((s, m) => s + m.layers.length, 0), 'one heat map per layer with a κ matrix');
  for (const m of sep.models) {
    const shown = heat.filter((t) => t.attrs.get('data-model') === m.name && !t.attrs.has('hidden'));
    assert.deepEqual(shown.map((t) => t.attrs.get('data-layer')), [m.layers.at(-1)!.id], 'the last layer is shown first');
  }
  const chosen = await renderHtml(sep, { kappaLayer: sep.models[0]!.layers[0]!.id });
  const shown0 = tags(chosen).filter((t) => t.attrs.get('data-chart') === 'kappa-heatmap' && t.attrs.get('data-model') === sep.models[0]!.name && !t.attrs.has('hidden'));
  assert.deepEqual(shown0.map((t) => t.attrs.get('data-layer')), [sep.models[0]!.layers[0]!.id]);
  // The null band is drawn, and the random-layer baseline joins the probe chart.
  const mdlsm = /data-chart="mdlsm"[\s\S]*?<\/figure>/.exec(page)![0];
  assert.match(mdlsm, /mark-area/);
  assert.match(mdlsm, /mean ± 2 sd/);
  const probe = /data-chart="probe"[\s\S]*?<\/figure>/.exec(page)![0];
  assert.match(probe, /random layer: held-out/);
  // Definitions list every metric key.
  for (const k of ['compression', 'mdlsm_kappa', 'baseline_probe_heldout_accuracy']) assert.match(page, new RegExp(`id="def-${k}"`));
  // Only the chosen heat map is embedded when all of them would be too many cells.
  const capped = await renderHtml(sep, { maxHeatmapCells: 10 });
  assert.equal(tags(capped).filter((t) => t.attrs.get('data-chart') === 'kappa-heatmap').length, sep.models.length);
});

test('over 100 classes the κ heat map gives way to a table of the least separable pairs', async () => {
  const r = structuredClone(report);
  const K = 120;
  r.dataset.classes = Array.from({ length: K }, (_, i) => `class-${i}`);
  r.dataset.perClassCounts = new Array<number>(K).fill(1);
  const l = r.models[0]!.layers.at(-1)!;
  const matrix = Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => (i === j ? null : 0.9 + 0.0001 * (i + j))));
  matrix[3]![7] = matrix[7]![3] = 0.51;
  l.metrics.mdlsm_kappa = { name: 'mdlsm_kappa', value: 0.9, definition: 'κ', detail: { matrix } };
  const page = await renderHtml(r);
  assert.doesNotMatch(page, /data-chart="kappa-heatmap"/);
  assert.match(page, /120 classes are too many for a heat map/);
  assert.match(page, /<tr><td>class-3<\/td><td>class-7<\/td><td class="num" data-v="0.51">/);
});

test('no empty charts: null values, non-positive values on log axes, models without layers', async () => {
  const r = structuredClone(report);
  for (const m of r.models) {
    for (const l of m.layers) {
      l.metrics.compression!.value = null;
      l.metrics.nc1!.value = 0;
    }
  }
  const planned = planCharts(r);
  const plans = planned.map((p) => p.def.id);
  // Without the trained C the compression frame holds at most the random layers' C, and says so.
  const comp = planned.find((p) => p.def.id === 'compression');
  assert.ok(!comp || (comp.randomOnly !== undefined && comp.def.series.every((s) => s.key.startsWith('baseline_'))), 'compression: absent or random-only');
  assert.ok(!plans.includes('nc1'));
  assert.ok(plans.includes('discrimination'));
  r.models[1]!.layers = [];
  const page = await renderHtml(r);
  const compFig = /data-chart="compression"[\s\S]*?<\/figure>/.exec(page)?.[0];
  assert.ok(compFig === undefined || compFig.includes('Only the random layers are drawn here'), 'a random-only compression chart says so');
  assert.equal(rows(page).length, r.models[0]!.layers.length);
  // An unknown metric still gets a chart and a column.
  const extra = structuredClone(report);
  extra.models[0]!.layers[0]!.metrics.my_metric = { name: 'my_metric', value: 1.5, definition: 'a new measurement' };
  const p2 = await renderHtml(extra);
  assert.match(p2, /data-chart="my_metric"/);
  assert.match(p2, /data-metric="my_metric"/);
});

test('a one-model chart labels its x ticks with the layer names; several models keep the depth axis', async () => {
  const one = structuredClone(report);
  one.models = [one.models[0]!];
  // Names a Vega expression must carry literally: quotes, a backslash, markup.
  one.models[0]!.layers[0]!.id = 'blk"0\\a';
  one.models[0]!.layers[1]!.id = "it's <b>";
  const axisText = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => unescape(m[1]!));
  const chart = planCharts(one).find((c) => c.def.id === 'compression')!;
  const texts = axisText(await renderSvg(lineSpec(chart, [one.models[0]!.name])));
  const ids = one.models[0]!.layers.map((l) => l.id);
  // Every layer name appears as a tick label, in depth order (the chart is 380 px wide: they fit).
  assert.deepEqual(texts.filter((t) => ids.includes(t)), ids);
  const two = planCharts(report).find((c) => c.def.id === 'compression')!;
  const texts2 = axisText(await renderSvg(lineSpec(two, report.models.map((m) => m.name))));
  assert.ok(!texts2.some((t) => report.models.some((m) => m.layers.some((l) => l.id === t))), 'no layer names on a shared axis');
  assert.ok(texts2.includes('0.5') || texts2.includes('0.50'), `numeric depth ticks: ${texts2.join(' | ')}`);
});

test('strings from models and datasets are escaped in text, attributes and SVG', async () => {
  const r = evil(report);
  const page = await renderHtml(r, { kappaLayer: EVIL_LAYER });
  const all = tags(page);
  assert.equal(all.filter((t) => t.name === 'script').length, 1, 'only the page’s own script');
  assert.equal(all.filter((t) => t.name === 'style').length, 1, 'only the page’s own style');
  assert.ok(!all.some((t) => ['img', 'iframe'].includes(t.name)));
  assert.equal(all.filter((t) => t.name === 'svg').length, tags(await renderHtml(withSeparability(report))).filter((t) => t.name === 'svg').length, 'no extra svg element');
  for (const t of all) for (const k of t.attrs.keys()) assert.ok(!k.startsWith('on'), `<${t.name} ${k}>`);
  assert.ok(page.includes(escapeHtml(EVIL_LAYER)));
  assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(page.includes(escapeHtml(EVIL_CLASS)) || page.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'));
  // Round trip: the names come back intact from attributes.
  assert.ok(rows(page).some((x) => x.layer === EVIL_LAYER && x.model === EVIL_MODEL));
  // Inside the SVG (vega's own escaping): the class name is an axis label of the heat map.
  const svgs = [...page.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
  for (const s of svgs) assertSafeSvg(s);
  assert.ok(svgs.some((s) => s.includes('&gt;&lt;img src=x onerror=alert(1)&gt;')), 'class name rendered as SVG text');
  assert.ok(svgs.some((s) => s.includes('&lt;/title&gt;&lt;svg onload=alert(2)&gt;')), 'model name rendered as legend text');
});

test('assertSafeSvg refuses scripts, handlers, links and foreign elements', () => {
  assertSafeSvg('<svg width="1"><g><text x="1">a &lt;b&gt;</text><path d="M0,0"/></g></svg>');
  assert.throws(() => assertSafeSvg('<svg><script>alert(1)</script></svg>'), RuntimeFailure);
  assert.throws(() => assertSafeSvg('<svg onload="alert(1)"></svg>'), RuntimeFailure);
  assert.throws(() => assertSafeSvg('<svg><a href="https://x"><text>x</text></a></svg>'), RuntimeFailure);
  assert.throws(() => assertSafeSvg('<svg><foreignObject></foreignObject></svg>'), RuntimeFailure);
  assert.throws(() => assertSafeSvg('<svg><text>a < b</text></svg>'), RuntimeFailure);
});

test('loadReport: missing, invalid JSON, other schema versions, malformed reports', async () => {
  const base = await tempDir('lp-load-');
  await assert.rejects(loadReport(path.join(base, 'nope')), (e: unknown) => e instanceof UsageError && /nope has no report\.json/.test(e.message));
  await assert.rejects(loadReport(base), (e: unknown) => e instanceof UsageError && e.message === `${base} has no report.json`);
  await assert.rejects(loadReport(path.join(base, 'x.json')), (e: unknown) => e instanceof UsageError && /x\.json does not exist/.test(e.message));
  const bad = path.join(base, 'bad');
  await mkdir(bad);
  await writeFile(path.join(bad, 'report.json'), '{"schema": "layerprobe.report/1",');
  await assert.rejects(loadReport(bad), (e: unknown) => e instanceof RuntimeFailure && e.message.startsWith(`${path.join(bad, 'report.json')} is not valid JSON`));
  const other = path.join(base, 'other.json');
  await writeFile(other, JSON.stringify({ ...report, schema: 'layerprobe.report/9' }));
  await assert.rejects(loadReport(other), (e: unknown) => e instanceof RuntimeFailure && e.message === `${other} has schema \`layerprobe.report/9\`; this layerprobe reads layerprobe.report/1`);
  const none = path.join(base, 'none.json');
  await writeFile(none, JSON.stringify({ models: [] }));
  await assert.rejects(loadReport(none), (e: unknown) => e instanceof RuntimeFailure && /none\.json has no `schema` field; this layerprobe reads layerprobe\.report\/1/.test(e.message));
  const broken = path.join(base, 'broken.json');
  const b = structuredClone(report) as unknown as { models: { layers: unknown }[] };
  b.models[0]!.layers = 'x';
  await writeFile(broken, JSON.stringify(b));
  await assert.rejects(loadReport(broken), (e: unknown) => e instanceof RuntimeFailure && /does not match layerprobe\.report\/1: models\[0\]\.layers/.test(e.message));
  // A similarity matrix that does not fit its layer list is refused at load, not a crash in the page.
  const skew = path.join(base, 'skew.json');
  const k = structuredClone(report);
  k.similarity = { method: 'linear', definition: 'CKA', n: 3, layers: [{ model: 'a', layer: 'x', depth: 0 }, { model: 'a', layer: 'y', depth: 1 }], matrix: [[1]] };
  await writeFile(skew, JSON.stringify(k));
  await assert.rejects(loadReport(skew), (e: unknown) => e instanceof RuntimeFailure && /similarity\.matrix must be square/.test(e.message));
  const ok = await loadReport(path.join(runDir, 'report.json'));
  assert.equal(ok.dir, runDir);
});

async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let text = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return text;
}

test('layerprobe report re-renders report.html next to report.json, or to --out; prints the path', async () => {
  const copy = path.join(dir, 'copy');
  await mkdir(copy, { recursive: true });
  await writeFile(path.join(copy, 'report.json'), JSON.stringify(withSeparability(report)));
  const cmd = () => yargs(['report', copy]).command(reportCommand).strict().fail((msg, err) => { throw err ?? new Error(msg); });
  const out = await captureStdout(() => cmd().parseAsync());
  assert.equal(out.trim(), path.join(copy, 'report.html'));
  assert.match(await readFile(path.join(copy, 'report.html'), 'utf8'), /data-chart="mdlsm"/);
  assert.deepEqual((await readdir(copy)).sort(), ['report.html', 'report.json'], 'no temporary files left');

  const target = path.join(dir, 'elsewhere', 'page.html');
  const json = await captureStdout(() => yargs(['report', path.join(copy, 'report.json'), '--out', target, '--json']).command(reportCommand).parseAsync());
  const parsed = (JSON.parse(json) as { result: { html: string; source: string; bytes: number } }).result;
  assert.equal(parsed.html, target);
  assert.equal(parsed.source, path.join(copy, 'report.json'));
  assert.equal(parsed.bytes, (await readFile(target)).length);

  await assert.rejects(renderReportFile(copy, { kappaLayer: 'no-such-layer' }), (e: unknown) => e instanceof UsageError && /--kappa-layer `no-such-layer`/.test(e.message));
  await assert.rejects(renderReportFile(path.join(dir, 'missing-run')), UsageError);

  // --out never lands on the report.json being rendered, nor over another file without --force;
  // a path ending in / is a folder.
  const src = path.join(copy, 'report.json');
  const before = await readFile(src, 'utf8');
  await assert.rejects(renderReportFile(copy, { out: src }), (e: unknown) => e instanceof UsageError && /is the report.json being rendered/.test(e.message));
  await assert.rejects(renderReportFile(copy, { out: target }), (e: unknown) => e instanceof UsageError && /already exists/.test(e.message));
  assert.equal(await readFile(src, 'utf8'), before);
  assert.equal((await renderReportFile(copy, { out: target, force: true })).html, target);
  const folder = path.join(dir, 'new-folder') + path.sep;
  assert.equal((await renderReportFile(copy, { out: folder })).html, path.join(folder, 'report.html'));
});

test('CSV cells: empty for missing or non-finite numbers, quoted strings where a spreadsheet could misread them', () => {
  assert.equal(csvLine([1.5, NaN, Infinity, null, undefined, true, 'plain']), '1.5,,,,,true,plain');
  assert.equal(csvCell('=HYPERLINK("x")'), '"=HYPERLINK(""x"")"');
  assert.equal(csvCell('-1+2'), '"-1+2"');
  assert.equal(csvCell('@sum'), '"@sum"');
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('two\nlines'), '"two\nlines"');
  assert.equal(csvCell(-1), '-1', 'a negative number is a number, not a formula');
});
