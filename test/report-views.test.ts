/**
 * The report's overview views on a real audit: a dataset where two classes are drawn from the
 * same distribution (so they cannot be told apart at any layer) and two that differ. The hard pair
 * must be the top hardest pair at every layer, and the overview sentence (summary.txt and HTML)
 * must say so. The other sentences are checked against a plain recomputation from the numbers.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { audit } from '../src/pipeline/audit.js';
import { renderSummary } from '../src/report/summary.js';
import { renderHtml } from '../src/report/html.js';
import { hardestPairs } from '../src/report/class-pairs.js';
import { compressionSentence, probeSentence } from '../src/report/findings.js';
import type { Report } from '../src/report/schema.js';
import { Rng } from '../src/util/rng.js';
import { synchronicity } from '../src/train/synchronicity.js';
import type { MonitorCheckpoint, MonitorLayerPoint } from '../src/report/monitor-schema.js';
import { correlate, differences } from '../src/stats/correlation.js';
import { idxBytes, randomMlp, tempDir, writeOnnxMlp } from './helpers/fixtures.js';

const K = 4;
const SIDE = 8;
/** Class c draws its pixels around pattern PATTERN[c]: classes 0 and 1 share one. */
const PATTERN = [0, 0, 1, 2];

async function hardPairDataset(dir: string, perClass: number): Promise<{ images: string }> {
  const rng = new Rng(11);
  const n = perClass * K;
  const images = new Uint8Array(n * SIDE * SIDE);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % K;
    labels[i] = c;
    for (let p = 0; p < SIDE * SIDE; p++) {
      const base = ((p + PATTERN[c]! * 5) % 6) * 40;
      images[i * SIDE * SIDE + p] = Math.max(0, Math.min(255, Math.round(base + rng.normal() * 30)));
    }
  }
  const b = idxBytes(images, n, SIDE, SIDE, labels);
  await mkdir(dir, { recursive: true });
  const ip = path.join(dir, 't10k-images-idx3-ubyte');
  await writeFile(ip, b.images);
  await writeFile(path.join(dir, 't10k-labels-idx1-ubyte'), b.labels);
  return { images: ip };
}

let report: Report;

before(async () => {
  const dir = await tempDir('lp-views-');
  const data = await hardPairDataset(path.join(dir, 'data'), 60);
  const model = path.join(dir, 'mlp.onnx');
  await writeOnnxMlp(model, randomMlp([SIDE * SIDE, 24, 16, K], 7));
  report = (await audit({ models: [{ path: model }], dataset: data.images, perClass: 60, metrics: ['geometry', 'probe', 'mdlsm'], baselineDraws: 3, out: path.join(dir, 'run'), force: true })).report;
});

test('two classes from one distribution: the top hardest pair at every layer, and the overview says so', { timeout: 300_000 }, async () => {
  const m = report.models[0]!;
  assert.ok(m.layers.length >= 2, 'at least two measured layers');
  const h = hardestPairs(m, K);
  assert.equal(h.layers.length, m.layers.length, 'every layer has pair scores');
  for (const lp of h.layers) {
    assert.deepEqual([lp.pairs[0]!.k, lp.pairs[0]!.l], [0, 1], `${lp.layer.id}: classes 0 and 1 are the hardest pair`);
    // The score is 1 − κ of the pair as the layer's κ matrix records it.
    const kappa = (lp.layer.metrics.mdlsm_heldout_kappa?.detail?.matrix as (number | null)[][])[0]![1]!;
    assert.ok(Math.abs(lp.pairs[0]!.score - (1 - kappa)) < 1e-12);
  }
  assert.deepEqual(h.top && [h.top.k, h.top.l, h.top.layers.length], [0, 1, m.layers.length]);
  const c = report.dataset.classes;
  const sentence = `Hardest class pair: ${c[0]} vs ${c[1]}, the least separable pair at every layer`;
  assert.ok(renderSummary(report).includes(sentence), 'summary.txt says it');
  const page = await renderHtml(report);
  const overview = page.slice(page.indexOf('<section id="overview">'), page.indexOf('</section>', page.indexOf('<section id="overview">')));
  assert.ok(overview.includes(sentence), 'the HTML overview says it');
});

test('the compression and probe sentences name the layers a plain recomputation finds', () => {
  const m = report.models[0]!;
  const C = m.layers.map((l) => l.metrics.compression!.value!);
  let drop = 1;
  let at = -1;
  for (let i = 1; i < C.length; i++) if (C[i]! / C[i - 1]! < drop) [drop, at] = [C[i]! / C[i - 1]!, i];
  const cs = compressionSentence(m)!;
  if (at < 0) assert.match(cs, /does not fall with depth/);
  else assert.ok(cs.includes(`between ${m.layers[at - 1]!.id} and ${m.layers[at]!.id}`) && cs.includes(`×${drop.toFixed(2)}`), cs);
  const P = m.layers.map((l) => l.metrics.probe_heldout_accuracy!.value!);
  const best = Math.max(...P);
  const first = P.findIndex((p) => p >= best - 0.01);
  const ps = probeSentence(m)!;
  if (first === P.length - 1) assert.ok(ps.includes(`keeps rising to the last layer`) && ps.includes(m.layers[first]!.id), ps);
  else assert.ok(ps.includes(`saturates at ${m.layers[first]!.id}`), ps);
});

test('overview cells: shaded by the catalogue direction, excess cells marked when no better than random', async () => {
  const page = await renderHtml(report);
  const start = page.indexOf('<section id="overview">');
  const overview = page.slice(start, page.indexOf('</section>', start));
  const m = report.models[0]!;
  // The best layer by C (lower is better) gets the best shade q4, the worst q0.
  const C = m.layers.map((l) => l.metrics.compression!.value!);
  const cellOf = (v: number) => new RegExp(`<td class="num ([^"]*)" data-v="${String(v).replace(/[.+]/g, '\\$&')}" data-metric="compression"`).exec(overview)?.[1];
  assert.equal(cellOf(Math.min(...C)), 'q4');
  assert.equal(cellOf(Math.max(...C)), 'q0');
  let seen = 0;
  for (const l of m.layers) {
    const r = l.metrics.excess_probe_heldout_accuracy;
    if (!r) continue;
    seen++;
    const nb = r.detail?.noBetterThanRandom;
    const re = new RegExp(`<td class="num (ex-[a-z]+)" data-v="${String(r.value).replace(/[.+]/g, '\\$&')}" data-metric="excess_probe_heldout_accuracy"[^>]*>([^<]*)(.*?)</td>`);
    const hit = re.exec(overview);
    assert.ok(hit, `${l.id}: excess cell`);
    assert.equal(hit[1], nb === false ? 'ex-good' : nb === true ? (r.ci![1] < 0 ? 'ex-bad' : 'ex-none') : undefined);
    assert.equal(hit[3]!.includes('≈'), nb === true, `${l.id}: ≈ mark iff no better than random`);
  }
  assert.equal(seen, m.layers.length, 'the default audit has the probe excess at every layer');
});

test('monitor: with too few checkpoints no layer is named as tracking training; it says undetermined and why', () => {
  const point = (layer: string, k: number): MonitorLayerPoint => ({
    layer, kappa: k, kappaWorst: null, kappaHeldOut: null, kappaHeldOutWorst: null, kappaNull: null, kappaReduction: 'none',
    compression: null, discrimination: null, probeAccuracy: null, probeTrainAccuracy: null, seconds: { kappa: 0, geometry: 0, probe: 0 },
  });
  const run = (acc: number[], kappa: Record<string, number[]>): ReturnType<typeof synchronicity> => {
    const cps: MonitorCheckpoint[] = acc.map((a, t) => ({
      index: t, epoch: t, step: t * 10, epochProgress: t, endOfEpoch: true, trainLoss: 1 - a, trainAccuracy: a,
      runningLoss: null, runningAccuracy: null, testLoss: null, testAccuracy: null, seconds: 0, forwardSeconds: 0,
      layers: Object.keys(kappa).map((l) => point(l, kappa[l]![t]!)),
    }));
    return synchronicity(cps, Object.keys(kappa));
  };
  // Three checkpoints: the levels have a Pearson value (3 points) but the changes during training
  // (one change) have none, so the ranking key is undefined for every layer.
  const acc3 = [0.1, 0.6, 0.8];
  const k3 = { A: [0.6, 0.8, 0.9], B: [0.6, 0.7, 0.95] };
  assert.notEqual(correlate(k3.A, acc3).pearson, null, 'levels are defined');
  assert.equal(correlate(differences(k3.A.slice(1)), differences(acc3.slice(1))).pearson, null, 'changes during training are not');
  const s3 = run(acc3, k3);
  assert.equal(s3.best, null);
  assert.deepEqual(s3.ranking, []);
  assert.match(s3.undetermined ?? '', /^undetermined \(too few checkpoints: correlations undefined/);
  // Enough checkpoints: a layer is named and nothing is undetermined.
  const s5 = run([0.1, 0.5, 0.7, 0.8, 0.85], { A: [0.6, 0.8, 0.9, 0.95, 0.975], B: [0.5, 0.9, 0.6, 0.95, 0.7] });
  assert.equal(s5.best, 'A');
  assert.equal(s5.undetermined, undefined);
});

test('confusion matrices and per-class C_k agree with the totals the report states independently', () => {
  const m = report.models[0]!;
  const acc = m.accuracy!;
  const out = acc.detail!.confusion as number[][];
  const sum = (c: number[][]) => c.flat().reduce((s, v) => s + v, 0);
  const diag = (c: number[][]) => c.reduce((s, row, k) => s + row[k]!, 0);
  assert.equal(out.length, K);
  assert.equal(sum(out), acc.detail!.n, 'the output confusion counts every image');
  assert.equal(diag(out), acc.detail!.correct, 'its diagonal is the correct count');
  out.forEach((row, k) => assert.equal(row.reduce((s, v) => s + v, 0), report.dataset.perClassCounts[k], `row ${k} sums to the class count`));
  for (const l of m.layers) {
    const p = l.metrics.probe_heldout_accuracy!;
    const c = p.detail!.confusion as number[][];
    assert.equal(sum(c), p.detail!.nHeldOut, `${l.id}: every held-out row counted once`);
    assert.ok(Math.abs(diag(c) / sum(c) - p.value!) < 1e-12, `${l.id}: diagonal share = held-out accuracy`);
    // C is the count-weighted mean of the per-class C_k.
    const ck = l.metrics.compression!.detail!.perClass as number[];
    const n = report.dataset.perClassCounts;
    const N = n.reduce((s, v) => s + v, 0);
    const weighted = ck.reduce((s, v, k) => s + (n[k]! * v) / N, 0);
    assert.ok(Math.abs(weighted - l.metrics.compression!.value!) <= 1e-9 * l.metrics.compression!.value!, `${l.id}: Σ n_k C_k / N = C`);
  }
  // report.json's views hold the same hardest pair as the overview sentence.
  assert.deepEqual(m.views?.hardestPairs?.pairs[0]?.classes, [report.dataset.classes[0], report.dataset.classes[1]]);
  assert.deepEqual(m.views?.hardestPairs?.pairs[0]?.hardestAt, m.layers.map((l) => l.id));
});
