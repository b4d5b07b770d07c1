/**
 * Monitoring during training: correlations against plain implementations, the option syntaxes,
 * a real monitored run on Fashion-MNIST whose last checkpoint must equal the metrics recomputed
 * here from the saved model's activations of the same probe subset, the CLI's exit 2 on bad
 * syntax, and a 2-cell sweep end to end. Runs that need the Fashion-MNIST training split are
 * skipped where it is not installed.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDataset } from '../src/data/open.js';
import { datasetInfo } from '../src/data/registry.js';
import { UsageError } from '../src/errors.js';
import { compressionFromSamples, discriminationFromSamples } from '../src/metrics/geometry.js';
import { linearProbe } from '../src/metrics/probe.js';
import { mdlsm } from '../src/metrics/separability/index.js';
import { openTfjsModel } from '../src/runtime/tfjs.js';
import type { SampleMatrix } from '../src/stats/sample-buffer.js';
import { averageRanks, correlate, differences, pearson, spearman } from '../src/stats/correlation.js';
import type { MonitorCheckpoint, MonitorLayerPoint, MonitorResult } from '../src/report/monitor-schema.js';
import { MONITOR_CSV_COLUMNS } from '../src/report/monitor-text.js';
import { parseMonitorSpec, parseProbeSet, probePerClass, selectProbeSet } from '../src/train/monitor-options.js';
import { synchronicity } from '../src/train/synchronicity.js';
import { cellName, parseSweep, sweepCells, type SweepResult } from '../src/train/sweep.js';
import { loadTrainingData, type TrainingData } from '../src/train/data.js';
import { train, type TrainResult } from '../src/train/train.js';
import { cli, tempDir } from './helpers/fixtures.js';

let tmp: string;
let hasTrain = false;
/** Decoded once for the in-process runs. */
let data: TrainingData | undefined;

before(async () => {
  tmp = await tempDir('lp-monitor-');
  hasTrain = (await datasetInfo('fashion-mnist')).splits.train.available;
  if (hasTrain) data = await loadTrainingData('fashion-mnist');
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

// Plain textbook versions to check against.
function plainPearson(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < n; i++) {
    num += (x[i]! - mx) * (y[i]! - my);
    dx += (x[i]! - mx) ** 2;
    dy += (y[i]! - my) ** 2;
  }
  return num / Math.sqrt(dx * dy);
}

/** Rank of v = 1 + #{smaller} + (#{equal} − 1)/2: the average-rank definition, counted directly. */
function plainRanks(x: number[]): number[] {
  return x.map((v) => 1 + x.filter((u) => u < v).length + (x.filter((u) => u === v).length - 1) / 2);
}

function plainSpearman(x: number[], y: number[]): number {
  return plainPearson(plainRanks(x), plainRanks(y));
}

describe('correlations', () => {
  test('Pearson and Spearman equal plain implementations, ties included', () => {
    const cases: [number[], number[]][] = [
      [[1, 2, 3, 4, 5], [2, 4, 5, 4, 5]],
      [[0.5, 0.7, 0.7, 0.9, 0.95, 0.95, 0.96], [0.1, 0.3, 0.2, 0.8, 0.8, 0.85, 0.9]],
      [[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]],
      [[-1, 0, 1], [1, 0, -1]],
    ];
    for (const [x, y] of cases) {
      assert.ok(Math.abs(pearson(x, y)! - plainPearson(x, y)) < 1e-12, `pearson ${x}`);
      assert.ok(Math.abs(spearman(x, y)! - plainSpearman(x, y)) < 1e-12, `spearman ${x}`);
      assert.deepEqual(averageRanks(x), plainRanks(x));
    }
    // A monotone but non-linear relation: Spearman 1, Pearson below 1.
    const x = [1, 2, 3, 4, 5, 6];
    const y = x.map((v) => Math.exp(v));
    assert.equal(spearman(x, y), 1);
    assert.ok(pearson(x, y)! < 0.95);
  });

  test('undefined cases are null, not NaN; missing values are dropped pairwise', () => {
    assert.equal(pearson([1, 2], [3, 4]), null);
    assert.equal(pearson([1, 1, 1], [1, 2, 3]), null);
    assert.equal(spearman([1, 2, 3], [5, 5, 5]), null);
    assert.deepEqual(differences([1, 3, null, 4, 6]), [2, null, null, 2]);
    const c = correlate([1, null, 3, 4, 5], [2, 9, 3, 5, 4]);
    assert.equal(c.n, 4);
    assert.ok(Math.abs(c.pearson! - plainPearson([1, 3, 4, 5], [2, 3, 5, 4])) < 1e-12);
  });
});

describe('option syntax', () => {
  test('--monitor', () => {
    assert.deepEqual(parseMonitorSpec(''), { unit: 'epoch', every: 1, initial: true, heldOut: true, permutations: 0, probe: true });
    assert.equal(parseMonitorSpec('every=3').every, 3);
    assert.deepEqual({ ...parseMonitorSpec('every=500steps, heldout=off null=2') }, { unit: 'step', every: 500, initial: true, heldOut: false, permutations: 2, probe: true });
    assert.equal(parseMonitorSpec('every=2epochs,initial=off').initial, false);
    for (const bad of ['every=0', 'every=1.5', 'every=5min', 'evry=1', 'every', 'heldout=maybe', 'every=1,every=2', 'null=-1']) {
      assert.throws(() => parseMonitorSpec(bad), UsageError, bad);
    }
    assert.throws(() => parseMonitorSpec('evry=1'), /valid keys: every, initial, heldout, null, probe/);
  });

  test('--probe-set and the stratified, seeded subset', () => {
    assert.deepEqual(parseProbeSet('200/class'), { perClass: 200 });
    assert.deepEqual(parseProbeSet('2000'), { total: 2000 });
    assert.equal(probePerClass({ total: 2000 }, 10), 200);
    for (const bad of ['200/klass', 'abc', '0', '5/class', '-3']) assert.throws(() => parseProbeSet(bad), UsageError, bad);
    assert.throws(() => probePerClass({ total: 50 }, 10), /at least 10 per class/);
    const labels = Int32Array.from({ length: 300 }, (_, i) => (i * 7) % 3);
    const a = selectProbeSet(labels, 3, 20, 4);
    assert.equal(a.length, 60);
    assert.deepEqual([0, 1, 2].map((k) => Array.from(a).filter((i) => labels[i] === k).length), [20, 20, 20]);
    assert.deepEqual(Array.from(a), Array.from(a).sort((x, y) => x - y));
    assert.deepEqual(selectProbeSet(labels, 3, 20, 4), a);
    assert.notDeepEqual(selectProbeSet(labels, 3, 20, 5), a);
  });

  test('--sweep: keys the arch accepts, typed values, the grid', () => {
    const axes = parseSweep(['activation=relu,tanh', 'width=64,256 depth=2'], 'mlp');
    assert.deepEqual(axes, [
      { key: 'activation', values: ['relu', 'tanh'] },
      { key: 'width', values: [64, 256] },
      { key: 'depth', values: [2] },
    ]);
    const cells = sweepCells(axes);
    assert.equal(cells.length, 4);
    assert.deepEqual(cells.map(cellName), ['activation-relu_width-64_depth-2', 'activation-relu_width-256_depth-2', 'activation-tanh_width-64_depth-2', 'activation-tanh_width-256_depth-2']);
    assert.throws(() => parseSweep(['heads=2'], 'mlp'), /not a key mlp accepts \(valid: activation, width, depth, lr, seed\)/);
    assert.throws(() => parseSweep(['activation=relu,swish'], 'mlp'), /unknown activation \(valid: relu, tanh, sigmoid/);
    assert.throws(() => parseSweep(['width=64,abc'], 'mlp'), UsageError);
    assert.throws(() => parseSweep(['width=64,64'], 'mlp'), /listed twice/);
    assert.throws(() => parseSweep(['width=64', 'width=128'], 'mlp'), /given twice/);
    assert.throws(() => parseSweep(['width'], 'mlp'), UsageError);
    assert.deepEqual(parseSweep(['heads=2,4'], 'vit'), [{ key: 'heads', values: [2, 4] }]);
  });
});

describe('a monitored training run on Fashion-MNIST', () => {
  let run: TrainResult | null = null;
  const out = (): string => path.join(tmp, 'mlp');

  before(async () => {
    if (!hasTrain) return;
    run = await train({
      arch: 'mlp', dataset: 'fashion-mnist', out: out(), seed: 3, width: 32, depth: 2, epochs: 2, batchSize: 50, limit: 1000, testLimit: 500,
      evalTrain: false, monitor: 'every=1', probeSet: '30/class', data,
    });
  });

  test('checkpoints every k steps; monitoring leaves the trained weights unchanged', async (t) => {
    if (!data) return t.skip('fashion-mnist training split not installed');
    const common = { arch: 'mlp', dataset: 'fashion-mnist', seed: 1, width: 16, depth: 1, epochs: 2, batchSize: 50, limit: 1000, testLimit: 200, evalTrain: false, data } as const;
    // 20 steps per epoch: checkpoints before training, at steps 15 and 30, and at the end (step 40, with the test evaluation).
    const a = await train({ ...common, out: path.join(tmp, 'steps'), monitor: 'every=15steps,heldout=off,probe=off', probeSet: '10/class' });
    const cps = a.monitor!.checkpoints;
    assert.deepEqual(cps.map((c) => [c.epoch, c.step, c.endOfEpoch]), [[0, 0, false], [1, 15, false], [2, 30, false], [2, 40, true]]);
    assert.deepEqual(cps.map((c) => c.testAccuracy === null), [true, true, true, false]);
    assert.ok(cps.every((c) => c.layers[0]!.probeAccuracy === null && c.layers[0]!.kappaHeldOut === null && Number.isFinite(c.layers[0]!.kappa!)));
    const b = await train({ ...common, out: path.join(tmp, 'plain') });
    assert.equal(b.monitor, undefined);
    assert.deepEqual(await fs.readFile(path.join(a.outDir, 'weights.bin')), await fs.readFile(path.join(b.outDir, 'weights.bin')));
  });

  test('writes monitor.json, monitor.csv and monitor.html: one row per checkpoint and layer, finite numbers', async (t) => {
    if (!run) return t.skip('fashion-mnist training split not installed');
    const files = await fs.readdir(out());
    for (const f of ['monitor.json', 'monitor.csv', 'monitor.html', 'model.json', 'weights.bin', 'card.json']) assert.ok(files.includes(f), f);
    const m = JSON.parse(await fs.readFile(path.join(out(), 'monitor.json'), 'utf8')) as MonitorResult;
    assert.deepEqual(m.layers.map((l) => l.id), ['dense_1', 'dense_2']);
    // Before training, then after each of the 2 epochs.
    assert.deepEqual(m.checkpoints.map((c) => [c.epoch, c.step]), [[0, 0], [1, 20], [2, 40]]);
    assert.equal(m.probeSet.n, 300);
    assert.deepEqual(m.probeSet.classCounts, new Array(10).fill(30));
    for (const c of m.checkpoints) {
      assert.equal(c.layers.length, 2);
      assert.ok(Number.isFinite(c.trainAccuracy) && Number.isFinite(c.trainLoss));
      if (c.epoch > 0) assert.ok(Number.isFinite(c.testAccuracy!) && Number.isFinite(c.runningAccuracy!));
      for (const l of c.layers) {
        for (const v of [l.kappa, l.kappaHeldOut, l.compression, l.discrimination, l.probeAccuracy, l.kappaWorst?.kappa]) assert.ok(typeof v === 'number' && Number.isFinite(v), `${l.layer}: ${v}`);
        assert.ok(l.kappa! >= 0.5 && l.kappa! <= 1);
      }
    }
    assert.ok(m.checkpoints[2]!.trainAccuracy > m.checkpoints[0]!.trainAccuracy, 'training helped');
    assert.equal(m.synchronicity.layers.length, 2);
    assert.ok(m.synchronicity.layers.every((s) => s.levels.n === 3 && s.changes.n === 2));
    assert.ok(m.timing.monitorSeconds > 0 && m.timing.trainSeconds > 0);

    const csv = (await fs.readFile(path.join(out(), 'monitor.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv[0], MONITOR_CSV_COLUMNS.join(','));
    assert.equal(csv.length, 1 + 3 * 2);
    const kappaCol = MONITOR_CSV_COLUMNS.indexOf('kappa');
    assert.ok(csv.slice(1).every((r) => Number.isFinite(Number(r.split(',')[kappaCol]))));

    const page = await fs.readFile(path.join(out(), 'monitor.html'), 'utf8');
    assert.match(page, /Content-Security-Policy/);
    assert.ok((page.match(/<svg/g) ?? []).length >= 6, 'an accuracy chart and one per metric');
    assert.doesNotMatch(page, /<script|https?:\/\/(?!www\.w3\.org)/);
    const card = JSON.parse(await fs.readFile(path.join(out(), 'card.json'), 'utf8')) as TrainResult['card'];
    assert.equal(card.monitor?.checkpoints, 3);
    assert.ok(card.files?.['monitor.json']);
  });

  test('the last checkpoint equals the metrics recomputed from the saved model on the same probe subset', async (t) => {
    if (!run) return t.skip('fashion-mnist training split not installed');
    const m = run.monitor!;
    const ds = await openDataset('fashion-mnist:train');
    const labels = Int32Array.from(ds.labels);
    // The subset is the documented seeded stratified draw.
    const idx = selectProbeSet(labels, 10, 30, 3);
    assert.deepEqual(m.probeSet.indices, Array.from(idx));
    const batch = await ds.read(idx);
    const x = Float32Array.from(batch.x, (v) => v / 255);
    const runner = await openTfjsModel(out());
    const last = m.checkpoints[m.checkpoints.length - 1]!;
    try {
      const res = await runner.run({ data: x, shape: [idx.length, 28, 28, 1] }, ['dense_1', 'dense_2', 'logits']);
      const y = Int32Array.from(batch.labels);
      const logits = res.get('logits')!.data;
      let hits = 0;
      for (let i = 0; i < idx.length; i++) {
        const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
        if (row.indexOf(Math.max(...row)) === y[i]) hits++;
      }
      assert.equal(last.trainAccuracy, hits / idx.length);
      for (const id of ['dense_1', 'dense_2']) {
        const X = res.get(id)!.data;
        const samples: SampleMatrix = { X, n: idx.length, d: 32, K: 10, labels: y, ids: Int32Array.from(idx) };
        const k = await mdlsm(samples, { seed: 3, maxDimFraction: m.options.kappa.maxDimFraction, permutations: 0, trainFraction: 0.5 });
        const p = await linearProbe(samples, { seed: 3, control: false });
        const got = last.layers.find((l) => l.layer === id)!;
        const close = (a: number | null, b: number | null, what: string): void => assert.ok(a !== null && b !== null && Math.abs(a - b) <= 1e-6, `${id} ${what}: monitor ${a}, recomputed ${b}`);
        close(got.kappa, k.mean, 'κ');
        close(got.kappaHeldOut, k.heldOut!.mean, 'held-out κ');
        close(got.kappaWorst!.kappa, k.worst!.kappa, 'worst κ');
        close(got.compression, compressionFromSamples(samples).value, 'C');
        close(got.discrimination, discriminationFromSamples(samples).value, 'D');
        close(got.probeAccuracy, p.heldOutAccuracy, 'probe accuracy');
        assert.equal(got.kappaReduction, k.reduction.reduction);
      }
    } finally {
      await runner.dispose();
    }
  });
});

describe('the command line', () => {
  test('bad --monitor, --probe-set and --sweep syntax exit 2 before anything is written', () => {
    const cases: [string[], RegExp][] = [
      // (Each spawn costs a CLI start-up; the other bad forms are covered by the parser tests above.)
      [['--monitor', 'every=0'], /--monitor every=0/],
      [['--probe-set', '200/klass'], /--probe-set/],
      [['--sweep', 'heads=2,4'], /not a key mlp accepts \(valid: activation, width, depth, lr, seed\)/],
      [['--heads', '4'], /--heads does not apply to --arch mlp/],
    ];
    for (const [args, pattern] of cases) {
      const o = path.join(tmp, 'cli-bad');
      const r = cli(['train', '--arch', 'mlp', '--out', o, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(existsSync(o), false);
    }
  });

  test('a 2-cell sweep end to end', async (t) => {
    if (!hasTrain) return t.skip('fashion-mnist training split not installed');
    const o = path.join(tmp, 'sweep');
    const r = cli([
      'train', '--arch', 'mlp', '--sweep', 'activation=relu,tanh', '--width', '16', '--depth', '1', '--epochs', '1', '--limit', '500', '--test-limit', '200',
      '--probe-set', '20/class', '--monitor', 'every=1,heldout=off', '--batch-size', '50', '--out', o, '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const printed = (JSON.parse(r.stdout) as { result: { outDir: string; sweep: SweepResult } }).result;
    assert.equal(printed.outDir, o);
    const files = (await fs.readdir(o)).sort();
    assert.deepEqual(files, ['cells', 'sweep.csv', 'sweep.html', 'sweep.json']);
    assert.deepEqual((await fs.readdir(path.join(o, 'cells'))).sort(), ['activation-relu', 'activation-tanh']);
    const s = JSON.parse(await fs.readFile(path.join(o, 'sweep.json'), 'utf8')) as SweepResult;
    assert.equal(s.cells.length, 2);
    for (const c of s.cells) {
      assert.equal(c.status, 'ok');
      assert.deepEqual(c.layers.map((l) => l.layer), ['dense_1']);
      assert.ok(c.layers.every((l) => Number.isFinite(l.kappa!) && Number.isFinite(l.compression!) && Number.isFinite(l.probeAccuracy!) && l.kappaHeldOut === null));
      assert.ok(Number.isFinite(c.testAccuracy!) && Number.isFinite(c.trainAccuracy!));
      assert.ok(c.dir && existsSync(path.join(o, c.dir, 'monitor.json')) && existsSync(path.join(o, c.dir, 'model.json')));
    }
    const csv = (await fs.readFile(path.join(o, 'sweep.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv.length, 1 + 2);
    assert.match(csv[0]!, /^cell,activation,status,train_accuracy,test_accuracy,layer,/);
    const page = await fs.readFile(path.join(o, 'sweep.html'), 'utf8');
    assert.ok((page.match(/<svg/g) ?? []).length >= 4);
    assert.match(page, /activation-tanh/);
  });
});

test('synchronicity ranks layers by how their κ changes track accuracy changes; a flat layer is left out', () => {
  const acc = [0.1, 0.5, 0.7, 0.8, 0.85];
  const kappa: Record<string, number[]> = { A: [0.6, 0.8, 0.9, 0.95, 0.975], B: [0.5, 0.9, 0.6, 0.95, 0.7], C: [0.7, 0.7, 0.7, 0.7, 0.7] };
  const point = (layer: string, k: number): MonitorLayerPoint => ({
    layer, kappa: k, kappaWorst: null, kappaHeldOut: null, kappaHeldOutWorst: null, kappaNull: null, kappaReduction: 'none',
    compression: null, discrimination: null, probeAccuracy: null, probeTrainAccuracy: null, seconds: { kappa: 0, geometry: 0, probe: 0 },
  });
  const checkpoints: MonitorCheckpoint[] = acc.map((a, t) => ({
    index: t, epoch: t, step: t * 10, epochProgress: t, endOfEpoch: true, trainLoss: 1 - a, trainAccuracy: a,
    runningLoss: null, runningAccuracy: null, testLoss: null, testAccuracy: null, seconds: 0, forwardSeconds: 0,
    layers: ['A', 'B', 'C'].map((l) => point(l, kappa[l]![t]!)),
  }));
  const s = synchronicity(checkpoints, ['A', 'B', 'C']);
  // A's κ changes are exactly half the accuracy changes: Pearson 1 on changes.
  const a = s.layers.find((l) => l.layer === 'A')!;
  assert.ok(Math.abs(a.changes.pearson! - 1) < 1e-12);
  const b = s.layers.find((l) => l.layer === 'B')!;
  assert.ok(Math.abs(b.levels.pearson! - plainPearson(kappa.B!, acc)) < 1e-12);
  assert.deepEqual(s.ranking, ['A', 'B']);
  assert.equal(s.best, 'A');
  assert.equal(s.layers.find((l) => l.layer === 'C')!.levels.pearson, null);
});
