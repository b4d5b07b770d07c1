/**
 * What the two TF.js runners share (runtime/tfjs-layers-runner.ts, runtime/tfjs-graph-runner.ts):
 * input fitting to the model's input shape, layer-id checks, one forward pass per batch, download
 * to float32, disposal; and the small helpers both use.
 */
import path from 'node:path';
import type * as tfTypes from './tf-types.js';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { layerNotFound } from './select.js';
import type { Tf } from './backend.js';
import type { ClassifierHead, LayerInfo, LayerTensor, ModelRunner } from './types.js';

type Tensor = tfTypes.Tensor;
type LayersModel = tfTypes.LayersModel;

export type TfjsFormat = 'tfjs-layers' | 'tfjs-graph';

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function fmtShape(s: readonly (number | null)[]): string {
  return '[' + s.map((d) => (d === null || d < 0 ? 'null' : String(d))).join(',') + ']';
}

export function product(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

export function firstLine(e: unknown): string {
  return errorMessage(e).split('\n')[0]!.trim();
}

/** Shared by both model kinds: input fitting, id checks, download and disposal. */
export abstract class TfjsRunner implements ModelRunner {
  abstract readonly format: TfjsFormat;
  readonly backend: string;
  /** sha256 of the model's topology and weights (runtime/tfjs.ts tfjsContentSha256); set by openTfjsModel. */
  contentSha256 = '';
  protected readonly infos: LayerInfo[];
  private readonly byId: Map<string, LayerInfo>;

  protected constructor(
    protected readonly tf: Tf,
    backend: string,
    readonly path: string,
    readonly inputShape: (number | null)[],
    infos: LayerInfo[],
  ) {
    this.backend = `tfjs ${backend}`;
    this.infos = infos;
    this.byId = new Map(infos.map((l) => [l.id, l]));
  }

  layers(): LayerInfo[] {
    return this.infos.map((l) => ({ ...l, shape: [...l.shape] }));
  }

  /** Requested layers as float32 tensors, in `ids` order; the caller disposes them. */
  protected abstract execute(x: Tensor, ids: readonly string[]): Promise<Tensor[]>;

  /** The shape to reshape a flat batch to: the model's own where it is fully known. */
  protected fitInput(input: { data: Float32Array; shape: number[] }): number[] {
    const shape = input.shape;
    const bad = (): UsageError =>
      new UsageError(`input shape ${fmtShape(shape)} does not fit model input ${fmtShape(this.inputShape)}`);
    if (shape.length < 1 || shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad();
    if (product(shape) !== input.data.length) {
      throw new UsageError(`input has ${input.data.length} values but its shape ${fmtShape(shape)} needs ${product(shape)}`);
    }
    const n = shape[0]!;
    const modelDims = this.inputShape.slice(1);
    if (modelDims.every((d): d is number => d !== null)) {
      if (product(shape.slice(1)) !== product(modelDims)) throw bad();
      return [n, ...modelDims];
    }
    // Free dimensions: the caller's shape decides them, so it must agree on rank and fixed sizes.
    if (shape.length !== this.inputShape.length || modelDims.some((d, i) => d !== null && d !== shape[i + 1])) throw bad();
    return [...shape];
  }

  async run(input: { data: Float32Array; shape: number[] }, layerIds: readonly string[]): Promise<Map<string, LayerTensor>> {
    const ids = [...new Set(layerIds)];
    const known = this.infos.map((l) => l.id);
    for (const id of ids) {
      if (!this.byId.has(id)) throw layerNotFound(id, known, this.path);
    }
    const target = this.fitInput(input);
    const result = new Map<string, LayerTensor>();
    if (ids.length === 0) return result;
    if (target[0] === 0) {
      for (const id of ids) result.set(id, { data: new Float32Array(0), shape: [0, ...this.byId.get(id)!.shape.slice(1).map((d) => d ?? 0)] });
      return result;
    }
    const tf = this.tf;
    const x = tf.tensor(input.data, target, 'float32');
    let outs: Tensor[] = [];
    try {
      outs = await this.execute(x, ids);
      const datas = await Promise.all(outs.map((t) => t.data()));
      ids.forEach((id, k) => {
        // A copy: on some backends data() hands out the backend's own storage.
        result.set(id, { data: new Float32Array(datas[k] as Float32Array), shape: [...outs[k]!.shape] });
      });
    } catch (e) {
      if (e instanceof UsageError || e instanceof RuntimeFailure) throw e;
      throw new RuntimeFailure(`running ${path.basename(this.path)} failed: ${firstLine(e)}`);
    } finally {
      x.dispose();
      tf.dispose(outs);
    }
    return result;
  }

  abstract dispose(): Promise<void>;
  abstract classifierHead(label?: string): Promise<ClassifierHead>;
  abstract exportableLayersModel(): LayersModel | null;
}
