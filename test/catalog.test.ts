/**
 * The metric catalogue's contract, run for every row (like scikit-learn's
 * metrics/tests/test_common.py): a definition and a docs anchor of the right form; finite on the
 * shipped MLP; NaN becomes null in report.json; invariant to relabelling classes where it should
 * be; its exact-or-sampled flag matches what it does. Then failure isolation (a compute that
 * throws fails only its own cells, the report is still written, the CLI exits 4), and that adding
 * a metric is one registered row + function that shows up in the table, gates, summary and CSV.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { audit } from '../src/pipeline/audit.js';
import { catalogRows, COMPUTE_ORDER, metricGroupsHelp, metricRow, registerMetric, METRIC_GROUPS } from '../src/metrics/catalog.js';
import { checkGateMetrics, evaluateGates, parseGate } from '../src/report/gates.js';
import { renderSummary } from '../src/report/summary.js';
import { metricsCsv } from '../src/report/records.js';
import { renderHtml } from '../src/report/html.js';
import { reportSchema, type Report } from '../src/report/schema.js';
import { UsageError } from '../src/errors.js';
import { idxBytes, randomMlp, ROOT, syntheticImages, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

const FAMILIES = ['geometry', 'collapse', 'rank', 'probe', 'separability', 'similarity', 'baseline'];
const LAYER_ROWS = () => catalogRows().filter((r) => r.source !== 'compare');
const MLP = path.join(ROOT, 'models/fmnist-mlp/model.json');

test('every catalogue row has a definition, a docs anchor docs/metrics/<family>.md#<key>, labels and a known source', () => {
  const keys = new Set<string>();
  for (const r of catalogRows()) {
    assert.ok(!keys.has(r.key), `duplicate key ${r.key}`);
    keys.add(r.key);
    assert.match(r.key, /^[a-z][a-z0-9_]*$/, r.key);
    assert.ok(FAMILIES.includes(r.family), `${r.key}: family ${r.family}`);
    assert.equal(r.docs, `docs/metrics/${r.family}.md#${r.key}`);
    assert.ok(r.definition.trim().length > 10, `${r.key}: definition`);
    assert.ok(r.label.length > 0, `${r.key}: label`);
    assert.ok(['higher', 'lower', 'none'].includes(r.better));
    assert.ok(['exact', 'sampled'].includes(r.basis));
    if (r.short !== undefined) assert.ok(r.legend && r.legend.length > r.short.length, `${r.key}: a summary column needs a legend line`);
    if ((METRIC_GROUPS as readonly string[]).includes(r.source)) assert.ok(r.compute, `${r.key}: a group row needs its compute`);
    else assert.equal(r.compute, undefined, `${r.key}: ${r.source} rows are computed there, not by the walk`);
    if (r.needs) assert.ok((METRIC_GROUPS as readonly string[]).includes(r.needs));
  }
  assert.deepEqual([...COMPUTE_ORDER].sort(), [...METRIC_GROUPS].sort(), 'the walk computes every group');
  for (const g of METRIC_GROUPS) assert.match(metricGroupsHelp(), new RegExp(`${g} \\(`), `--metrics help names ${g}`);
  assert.equal(metricRow('probe_heldout_accuracy')?.source, 'probe');
  assert.equal(metricRow('no_such_metric'), undefined);
});

async function mlpAudit(dir: string, bufferPerClass: number, metrics: Parameters<typeof audit>[0]['metrics'], baseline: boolean): Promise<Report> {
  const res = await audit({
    models: [{ path: MLP }],
    dataset: 'fashion-mnist',
    perClass: 20,
    seed: 0,
    bufferPerClass,
    metrics,
    baseline: baseline ? 'random-layer' : 'none',
    out: path.join(dir, `b${bufferPerClass}`),
  });
  const written = JSON.parse(await readFile(path.join(res.outDir, 'report.json'), 'utf8')) as Report;
  reportSchema.parse(written);
  return written;
}

test('on the shipped MLP every row is reported finite, and the exact/sampled flag matches what each metric does', async () => {
  const dir = await tempDir();
  const small = await mlpAudit(dir, 10, [...METRIC_GROUPS], true);
  const full = await mlpAudit(dir, 20, [...METRIC_GROUPS], true);
  const layers = small.models[0]!.layers;
  const written = new Set(layers.flatMap((l) => Object.keys(l.metrics)));
  for (const r of LAYER_ROWS()) {
    assert.ok(written.has(r.key), `${r.key} is written by a full audit`);
    for (const l of layers) {
      const m = l.metrics[r.key];
      if (!m) {
        assert.ok(['nc3', 'baseline_width_ratio', 'baseline_probe_heldout_accuracy', 'baseline_mdlsm_heldout_kappa', 'excess_probe_heldout_accuracy', 'excess_mdlsm_heldout_kappa'].includes(r.key), `${r.key} missing at ${l.id}`);
        continue;
      }
      assert.equal(m.failed, undefined, `${r.key} at ${l.id} failed: ${m.failed}`);
      assert.ok(typeof m.value === 'number' && Number.isFinite(m.value), `${r.key} at ${l.id} is finite (got ${m.value})`);
      // A sampled row on a buffer smaller than N says so; an exact one does not.
      assert.ok(l.samples.buffered < l.samples.streamed);
      if (r.basis === 'sampled' && r.source !== 'baseline' && r.source !== 'probe') assert.deepEqual([m.basis?.n, m.basis?.sampled], [l.samples.buffered, true], `${r.key} carries its basis`);
      // The probe keeps its own larger sample (here every image: 20 per class < 1,000).
      if (r.source === 'probe') assert.deepEqual([m.basis?.n, m.basis?.sampled], [l.samples.streamed, false], `${r.key}: the probe sees all ${l.samples.streamed} images`);
      if (r.basis === 'exact') assert.equal(m.basis, undefined, `${r.key} is exact`);
    }
  }
  // Exact rows come from the streaming statistics over all N: the buffer size cannot move them.
  for (const r of LAYER_ROWS().filter((x) => x.basis === 'exact')) {
    for (const [i, l] of layers.entries()) {
      const a = l.metrics[r.key]?.value;
      const b = full.models[0]!.layers[i]!.metrics[r.key]?.value;
      if (a === undefined) continue;
      assert.ok(a !== null && b !== null && b !== undefined && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${r.key} at ${l.id}: ${a} (buffer 10) vs ${b} (buffer 20)`);
    }
  }
  // With the whole selection in the buffer nothing is sampled, so nothing carries a basis.
  for (const l of full.models[0]!.layers) for (const [k, m] of Object.entries(l.metrics)) if (metricRow(k)?.source !== 'baseline') assert.notEqual(m.basis?.sampled, true, k);
  // And a sampled row does change with the rows it sees (so its flag is not decoration).
  const moved = LAYER_ROWS().filter((r) => r.basis === 'sampled' && r.source !== 'baseline' && layers.some((l, i) => l.metrics[r.key]?.value !== full.models[0]!.layers[i]!.metrics[r.key]?.value));
  assert.ok(moved.length >= 5, `sampled rows that moved with the buffer: ${moved.map((r) => r.key).join(', ')}`);
});

/** The same images under permuted class ids: class k of the first dataset is π(k) in the second. */
async function relabelled(dir: string, perm: readonly number[]): Promise<{ a: string; b: string }> {
  const n = 240;
  const k = perm.length;
  const a = await writeIdxDataset(path.join(dir, 'a'), n, k, { seed: 5 });
  const { images, labels } = syntheticImages(n, k, 5, 8);
  const permuted = Uint8Array.from(labels, (y) => perm[y]!);
  const bytes = idxBytes(images, n, 8, 8, permuted);
  const bdir = path.join(dir, 'b');
  await writeIdxDataset(bdir, n, k, { seed: 5 });
  await writeFile(path.join(bdir, 't10k-labels-idx1-ubyte.gz'), gzipSync(bytes.labels));
  return { a: a.images, b: path.join(bdir, 't10k-images-idx3-ubyte.gz') };
}

/**
 * Rows that depend on which index a class has, not only on the partition: NC3 and NC4 compare
 * class means with the classifier's output units (unit k is class k).
 */
const INDEX_DEPENDENT = new Set(['nc3', 'nc4']);
/**
 * Rows invariant only in distribution today: the probe's stratified split and MD-LSM's seeded
 * splits, candidate directions and label permutations are drawn walking the classes in id order,
 * so renaming classes redraws them (measured: held-out probe accuracy moved 0.375 → 0.264 on 72
 * held-out rows of a near-chance random MLP; κ by up to 0.03). Reported to the metrics side; the
 * test pins that nothing else moves.
 */
const SPLIT_FOLLOWS_CLASS_IDS = /^(probe_|mdlsm_|baseline_probe_|excess_probe_|baseline_mdlsm_|excess_mdlsm_)/;

test('the metrics are invariant to relabelling the classes (a permutation of the label ids), except those tied to output units or seeded splits', async () => {
  const dir = await tempDir();
  const perm = [2, 0, 3, 1];
  const { a, b } = await relabelled(dir, perm);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 16, 8, 4], 11));
  const run = async (data: string, name: string) =>
    (await audit({ models: [{ path: model }], dataset: data, metrics: ['geometry', 'collapse', 'rank', 'probe', 'mdlsm'], out: path.join(dir, name) })).report;
  const ra = await run(a, 'ra');
  const rb = await run(b, 'rb');
  let compared = 0;
  const bad: string[] = [];
  for (const [i, la] of ra.models[0]!.layers.entries()) {
    const lb = rb.models[0]!.layers[i]!;
    for (const [k, ma] of Object.entries(la.metrics)) {
      if (INDEX_DEPENDENT.has(k)) continue;
      const split = SPLIT_FOLLOWS_CLASS_IDS.test(k);
      const va = ma.value;
      const vb = lb.metrics[k]!.value;
      assert.ok(va !== null && vb !== null, `${k} finite`);
      if (split) continue;
      if (!(Math.abs(va - vb) <= 1e-6 * Math.max(1, Math.abs(va)))) bad.push(`${la.id} ${k}: ${va} vs ${vb}`);
      compared++;
    }
  }
  assert.deepEqual(bad, []);
  assert.ok(compared >= 14, `compared ${compared} values`);
});

test('a compute that throws fails only its own cells: NaN→null with the reason everywhere, every other number stands', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 120, 3, { seed: 2 });
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3], 4));
  const reference = (await audit({ models: [{ path: model }], dataset: data.images, metrics: ['geometry', 'rank'], out: path.join(dir, 'ref') })).report;
  const unregister = registerMetric({
    key: 'test_always_fails',
    source: 'geometry',
    family: 'geometry',
    definition: 'a test row whose compute always throws',
    label: 'always fails',
    short: 'boom',
    legend: 'boom = a test row that always fails',
    better: 'none',
    basis: 'exact',
    compute: {
      id: 'test_always_fails',
      run: async ({ samples }) => {
        throw new Error(`deliberate failure on ${samples.n} rows\nsecond line is dropped`);
      },
    },
  });
  try {
    const res = await audit({ models: [{ path: model }], dataset: data.images, metrics: ['geometry', 'rank'], out: path.join(dir, 'fail'), failUnder: ['compression@all=0'] });
    const json = JSON.parse(await readFile(path.join(res.outDir, 'report.json'), 'utf8')) as Report;
    for (const [i, l] of json.models[0]!.layers.entries()) {
      const cell = l.metrics.test_always_fails!;
      assert.equal(cell.value, null, 'NaN is null in report.json');
      assert.equal(cell.failed, `deliberate failure on ${l.samples.buffered} rows`);
      // Every other number equals the run without the failing row.
      const ref = reference.models[0]!.layers[i]!;
      for (const [k, m] of Object.entries(ref.metrics)) assert.equal(l.metrics[k]!.value, m.value, `${l.id} ${k}`);
    }
    const summary = await readFile(path.join(res.outDir, 'summary.txt'), 'utf8');
    assert.match(summary, /boom/);
    assert.match(summary, /failed¹/);
    assert.match(summary, /¹ mlp \S+ test_always_fails: deliberate failure on \d+ rows/);
    assert.match(summary, /failed: the metric could not be computed for this layer/);
    const html = await readFile(path.join(res.outDir, 'report.html'), 'utf8');
    assert.match(html, /<td class="num failed"[^>]*>failed<sup>/);
    assert.match(html, /id="fn-1"[^>]*>.*test_always_fails.*deliberate failure/);
    const csv = await readFile(path.join(res.outDir, 'metrics.csv'), 'utf8');
    assert.match(csv, /,test_always_fails,,,,,deliberate failure on \d+ rows\n/);
    // A gate on a failed cell fails; one on a sound metric still passes.
    const gates = evaluateGates(json, [parseGate('test_always_fails@any=0', 'under'), parseGate('compression@all=0', 'under')]);
    assert.equal(gates[0]!.passed, false);
    assert.match(gates[0]!.detail, /failed \(deliberate failure/);
    assert.equal(gates[1]!.passed, true);
  } finally {
    unregister();
  }
  assert.equal(metricRow('test_always_fails'), undefined);
});

/** Runs the real CLI in a child process that first registers a throwing catalogue row. */
function cliWithFailingRow(args: string[]): { code: number; stdout: string; stderr: string } {
  const script = `
    import { registerMetric } from ${JSON.stringify(path.join(ROOT, 'src/metrics/catalog.ts'))};
    import { runCli } from ${JSON.stringify(path.join(ROOT, 'src/cli/main.ts'))};
    registerMetric({ key: 'test_always_fails', source: 'rank', family: 'rank', definition: 'a test row whose compute always throws', label: 'always fails',
      short: 'boom', legend: 'boom = a test row that always fails', better: 'none', basis: 'sampled',
      compute: { id: 'boom', run: async () => { throw new Error('deliberate failure'); } } });
    await runCli(${JSON.stringify(args)});
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CI: '1' }, timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('the CLI writes the report and exits 4 when metric cells failed, 3 when a gate is on a failed cell', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 90, 3, { seed: 3 });
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3], 5));
  const out = path.join(dir, 'run');
  const r = cliWithFailingRow(['audit', '-m', model, '-d', data.images, '--metrics', 'geometry,rank', '-o', out]);
  assert.equal(r.code, 4, r.stderr);
  const errLines = r.stderr.trim().split('\n').filter((l) => l.startsWith('layerprobe: error:'));
  assert.equal(errLines.length, 1, r.stderr);
  assert.match(errLines[0]!, /report written, 2 metric cells failed \(first: mlp \S+ test_always_fails: deliberate failure\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  assert.match(r.stdout, /boom[\s\S]*failed¹/);
  const json = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.ok(json.models[0]!.layers.every((l) => l.metrics.test_always_fails?.failed === 'deliberate failure' && l.metrics.compression?.value !== null));
  for (const f of ['summary.txt', 'report.html', 'metrics.csv']) assert.ok(existsSync(path.join(out, f)), f);
  const g = cliWithFailingRow(['audit', '-m', model, '-d', data.images, '--metrics', 'geometry,rank', '-o', path.join(dir, 'gated'), '--fail-under', 'test_always_fails=0', '-q']);
  assert.equal(g.code, 3, g.stderr);
  assert.match(g.stderr, /gate failed: --fail-under test_always_fails=0 \(mlp test_always_fails \S+=failed \(deliberate failure\)/);
  assert.ok(existsSync(path.join(dir, 'gated', 'report.json')));
});

test('adding a metric is one registered row + function: it appears in the report, table, gates, summary, CSV, HTML and --metrics help', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 90, 3, { seed: 6 });
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([64, 12, 7, 3], 6));
  // The value is the buffer's row count, which the report states independently (samples.buffered).
  const unregister = registerMetric({
    key: 'dummy_buffer_rows',
    source: 'rank',
    family: 'rank',
    definition: 'the number of rows in the layer sample buffer (a test metric)',
    label: 'dummy rows',
    short: 'dummy',
    legend: 'dummy = rows in the sample buffer (test)',
    better: 'none',
    basis: 'sampled',
    compute: { id: 'dummy', run: async ({ samples }) => [{ name: 'dummy_buffer_rows', value: samples.n, definition: 'rows in the sample buffer' }] },
  });
  try {
    assert.match(metricGroupsHelp(), /rank \(numerical_rank, effective_rank, dummy_buffer_rows\)/);
    checkGateMetrics([parseGate('dummy_buffer_rows=1', 'under')], ['rank'], false);
    assert.throws(() => checkGateMetrics([parseGate('dummy_buffer_rows=1', 'under')], ['geometry'], false), (e: unknown) => e instanceof UsageError && /comes from the rank metrics/.test(e.message));
    const res = await audit({ models: [{ path: model }], dataset: data.images, metrics: ['geometry', 'rank'], bufferPerClass: 10, baseline: 'none', out: path.join(dir, 'run'), failUnder: ['dummy_buffer_rows@all=1'] });
    const report = res.report;
    for (const l of report.models[0]!.layers) assert.equal(l.metrics.dummy_buffer_rows?.value, l.samples.buffered);
    assert.equal(res.gates[0]!.passed, true);
    assert.deepEqual(Object.keys(report.models[0]!.layers[0]!.metrics), ['compression', 'discrimination', 'numerical_rank', 'effective_rank', 'dummy_buffer_rows']);
    const summary = renderSummary(report);
    assert.match(summary, /rank95\s+dummy/);
    assert.match(summary, /dummy = rows in the sample buffer \(test\)/);
    assert.match(summary, / 30ˢ/, 'a sampled value is marked');
    assert.match(summary, /ˢ sampled: computed on the layer's sample buffer, not on all N images \(n = 30 of N = 90\)/);
    assert.match(metricsCsv(report), /,dummy_buffer_rows,30,,,30,\n/);
    const html = await renderHtml(report);
    assert.match(html, /data-metric="dummy_buffer_rows"[^>]*>dummy rows</);
    assert.match(html, /<dt id="def-dummy_buffer_rows">/);
    assert.match(html, /docs: docs\/metrics\/rank\.md#dummy_buffer_rows/);
  } finally {
    unregister();
  }
});
