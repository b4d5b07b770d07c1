/**
 * One benchmark case in its own process, so peak RSS belongs to that case alone.
 * argv: JSON of { kind: 'extract' | 'audit', options }.
 */
import { rm } from 'node:fs/promises';
import { extract, type ExtractOptions } from '../src/pipeline/extract.js';

interface Case {
  kind: 'extract';
  options: ExtractOptions;
}

const c = JSON.parse(process.argv[2] ?? '{}') as Case;
const t0 = performance.now();
const result = await extract({ ...c.options, force: true });
const wallMs = performance.now() - t0;
await rm(result.outDir, { recursive: true, force: true });
const images = result.manifest.dataset.selectedItems;
process.stdout.write(
  JSON.stringify({
    images,
    layers: result.manifest.models[0]!.layers.length,
    wallMs,
    forwardMs: result.timings.forwardMs,
    reduceMs: result.timings.reduceMs,
    writeMs: result.timings.sinkMs,
    imagesPerSecond: images / (wallMs / 1000),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  }) + '\n',
);
