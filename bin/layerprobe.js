#!/usr/bin/env node
// The installed package runs the compiled CLI in dist/ (shipped by `npm pack`), so it needs neither
// tsx nor esbuild at run time. A checkout (src/ present, tsx installed as a dev dependency) runs the
// TypeScript sources instead, so that an edit is never shadowed by a stale build; set
// LAYERPROBE_USE_DIST=1 to run dist/ there too (what the package test does).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hideBin } from 'yargs/helpers';

const source = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
let main = '../dist/cli/main.js';
if (existsSync(source) && process.env.LAYERPROBE_USE_DIST !== '1') {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    main = '../src/cli/main.ts';
  } catch {
    // tsx is not installed (npm ci --omit=dev): fall back to the build.
  }
}
let runCli;
try {
  ({ runCli } = await import(main));
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    process.stderr.write('layerprobe: dist/ is missing; build it with `npm run build`\n');
    process.exit(1);
  }
  throw e;
}
await runCli(hideBin(process.argv));
