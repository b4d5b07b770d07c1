/** Open any supported model file behind the one ModelRunner interface. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { ModelRunner } from './types.js';
import { openOnnxModel } from './onnx.js';
import { openTfjsModel } from './tfjs.js';
import { withEngine, type Engine } from './tfjs-onnx/engine.js';

export interface OpenModelOptions {
  /** Engine for TF.js models: auto (onnxruntime after a check, else TF.js; default), onnx, tfjs. */
  engine?: Engine;
}

/** The engine for TF.js models when a caller names none (the CLI's --engine sets it). */
let defaultEngine: Engine = 'auto';

export function useEngine(engine: Engine): void {
  defaultEngine = engine;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Resolve a model reference: an .onnx file, a TF.js model.json, or a folder holding one of them. */
export async function resolveModelPath(ref: string): Promise<string> {
  let st;
  try {
    st = await stat(ref);
  } catch {
    throw new UsageError(`model ${ref} not found`, 'give a .onnx file, a TF.js model.json, or a folder containing one');
  }
  if (st.isDirectory()) {
    for (const name of ['model.onnx', 'model.json']) {
      const p = path.join(ref, name);
      if (await isFile(p)) return p;
    }
    throw new UsageError(`folder ${ref} holds neither model.onnx nor model.json`);
  }
  return ref;
}

export async function openModel(ref: string, opts: OpenModelOptions = {}): Promise<ModelRunner> {
  const file = await resolveModelPath(ref);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.onnx' || ext === '.ort' || ext === '.pb') return openOnnxModel(file);
  if (ext === '.json') return withEngine(await openTfjsModel(file), opts.engine ?? defaultEngine);
  throw new UsageError(`cannot tell the format of model ${ref} from its extension \`${ext || '(none)'}\``, 'expected .onnx (ONNX) or .json (TF.js layers or graph model)');
}
