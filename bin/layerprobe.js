#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader, so the checkout and the installed package
// run the same code with no build step to forget.
import { register } from 'tsx/esm/api';
import { hideBin } from 'yargs/helpers';

register();
const { runCli } = await import('../src/cli/main.ts');
await runCli(hideBin(process.argv));
