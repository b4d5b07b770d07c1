/**
 * Minimised reproducers of what the fuzzer (test/fuzz) and the outside bad-input run found, each
 * run through the real CLI: it must exit 1 or 2 with the one clear line given here, no stack
 * trace, no onnxruntime internals on stderr, within the time limit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { judgeCli } from './fuzz/judge.js';
import { withoutOrtInternals } from '../src/runtime/onnx.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIX = path.join(ROOT, 'test/fixtures/fuzz');

function layers(model: string) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/layerprobe.js'), 'layers', model], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL', env: { ...process.env, CI: '1' } });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { r, verdict: judgeCli({ code: r.status, signal: r.signal, stderr: r.stderr, seconds: (performance.now() - t0) / 1000, timedOut, maxRssKb: null }, 60) };
}

const CASES: { dir: string; file: string; code: number; line: RegExp }[] = [
  // onnxruntime logged its own error, with C++ source locations, before the exception reached us.
  { dir: 'onnx-raw-data-short', file: 'model.onnx', code: 1, line: /is not a valid ONNX model: Exception during initialization: Initializer 'b': raw_data size \(3 bytes\) does not match expected size from shape and data type \(8 bytes\)$/ },
  { dir: 'onnx-ir-version-99', file: 'model.onnx', code: 1, line: /is not a valid ONNX model: Unsupported model IR version: 99, max supported IR version: \d+$/ },
  // A declared fixed batch of 100,000 was run as is to find the layers (minutes, ~2 GB).
  { dir: 'onnx-fixed-batch-huge', file: 'model.onnx', code: 1, line: /is not supported: its input x has a fixed batch of 100000 \(layerprobe handles a free batch dimension, or a fixed one up to 1024\)$/ },
  // TF.js looped forever on a layer graph with a dangling reference.
  { dir: 'tfjs-layer-deleted', file: 'model.json', code: 1, line: /has a broken layer graph: layer `d2` \(inbound node 0\) refers to layer `d1`, which is not in the model$/ },
  // A weight path in model.json was read wherever it pointed.
  { dir: 'tfjs-weights-escape', file: 'model.json', code: 1, line: /weight path `(?:\.\.\/)+etc\/passwd` in model\.json climbs out with `\.\.`/ },
];

for (const c of CASES) {
  test(`fuzz reproducer ${c.dir}: exit ${c.code}, one clear line`, () => {
    const { r, verdict } = layers(path.join(FIX, c.dir, c.file));
    assert.equal(verdict.defect, false, JSON.stringify(verdict));
    assert.equal(r.status, c.code, r.stderr);
    assert.match(r.stderr.split('\n')[0]!, c.line);
  });
}

test('onnxruntime messages keep the reason and lose file:line, signatures and status prefixes', () => {
  const cases: [string, string][] = [
    ["Exception during initialization: [ONNXRuntimeError] : 1 : FAIL : tensorprotoutils.cc:1469 ValidateEmbeddedTensorProtoDataSizeAndShape Initializer 'b': raw_data size (11 bytes) does not match", "Exception during initialization: Initializer 'b': raw_data size (11 bytes) does not match"],
    ['Deserialize tensor fc2.bias failed.endian_utils.cc:66 CopyLittleEndian source and destination buffer size mismatch', 'Deserialize tensor fc2.bias failed. source and destination buffer size mismatch'],
    ['/onnxruntime_src/onnxruntime/core/graph/model.cc:202 onnxruntime::Model::Model(onnx::ModelProto&&, const onnxruntime::PathString&, const onnxruntime::logging::Logger&) Unsupported model IR version: 99', 'Unsupported model IR version: 99'],
    ["Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/nn/conv.cc:123 onnxruntime::common::Status onnxruntime::Conv<T>::Compute(onnxruntime::OpKernelContext*) const [with T = float] X num_dims does not match W num_dims.", 'Status Message: X num_dims does not match W num_dims.'],
    ['Error Node(Flatten_0) with schema(::Conv:11) has input size 1 not in range [min=2, max=3].', 'Error Node(Flatten_0) with schema(::Conv:11) has input size 1 not in range [min=2, max=3].'],
  ];
  for (const [raw, want] of cases) assert.equal(withoutOrtInternals(raw), want);
});

test('fuzz reproducer images-png-crc-error: libvips\' several lines of reasons become one line', async () => {
  const { openDataset } = await import('../src/data/open.js');
  const { RuntimeFailure } = await import('../src/errors.js');
  const ds = await openDataset(path.join(FIX, 'images-png-crc-error'));
  await assert.rejects(ds.read([0, 1, 2]), (e: unknown) => {
    assert.ok(e instanceof RuntimeFailure);
    assert.match(e.message, /^cannot decode image .*1\.png: Warning treated as error due to failOn setting; IHDR: CRC error$/);
    return true;
  });
});

test('fuzz reproducers: a 10,000-character name from a model.json and a 255-dimension IDX header give short messages', async () => {
  const { promises: fs } = await import('node:fs');
  const os = await import('node:os');
  const { openModel } = await import('../src/runtime/open.js');
  const { readIdx } = await import('../src/data/idx.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lp-fuzzreg-'));
  const json = JSON.parse(await fs.readFile(path.join(ROOT, 'models/fmnist-mlp/model.json'), 'utf8')) as { modelTopology: { config: { layers: { class_name: string }[] } } };
  json.modelTopology.config.layers[1]!.class_name = 'x'.repeat(10000);
  await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  await fs.copyFile(path.join(ROOT, 'models/fmnist-mlp/weights.bin'), path.join(dir, 'weights.bin'));
  await assert.rejects(openModel(path.join(dir, 'model.json')), (e: Error) => e.message.length < 400 && /`x{60}…` \(10000 characters\)/.test(e.message));
  const head = Buffer.alloc(4 + 4 * 255, 0x11);
  head[0] = 0;
  head[1] = 0;
  head[2] = 0x08;
  head[3] = 255;
  await fs.writeFile(path.join(dir, 'wide-idx'), head);
  await assert.rejects(readIdx(path.join(dir, 'wide-idx')), (e: Error) => e.message.length < 400 && /… 255 dimensions\]/.test(e.message));
});

test('fuzz reproducer: a weight shape holding a string or a fraction is refused by name, not a RangeError', async () => {
  const { promises: fs } = await import('node:fs');
  const os = await import('node:os');
  const { loadArtifacts } = await import('../src/runtime/tfjs-io.js');
  const { RuntimeFailure } = await import('../src/errors.js');
  for (const bad of [[256, 'dense_2/bias'], [2.5, 4], [-1, 10]]) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lp-fuzzshape-'));
    const json = JSON.parse(await fs.readFile(path.join(ROOT, 'models/fmnist-mlp/model.json'), 'utf8')) as { weightsManifest: { weights: { name: string; shape: unknown[] }[] }[] };
    const w = json.weightsManifest[0]!.weights.at(-1)!;
    w.shape = bad;
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await fs.copyFile(path.join(ROOT, 'models/fmnist-mlp/weights.bin'), path.join(dir, 'weights.bin'));
    await assert.rejects(loadArtifacts(path.join(dir, 'model.json')), (e: unknown) => e instanceof RuntimeFailure && e.message.includes(`weight \`${w.name}\` has shape [${bad.join(', ')}]`));
  }
});
