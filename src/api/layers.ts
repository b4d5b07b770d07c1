import { openModel } from '../runtime/open.js';
import type { LayerInfo, ModelRunner } from '../runtime/types.js';

export interface LayerListing {
  path: string;
  format: ModelRunner['format'];
  backend: string;
  inputShape: (number | null)[];
  layers: LayerInfo[];
}

/** What `layerprobe layers` prints: every probe-able layer, default selection marked. */
export async function listLayers(model: string): Promise<LayerListing> {
  const runner = await openModel(model);
  try {
    return { path: runner.path, format: runner.format, backend: runner.backend, inputShape: runner.inputShape, layers: runner.layers() };
  } finally {
    await runner.dispose();
  }
}
