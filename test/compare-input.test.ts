/**
 * Per-model input settings (`--input MODEL:key=value,…`) and the accuracy check.
 *
 * The second model is the shipped MLP behind two extra ONNX nodes, x = 0.5·z + 0.5, so it wants
 * its input normalised as z = (x − 0.5)/0.5 and computes exactly the MLP on x: with
 * `--input norm.onnx:mean=0.5,std=0.5` its accuracy must equal the MLP's, in a compare that runs
 * the CNN at its own (default) input beside it, and each model's numbers must equal its own
 * separate audit. Without the setting its accuracy falls, and the run says so, from the
 * `accuracy` its ONNX metadata states and from the history of an earlier run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { main } from '../src/cli/main.js';
import { audit } from '../src/index.js';
import { applyModelInputs, parseModelInput } from '../src/cli/model-input.js';
import { checkAccuracies, farBelow } from '../src/pipeline/accuracy-check.js';
import type { Report } from '../src/report/schema.js';
import { openDataset } from '../src/data/open.js';
import { ROOT, tempDir } from './helpers/fixtures.js';

const PY = '/usr/bin/python3';
const hasOnnxPy = existsSync(PY) && spawnSync(PY, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0;

/** The shipped MLP with x = 0.5·z + 0.5 in front, and `accuracy` in its metadata. */
function writeNormalisedMlp(file: string, statedAccuracy: string): void {
  const script = `
import onnx, sys
from onnx import helper, TensorProto
m = onnx.load(sys.argv[1])
g = m.graph
name = g.input[0].name
for n in g.node:
    for i, x in enumerate(n.input):
        if x == name: n.input[i] = 'lp_denorm'
g.initializer.extend([helper.make_tensor('lp_half', TensorProto.FLOAT, [], [0.5])])
g.node.insert(0, helper.make_node('Add', ['lp_scaled', 'lp_half'], ['lp_denorm']))
g.node.insert(0, helper.make_node('Mul', [name, 'lp_half'], ['lp_scaled']))
del m.metadata_props[:]
for k, v in (('accuracy', sys.argv[3]), ('dataset', 'fashion-mnist')):
    p = m.metadata_props.add(); p.key = k; p.value = v
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
`;
  const r = spawnSync(PY, ['-c', script, path.join(ROOT, 'models/fmnist-mlp/model.onnx'), file, statedAccuracy], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

async function runJson(args: string[]): Promise<{ result: unknown; warnings: string[] }> {
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stdout.write = ((c: string | Uint8Array) => ((text += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await main([...args, '--json']);
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  return JSON.parse(text) as { result: unknown; warnings: string[] };
}

const accuracyOf = (r: Report, name: string) => r.models.find((m) => m.name === name)!.accuracy!;

test('--input parses MODEL:key=value lists and matches one model', () => {
  assert.deepEqual(parseModelInput('vit.onnx:mean=0.485,0.456,0.406,std=0.229,0.224,0.225,size=224x224,layout=nchw'), {
    model: 'vit.onnx',
    preprocess: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], size: [224, 224], layout: 'NCHW' },
  });
  assert.deepEqual(parseModelInput('C:/m/a.onnx:scale=1').model, 'C:/m/a.onnx');
  for (const bad of ['vit.onnx', 'vit.onnx:mean', 'vit.onnx:colour=1', 'vit.onnx:scale=1,2', 'vit.onnx:std=0', 'vit.onnx:mean=a', 'vit.onnx:mean=1,mean=2']) {
    assert.throws(() => parseModelInput(bad), /--input/, bad);
  }
  const models = [{ path: '/x/vit/model.onnx', preprocess: { scale: 255 } }, { path: '/y/resnet.onnx' }];
  const out = applyModelInputs(models, [parseModelInput('vit:mean=0.5,std=0.5'), parseModelInput('resnet.onnx:scale=1')]);
  assert.deepEqual(out.map((m) => m.preprocess), [{ scale: 255, mean: [0.5], std: [0.5] }, { scale: 1 }]);
  assert.throws(() => applyModelInputs(models, [parseModelInput('nope:scale=1')]), /no model of this run/);
  assert.throws(() => applyModelInputs([models[0]!, { path: '/z/vit/model.onnx' }], [parseModelInput('vit:scale=1')]), /names 2 models/);
});

test('farBelow allows for sampling error', () => {
  assert.ok(farBelow(0.947, 10000, { value: 0.988, source: 's' }));
  assert.ok(!farBelow(0.98, 10000, { value: 0.988, source: 's' }), 'under 2 points');
  // 0.80 on 50 images is within 3 standard errors (0.17) of 0.90.
  assert.ok(!farBelow(0.8, 50, { value: 0.9, n: 10000, source: 's' }));
  assert.ok(farBelow(0.6, 300, { value: 0.9, n: 10000, source: 's' }));
});

test('compare: two models with different normalisation each get the accuracy of their own audit', { skip: hasOnnxPy ? false : 'python3 onnx is not installed' }, async () => {
  const dir = await tempDir();
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
  // npm test turns the accuracy history off (runs must not depend on earlier ones); this test is about it.
  const savedNoHistory = process.env.LAYERPROBE_NO_HISTORY;
  delete process.env.LAYERPROBE_NO_HISTORY;
  try {
    const norm = path.join(dir, 'norm.onnx');
    writeNormalisedMlp(norm, '0.9013');
    const common = ['-d', 'fashion-mnist', '--per-class', '30', '--metrics', 'geometry', '--baseline', 'none'];
    const cmp = await runJson(['compare', '-m', 'fmnist-cnn.onnx', '-m', norm, ...common, '--input', 'norm.onnx:mean=0.5,std=0.5', '-o', path.join(dir, 'cmp')]);
    const report = JSON.parse(readFileSync(path.join(dir, 'cmp', 'report.json'), 'utf8')) as Report;
    assert.deepEqual(report.models.map((m) => [m.name, m.preprocess.mean, m.preprocess.std]), [['fmnist-cnn', undefined, undefined], ['norm', [0.5], [0.5]]]);
    assert.ok(!cmp.warnings.some((w) => /far below/.test(w)), cmp.warnings.join('\n'));

    // Each model alone, through the API, with its own input.
    const sampling = { dataset: 'fashion-mnist', perClass: 30, metrics: ['geometry' as const], baseline: 'none' as const };
    const cnn = await audit({ ...sampling, models: [{ path: path.join(ROOT, 'models/fmnist-cnn/model.onnx') }], out: path.join(dir, 'cnn') });
    const alone = await audit({ ...sampling, models: [{ path: norm, preprocess: { mean: [0.5], std: [0.5] } }], out: path.join(dir, 'alone') });
    const mlp = await audit({ ...sampling, models: [{ path: path.join(ROOT, 'models/fmnist-mlp/model.onnx') }], out: path.join(dir, 'mlp') });
    assert.equal(accuracyOf(report, 'fmnist-cnn').value, cnn.report.models[0]!.accuracy!.value);
    assert.equal(accuracyOf(report, 'norm').value, alone.report.models[0]!.accuracy!.value);
    // Independently: norm.onnx on (x − 0.5)/0.5 is the MLP on x.
    assert.equal(accuracyOf(report, 'norm').value, mlp.report.models[0]!.accuracy!.value);
    for (const [i, l] of alone.report.models[0]!.layers.entries()) {
      const inCompare = report.models[1]!.layers[i]!;
      assert.equal(inCompare.metrics.compression!.value, l.metrics.compression!.value, l.id);
    }
    assert.notEqual(accuracyOf(report, 'fmnist-cnn').value, accuracyOf(report, 'norm').value, 'two different models');

    // Without its setting the model is fed x/255 unnormalised: the stated 90.1% warns.
    const wrong = await runJson(['compare', '-m', 'fmnist-cnn.onnx', '-m', norm, ...common, '-o', path.join(dir, 'wrong')]);
    const wrongReport = JSON.parse(readFileSync(path.join(dir, 'wrong', 'report.json'), 'utf8')) as Report;
    assert.ok(accuracyOf(wrongReport, 'norm').value! < accuracyOf(report, 'norm').value! - 0.05, `${accuracyOf(wrongReport, 'norm').value}`);
    const warning = wrongReport.warnings.find((w) => w.startsWith('norm: accuracy'));
    assert.ok(warning, wrongReport.warnings.join('\n'));
    assert.match(warning, /far below the 90\.1% of its ONNX metadata/);
    assert.match(warning, /--input norm:mean=…,std=…/);
    assert.ok(wrong.warnings.includes(warning), 'the envelope carries the report warning');
    assert.ok(!wrongReport.warnings.some((w) => w.startsWith('fmnist-cnn: accuracy')), 'the CNN was fed right');

    // A model without a statement: the history of an earlier run on the same data is the reference.
    writeNormalisedMlp(path.join(dir, 'quiet.onnx'), 'n/a');
    const right = await audit({ ...sampling, models: [{ path: path.join(dir, 'quiet.onnx'), preprocess: { mean: [0.5], std: [0.5] } }], out: path.join(dir, 'q1') });
    assert.ok(!right.report.warnings.some((w) => /far below/.test(w)));
    const later = await audit({ ...sampling, models: [{ path: path.join(dir, 'quiet.onnx') }], out: path.join(dir, 'q2') });
    assert.ok(later.report.warnings.some((w) => /quiet: accuracy .* far below .* an earlier audit of the same file on the same data \(.*input scale=255,mean=0\.5,std=0\.5/.test(w)), later.report.warnings.join('\n'));
    // The history keeps the best value, and can be turned off.
    const history = JSON.parse(readFileSync(path.join(dir, 'cache', 'layerprobe', 'accuracy-history.json'), 'utf8')) as Record<string, { accuracy: number }>;
    assert.ok(Object.values(history).some((h) => h.accuracy === right.report.models[0]!.accuracy!.value));
    assert.deepEqual(await checkAccuracies(later.report.models, await openDataset('fashion-mnist'), { history: null }), []);
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
    if (savedNoHistory !== undefined) process.env.LAYERPROBE_NO_HISTORY = savedNoHistory;
  }
});
