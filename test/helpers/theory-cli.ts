/**
 * Runs `layerprobe theory …` in a child process through a tiny yargs driver around
 * `theoryCommand` — the module the main CLI mounts — so each theory command is tested end to
 * end (argument parsing, exit codes, files on disk) without the rest of the CLI's start-up.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './fixtures.js';

const DRIVER = `
import yargs from 'yargs';
const { theoryCommand } = await import(${JSON.stringify(path.join(ROOT, 'src/cli/theory.ts'))});
const { LayerprobeError } = await import(${JSON.stringify(path.join(ROOT, 'src/errors.ts'))});
try {
  await yargs(process.argv.slice(1)).scriptName('layerprobe').command(theoryCommand).demandCommand(1).strict()
    .fail((msg, err) => { if (err) throw err; process.stderr.write('layerprobe: error: ' + msg + '\\n'); process.exit(2); })
    .parseAsync();
} catch (e) {
  if (e instanceof LayerprobeError) {
    process.stderr.write('layerprobe: error: ' + e.message + (e.hint ? ' (hint: ' + e.hint + ')' : '') + '\\n');
    process.exit(e.exitCode);
  }
  throw e;
}
`;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `layerprobe theory <args…>`. */
export function runTheory(args: string[]): CliRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', DRIVER, 'theory', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
