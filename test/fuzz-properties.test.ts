/**
 * Property-based tests of the parsers (fast-check): what they accept round-trips exactly against
 * an independent encoder, and whatever bytes they are given, they either parse or throw a
 * RuntimeFailure, never anything else (a TypeError or RangeError would be an "internal error").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { RuntimeFailure } from '../src/errors.js';
import { idxDeclaredSize, parseIdx } from '../src/data/idx.js';
import { parseNpy } from '../src/data/npy.js';
import { gunzipCapped } from '../src/data/gzip.js';
import { narrowLabels } from '../src/data/memory.js';
import { checkLayersTopology } from '../src/runtime/tfjs-topology.js';

const RUNS = 300;

function onlyRuntimeFailures(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof RuntimeFailure)) throw e;
    assert.doesNotMatch(e.message, /\n/);
  }
}

/** Independent IDX encoder for uint8 / int16 / float32 arrays. */
function idx(code: 0x08 | 0x0b | 0x0d, dims: number[], values: number[]): Uint8Array {
  const size = code === 0x08 ? 1 : code === 0x0b ? 2 : 4;
  const b = Buffer.alloc(4 + 4 * dims.length + size * values.length);
  b[2] = code;
  b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  const o = 4 + 4 * dims.length;
  values.forEach((v, i) => (code === 0x08 ? b.writeUInt8(v, o + i) : code === 0x0b ? b.writeInt16BE(v, o + 2 * i) : b.writeFloatBE(v, o + 4 * i)));
  return b;
}

const idxCase = fc
  .record({ code: fc.constantFrom(0x08 as const, 0x0b as const, 0x0d as const), dims: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }) })
  .chain(({ code, dims }) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const value = code === 0x08 ? fc.integer({ min: 0, max: 255 }) : code === 0x0b ? fc.integer({ min: -32768, max: 32767 }) : fc.float({ noNaN: true, noDefaultInfinity: true }).map(Math.fround);
    return fc.record({ code: fc.constant(code), dims: fc.constant(dims), values: fc.array(value, { minLength: n, maxLength: n }) });
  });

test('IDX: any valid array round-trips exactly; its declared size is its byte length', () => {
  fc.assert(
    fc.property(idxCase, ({ code, dims, values }) => {
      const bytes = idx(code, dims, values);
      const a = parseIdx(bytes, 'p');
      assert.deepEqual(a.dims, dims);
      assert.deepEqual(Array.from(a.data), values);
      assert.equal(idxDeclaredSize(bytes), bytes.length);
    }),
    { numRuns: RUNS },
  );
});

test('IDX: arbitrary bytes, and valid files with one byte changed or cut, parse or throw RuntimeFailure', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => onlyRuntimeFailures(() => parseIdx(b, 'p'))), { numRuns: RUNS });
  fc.assert(
    fc.property(idxCase, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), ({ code, dims, values }, at, v, cut) => {
      const b = idx(code, dims, values);
      const m = cut ? b.subarray(0, at % (b.length + 1)) : Uint8Array.from(b, (x, i) => (i === at % b.length ? v : x));
      onlyRuntimeFailures(() => parseIdx(m, 'p'));
    }),
    { numRuns: RUNS },
  );
});

test('NPY: arbitrary headers and bodies parse or throw RuntimeFailure', () => {
  const header = fc.record({
    descr: fc.constantFrom('<f4', '|u1', '<i8', '>f4', '<U3', 'x'),
    fortran: fc.constantFrom('True', 'False', 'Maybe'),
    shape: fc.array(fc.oneof(fc.nat(40), fc.constant(2 ** 40), fc.constant(-1)), { maxLength: 4 }),
    body: fc.nat(300),
    version: fc.constantFrom(1, 2, 3, 9),
  });
  fc.assert(
    fc.property(header, ({ descr, fortran, shape, body, version }) => {
      const dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }\n`;
      const pre = version === 1 ? 10 : 12;
      const head = Buffer.alloc(pre);
      Buffer.from('\x93NUMPY', 'latin1').copy(head);
      head[6] = version;
      if (version === 1) head.writeUInt16LE(dict.length, 8);
      else head.writeUInt32LE(dict.length, 8);
      onlyRuntimeFailures(() => parseNpy(Buffer.concat([head, Buffer.from(dict, 'latin1'), Buffer.alloc(body)]), 'p'));
    }),
    { numRuns: RUNS },
  );
});

test('gunzipCapped: returns exactly the IDX bytes, and refuses any trailing excess', async () => {
  await fc.assert(
    fc.asyncProperty(idxCase, fc.integer({ min: 1, max: 5000 }), async ({ code, dims, values }, extra) => {
      const b = Buffer.from(idx(code, dims, values));
      assert.deepEqual(await gunzipCapped(gzipSync(b), 'p', idxDeclaredSize), b);
      await assert.rejects(gunzipCapped(gzipSync(Buffer.concat([b, Buffer.alloc(extra)])), 'p', idxDeclaredSize), /decompresses beyond its declared size/);
    }),
    { numRuns: 100 },
  );
});

test('narrowLabels: keeps exactly the values 0..2^31-1, refuses everything else', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 0x7fffffff }), fc.double(), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }))), (xs) => {
      const ok = xs.every((v) => Number.isInteger(v) && v >= 0 && v <= 0x7fffffff);
      if (ok) assert.deepEqual(Array.from(narrowLabels(xs, 'l')), xs.map((v) => (Object.is(v, -0) ? 0 : v)));
      else assert.throws(() => narrowLabels(xs, 'l'), RuntimeFailure);
    }),
    { numRuns: RUNS },
  );
});

test('layer-graph check: any graph of named layers with random references terminates with pass or RuntimeFailure', () => {
  const graph = fc.array(fc.array(fc.array(fc.record({ to: fc.nat(7), node: fc.nat(2) }), { maxLength: 2 }), { maxLength: 3 }), { minLength: 1, maxLength: 8 });
  fc.assert(
    fc.property(graph, (layers) => {
      const topo = {
        class_name: 'Model',
        config: {
          layers: layers.map((nodes, i) => ({ name: `l${i}`, class_name: i === 0 ? 'InputLayer' : 'Dense', config: { name: `l${i}` }, inbound_nodes: nodes.map((refs) => refs.map((r) => [`l${r.to}`, r.node, 0, {}])) })),
          input_layers: [['l0', 0, 0]],
          output_layers: [[`l${layers.length - 1}`, 0, 0]],
        },
      };
      onlyRuntimeFailures(() => checkLayersTopology('m', topo));
    }),
    { numRuns: RUNS },
  );
});
