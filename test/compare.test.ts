import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { reportSchema } from '../src/report/schema.js';
import type { MetricRow } from '../src/report/records.js';
import { cli, randomMlp, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

test('compare: one record per (model, layer, metric), CSV, CKA = 1 between a model and its copy', async () => {
  const dir = await tempDir();
  const data = await writeIdxDataset(path.join(dir, 'data'), 120, 3, { seed: 9 });
  const a = path.join(dir, 'a.onnx');
  const b = path.join(dir, 'b.onnx');
  await writeOnnxMlp(a, randomMlp([64, 10, 6, 3], 1));
  await writeOnnxMlp(b, randomMlp([64, 10, 6, 3], 2));
  const out = path.join(dir, 'cmp');
  const r = cli(['compare', '--models', `${a},${b},${a}`, '-d', data.images, '--metrics', 'geometry,probe', '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as MetricRow[];
  const report = reportSchema.parse(JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')));
  assert.deepEqual(report.models.map((m) => m.name), ['a', 'b', 'a-2']);
  const expected = report.models.reduce((s, m) => s + (m.accuracy ? 1 : 0) + m.layers.reduce((t, l) => t + Object.keys(l.metrics).length, 0), 0);
  assert.equal(rows.length, expected);
  assert.ok(rows.every((x) => ['a', 'b', 'a-2'].includes(x.model)));
  const csv = (await readFile(path.join(out, 'metrics.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, rows.length + 1);
  const sim = report.similarity!;
  assert.equal(sim.layers.length, 6);
  const idx = (model: string, layer: string) => sim.layers.findIndex((l) => l.model === model && l.layer === layer);
  for (const layer of ['h1', 'h2']) {
    assert.ok(Math.abs(sim.matrix[idx('a', layer)]![idx('a-2', layer)]! - 1) < 1e-6, 'a copy of a model is CKA-identical');
    assert.ok(sim.matrix[idx('a', layer)]![idx('b', layer)]! < 0.999, 'another model is not');
  }
  for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) assert.equal(sim.matrix[i]![j], sim.matrix[j]![i]);
  // The page holds exactly the models and layers of report.json.
  const html = await readFile(path.join(out, 'report.html'), 'utf8');
  for (const m of report.models) for (const l of m.layers) assert.ok(html.includes(`data-model="${m.name}"`) && html.includes(`data-layer="${l.id}"`));
});
