#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader so no build step is needed; a built dist/
// (npm run build) is used when present.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hideBin } from 'yargs/helpers';

const dist = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
let mod;
if (existsSync(dist)) {
  mod = await import(dist);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import('../src/cli/main.ts');
}
await mod.runCli(hideBin(process.argv));
