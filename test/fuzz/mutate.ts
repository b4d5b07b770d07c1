/**
 * Seeded mutators for the fuzzer: generic byte-level ones (flips, truncation, insertion, interesting
 * values) and structure-aware ones that keep a file parseable enough to reach deeper code (JSON
 * keys and values, IDX and NPY header fields, ONNX protobuf fields, CSV cells). Every mutator is a
 * pure function of its Rng, so (format, seed, index) reproduces a mutant exactly.
 */
import { Rng } from '../../src/util/rng.js';
import { decodeModel, encodeModel } from '../../src/runtime/onnx-graph.js';

export type Mutator = (rng: Rng, input: Uint8Array) => Uint8Array;

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

/** Boundary values that break size arithmetic: 0, 1, sign bits, 2^31, 2^32 - 1. */
const U32 = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export const byteFlip: Mutator = (rng, input) => {
  const out = Uint8Array.from(input);
  const n = 1 + rng.int(8);
  for (let k = 0; k < n && out.length > 0; k++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
  return out;
};

export const truncate: Mutator = (rng, input) => input.slice(0, rng.int(input.length + 1));

export const insert: Mutator = (rng, input) => {
  const at = rng.int(input.length + 1);
  const len = pick(rng, [1, 4, 16, 1000]);
  const fill = Uint8Array.from({ length: len }, () => (rng.next() < 0.5 ? 0 : rng.int(256)));
  const out = new Uint8Array(input.length + len);
  out.set(input.subarray(0, at));
  out.set(fill, at);
  out.set(input.subarray(at), at + len);
  return out;
};

/** A big-endian or little-endian boundary value written over 4 random bytes (or the first 64). */
export const interesting: Mutator = (rng, input) => {
  const out = Uint8Array.from(input);
  if (out.length < 4) return out;
  const at = rng.next() < 0.5 ? rng.int(Math.min(64, out.length - 3)) : rng.int(out.length - 3);
  new DataView(out.buffer).setUint32(at, pick(rng, U32), rng.next() < 0.5);
  return out;
};

export const BYTE_MUTATORS: readonly Mutator[] = [byteFlip, truncate, insert, interesting];

// ─── JSON ───

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const JSON_VALUES: readonly Json[] = [null, -1, 0, 1, 2.5, 1e308, -1e308, 4294967299, '', '../../etc/passwd', '/etc/passwd', 'x'.repeat(10000), [], {}, [[[]]], true, 'NaN'];

/** Every (container, key) in the document, for picking a node to mutate. */
function slots(doc: Json): { parent: Json[] | { [k: string]: Json }; key: string | number }[] {
  const out: { parent: Json[] | { [k: string]: Json }; key: string | number }[] = [];
  const walk = (v: Json): void => {
    if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), walk(x)));
    else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) out.push({ parent: v, key: k }), walk(v[k]!);
  };
  walk(doc);
  return out;
}

/** Structure-aware JSON mutation: delete, duplicate, retype, swap or rename one node. */
export const jsonMutate: Mutator = (rng, input) => {
  let doc: Json;
  try {
    doc = JSON.parse(Buffer.from(input).toString('utf8')) as Json;
  } catch {
    return byteFlip(rng, input);
  }
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    const all = slots(doc);
    if (all.length === 0) break;
    const s = pick(rng, all);
    const op = rng.int(6);
    const get = (): Json => (Array.isArray(s.parent) ? s.parent[s.key as number]! : s.parent[s.key as string]!);
    const set = (v: Json): void => {
      if (Array.isArray(s.parent)) s.parent[s.key as number] = v;
      else s.parent[s.key as string] = v;
    };
    if (op === 0) {
      // Delete (an array element or a key): e.g. one layer of the layer list.
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
      else delete s.parent[s.key as string];
    } else if (op === 1 && Array.isArray(s.parent)) {
      s.parent.splice(s.key as number, 0, structuredClone(get()));
    } else if (op === 2) {
      set(structuredClone(pick(rng, JSON_VALUES)));
    } else if (op === 3) {
      // Swap with another string value (layer names, paths, dtypes).
      const strings = all.filter((x) => typeof (Array.isArray(x.parent) ? x.parent[x.key as number] : x.parent[x.key as string]) === 'string');
      if (strings.length) {
        const o = pick(rng, strings);
        set(Array.isArray(o.parent) ? o.parent[o.key as number]! : o.parent[o.key as string]!);
      }
    } else if (op === 4) {
      const v = get();
      if (typeof v === 'number') set(pick(rng, [0, -v, v * 1000, v + 1, 2 ** 31, NaN as unknown as number]));
      else if (typeof v === 'string') set(v + pick(rng, ['_x', '/..', '%2e%2e', '\u0000']));
    } else if (!Array.isArray(s.parent)) {
      // Rename a key.
      const v = get();
      delete s.parent[s.key as string];
      s.parent[`${s.key as string}_`] = v;
    }
  }
  return Buffer.from(JSON.stringify(doc));
};

// ─── IDX / NPY headers ───

/** An IDX header field: type code, dimension count or one dimension. */
export const idxHeaderMutate: Mutator = (rng, input) => {
  const out = Uint8Array.from(input);
  if (out.length < 4) return out;
  const view = new DataView(out.buffer);
  const field = rng.int(3);
  if (field === 0) out[2] = pick(rng, [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff]);
  else if (field === 1) out[3] = pick(rng, [0, 1, 2, 3, 4, 255]);
  else {
    const ndims = Math.min(out[3]!, Math.floor((out.length - 4) / 4));
    if (ndims > 0) view.setUint32(4 + 4 * rng.int(ndims), pick(rng, U32), false);
  }
  return out;
};

/** The .npy header dict: descr, shape, fortran order, or the header length field. */
export const npyHeaderMutate: Mutator = (rng, input) => {
  const text = Buffer.from(input).toString('latin1');
  const end = text.indexOf('\n');
  if (!text.startsWith('\x93NUMPY') || end < 0) return byteFlip(rng, input);
  const header = text.slice(10, end);
  const op = rng.int(4);
  let h = header;
  if (op === 0) h = h.replace(/'descr': '[^']*'/, `'descr': '${pick(rng, ['<f4', '>f4', '<i8', '|u1', '<U8', '|O', 'xx', '<f2', '<c8'])}'`);
  else if (op === 1) h = h.replace(/'shape': \([^)]*\)/, `'shape': ${pick(rng, ['()', '(0,)', '(-1,)', '(99999999999,)', '(4294967295, 4294967295)', '(2, 2, 2, 2, 2)', '(1,', '((1,),)', '(1e3,)'])}`);
  else if (op === 2) h = h.replace('False', 'True');
  else {
    const out = Uint8Array.from(input);
    new DataView(out.buffer).setUint16(8, pick(rng, [0, 1, 0xffff, header.length + 64]), true);
    return out;
  }
  return Buffer.concat([Buffer.from(text.slice(0, 10), 'latin1'), Buffer.from(h.padEnd(header.length, ' '), 'latin1'), Buffer.from(input.subarray(end))]);
};

// ─── ONNX protobuf fields ───

/** One field of the decoded ModelProto changed: versions, op types, names, dims, weights. */
export const onnxMutate: Mutator = (rng, input) => {
  let model;
  try {
    model = decodeModel(input);
  } catch {
    return byteFlip(rng, input);
  }
  const g = model.graph;
  if (!g) return byteFlip(rng, input);
  const nodes = g.node ?? [];
  const inits = g.initializer ?? [];
  const op = rng.int(10);
  if (op === 0) model.irVersion = pick(rng, [0, 1, 3, 99, 0x7fffffff]);
  else if (op === 1 && model.opsetImport?.[0]) model.opsetImport[0].version = pick(rng, [0, 1, 7, 999, -1]);
  else if (op === 2 && nodes.length) pick(rng, nodes).opType = pick(rng, ['Conv', 'Relu', 'Gemm', 'MatMul', 'Unknown', '', 'Loop', 'Reshape']);
  else if (op === 3 && nodes.length) {
    // Dangling or self-referencing input: a graph cycle or a name that does not exist.
    const n = pick(rng, nodes);
    if (n.input?.length) n.input[rng.int(n.input.length)] = rng.next() < 0.5 ? 'missing_tensor' : (n.output?.[0] ?? 'x');
  } else if (op === 4 && nodes.length) nodes.splice(rng.int(nodes.length), 1);
  else if (op === 5 && nodes.length) nodes.push(structuredClone(pick(rng, nodes)));
  else if (op === 6 && inits.length) {
    const t = pick(rng, inits);
    if (t.dims?.length) t.dims[rng.int(t.dims.length)] = pick(rng, [0, 1, 7, -1, 2 ** 31]);
  } else if (op === 7 && inits.length) {
    const t = pick(rng, inits);
    if (t.rawData?.length) t.rawData = t.rawData.subarray(0, rng.int(t.rawData.length));
  } else if (op === 8 && g.input?.[0]?.type?.tensorType?.shape?.dim?.length) {
    const dims = g.input[0].type.tensorType.shape.dim;
    dims[rng.int(dims.length)] = pick(rng, [{ dimValue: 0 }, { dimValue: -3 }, { dimValue: 100000 }, { dimParam: 'H' }, {}]);
  } else if (op === 9 && g.output?.length) {
    g.output.splice(rng.int(g.output.length), 1);
  } else return byteFlip(rng, input);
  try {
    return encodeModel(model);
  } catch {
    return byteFlip(rng, input);
  }
};

// ─── CSV cells ───

export const csvMutate: Mutator = (rng, input) => {
  const lines = Buffer.from(input).toString('utf8').split('\n');
  const li = rng.int(Math.max(1, lines.length - 1));
  const cells = lines[li]!.split(',');
  const op = rng.int(6);
  if (op === 0) cells[0] = pick(rng, ['4294967299', '-1', '2.5', 'cat', '', '1e9', '9007199254740993', '65536', ' 3 ']);
  else if (op === 1) cells[rng.int(cells.length)] = pick(rng, ['', 'NaN', 'Infinity', '1e400', '-0', '0x10', '"7"', '\u0000']);
  else if (op === 2) cells.splice(rng.int(cells.length), 1);
  else if (op === 3) cells.push('0');
  else if (op === 4) lines.splice(li, 0, pick(rng, ['', 'label,pixel', '\r', ',,,,']));
  else lines[li] = lines[li]!.replace(/,/g, pick(rng, [';', '\t', ', ']));
  if (op < 4) lines[li] = cells.join(',');
  return Buffer.from(lines.join('\n'));
};
