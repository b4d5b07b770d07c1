import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { sha256File } from './hash.js';
import { checkLabels, defaultClassNames, memoryDataset, narrowLabels } from './memory.js';
import type { Dataset } from './types.js';

export interface CsvDatasetOptions {
  /** Order of the values after the label on each line. */
  layout: 'HWC' | 'CHW';
  /** [H, W, C]; needed unless a line holds 784 (28x28x1) or 3072 (32x32x3) values. */
  shape?: [number, number, number];
  classes?: readonly string[];
}

/** Value counts whose shape is unambiguous in practice (MNIST-like and CIFAR-like rows). */
const DEFAULT_SHAPES: Record<number, [number, number, number]> = {
  784: [28, 28, 1],
  3072: [32, 32, 3],
};

/** Grows in place so that a large CSV is parsed without an intermediate array of rows. */
class FloatBuffer {
  data = new Float32Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
}

/** One item per line: `label,v1,v2,…`; an optional non-numeric header line is skipped. */
export async function openCsvDataset(path: string, opts: CsvDatasetOptions): Promise<Dataset> {
  const info = await stat(path).catch(() => {
    throw new UsageError(`CSV file ${path} not found`);
  });
  if (!info.isFile()) throw new UsageError(`CSV path ${path} is not a file`);

  const values = new FloatBuffer();
  const labels: number[] = [];
  let width = -1;
  let lineNo = 0;
  let header = false;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = raw.trim();
      if (line === '') continue;
      const fields = line.split(',');
      if (lineNo === 1 && fields.some((f) => !isNumber(f))) {
        header = true;
        continue;
      }
      if (fields.length < 2) {
        throw new RuntimeFailure(`${path} line ${lineNo}: expected a label and values, found ${fields.length} field`);
      }
      if (width === -1) width = fields.length - 1;
      else if (fields.length - 1 !== width) {
        throw new RuntimeFailure(
          `${path} line ${lineNo}: ragged row with ${fields.length - 1} values, earlier rows have ${width}`,
        );
      }
      const label = Number(fields[0]);
      if (!isNumber(fields[0]!) || !Number.isInteger(label) || label < 0) {
        throw new RuntimeFailure(`${path} line ${lineNo}: label \`${fields[0]!.trim()}\` is not a non-negative integer`);
      }
      labels.push(label);
      for (let j = 1; j < fields.length; j++) {
        const f = fields[j]!;
        if (!isNumber(f)) {
          throw new RuntimeFailure(`${path} line ${lineNo}, column ${j + 1}: \`${f.trim()}\` is not a number`);
        }
        values.push(Number(f));
      }
    }
  } catch (e) {
    if (e instanceof RuntimeFailure) throw e;
    throw new RuntimeFailure(`cannot read CSV file ${path}: ${errorMessage(e)}`);
  } finally {
    lines.close();
  }
  if (labels.length === 0) throw new RuntimeFailure(`CSV file ${path} has no data rows`);

  const shape = opts.shape ?? DEFAULT_SHAPES[width];
  if (!shape) {
    throw new UsageError(
      `CSV file ${path} has ${width} values per row; its image shape is ambiguous`,
      'pass the shape as [H, W, C] (e.g. --shape 28,28,1)',
    );
  }
  if (shape[0] * shape[1] * shape[2] !== width) {
    throw new UsageError(`shape [${shape.join(', ')}] has ${shape[0] * shape[1] * shape[2]} values, but rows of ${path} have ${width}`);
  }

  const n = labels.length;
  let pixels: Float32Array = values.data.subarray(0, values.length);
  if (opts.layout === 'CHW') pixels = chwToHwc(pixels, n, shape);
  const labelArray = narrowLabels(labels, path);
  const classes = opts.classes ?? defaultClassNames(labelArray, path);
  checkLabels(labelArray, classes, path);
  return memoryDataset({
    name: path,
    classes,
    labels: labelArray,
    itemShape: shape,
    pixels,
    source: {
      kind: 'csv',
      files: [{ path, sha256: await sha256File(path), bytes: info.size }],
      detail: { layout: opts.layout, header, rows: n, valuesPerRow: width },
    },
  });
}

/** Number() accepts '' and whitespace as 0, which would hide a missing value. */
function isNumber(field: string): boolean {
  const t = field.trim();
  return t !== '' && Number.isFinite(Number(t));
}

function chwToHwc(src: Float32Array, n: number, [h, w, c]: readonly [number, number, number]): Float32Array {
  const out = new Float32Array(src.length);
  const item = h * w * c;
  const plane = h * w;
  for (let k = 0; k < n; k++) {
    const base = k * item;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < plane; p++) out[base + p * c + ch] = src[base + ch * plane + p]!;
    }
  }
  return out;
}
