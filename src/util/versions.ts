/** Versions of the packages that produce numbers, for manifests. */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** Version of an installed package; walks up from its entry point since `exports` may hide package.json. */
export function packageVersion(name: string): string | null {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(name));
  } catch {
    return null;
  }
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? null;
    } catch {
      // no package.json at this level
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

export function layerprobeVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

export function toolVersions(): Record<string, string | null> {
  return {
    layerprobe: layerprobeVersion(),
    node: process.versions.node,
    'onnxruntime-node': packageVersion('onnxruntime-node'),
    '@tensorflow/tfjs-core': packageVersion('@tensorflow/tfjs-core'),
    '@tensorflow/tfjs-backend-wasm': packageVersion('@tensorflow/tfjs-backend-wasm'),
    '@tensorflow/tfjs-node': packageVersion('@tensorflow/tfjs-node'),
    sharp: packageVersion('sharp'),
  };
}
