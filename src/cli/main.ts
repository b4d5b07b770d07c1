/**
 * layerprobe command line. Each subcommand lives in its own file and only parses arguments and
 * prints; the work is done by the programmatic API (src/index.ts) so the two stay in step.
 * Errors: a LayerprobeError prints one line (plus a hint) and exits with its code; yargs usage
 * errors exit 2; anything else is a bug and says so.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { createRequire } from 'node:module';
import type yargsType from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LayerprobeError, UsageError, errorMessage } from '../errors.js';
import { abortAllRunFolders } from '../report/run-folder.js';
import { layerprobeVersion, toolVersions } from '../util/versions.js';
import { loadTf } from '../runtime/backend.js';
import { layersCommand } from './layers.js';
import { extractCommand } from './extract.js';
import { datasetsCommand } from './datasets.js';
import { auditCommand } from './audit.js';
import { schemaCommand } from './schema.js';
import { compareCommand } from './compare.js';
import { trainCommand } from './train.js';
import { exportCommand } from './export.js';
import { theoryCommand } from './theory.js';
import { reportCommand } from './report.js';
import { mergeCommand } from './merge.js';
import { didYouMean, editDistance } from '../util/suggest.js';
import { warn } from './result-json.js';
import { resolveModelArg, shippedSpec, SHIPPED_SPECS } from '../shipped.js';

// yargs' ESM build wraps help text with a naive splitter that breaks words mid-way; its CommonJS
// build wraps on word boundaries (wrap-ansi).
const yargs = createRequire(import.meta.url)('yargs') as typeof yargsType;

/**
 * Set on Ctrl-C. The work in flight then fails against its removed output folder; those errors
 * are consequences of the interruption, not news, and the exit code stays 130.
 */
let interrupted = false;

function fail(message: string, hint: string | undefined, code: number): never {
  process.stderr.write(`layerprobe: error: ${message}\n`);
  if (hint) process.stderr.write(`  hint: ${hint}\n`);
  process.exit(code);
}

async function printVersion(verbose: boolean): Promise<void> {
  if (!verbose) {
    process.stdout.write(layerprobeVersion() + '\n');
    return;
  }
  const tf = await loadTf();
  const v = toolVersions();
  const lines = [
    `layerprobe ${v.layerprobe}`,
    `node ${v.node}`,
    `onnxruntime-node ${v['onnxruntime-node']} (cpu)`,
    `@tensorflow/tfjs-core ${v['@tensorflow/tfjs-core']} — backend in use: ${tf.backend}`,
    `@tensorflow/tfjs-node ${tfjsNodeLine(v['@tensorflow/tfjs-node'] ?? null, tf.backend)}`,
    `sharp ${v.sharp}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** tfjs-node is optional: absent, or present but unloadable (its install script, which fetches libtensorflow, did not run). */
function tfjsNodeLine(version: string | null, backend: string): string {
  if (version === null) return 'not installed (optional: npm i @tensorflow/tfjs-node; wasm backend used instead)';
  if (backend.startsWith('tensorflow')) return version;
  return `${version} installed but not loaded (its native libtensorflow is missing or broken; ${backend} backend used instead)`;
}

/**
 * Every command's --seed, checked once: the RNG reduces any number to 32 bits, so `--seed abc`
 * (NaN), 1.5 or 2^32 would quietly run with another seed and record one that cannot reproduce it.
 */
function checkSeed(argv: Record<string, unknown>): void {
  const s = argv.seed;
  if (s === undefined) return;
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > 0xffffffff) {
    throw new UsageError(`--seed must be a whole number from 0 to ${0xffffffff} (got ${String(s)})`);
  }
}

/**
 * One meaning per short flag across all commands (SHORT_FLAGS, checked by test/cli-flags.test.ts).
 * Commands that used a letter for something else now spell it out; the old spellings still work
 * there, rewritten here with a deprecation warning: the theory commands' `--d`, `--m`, `--n`,
 * `--r` (dimensions and counts), and `train -a` (the architecture; -a is the activation).
 */
export const SHORT_FLAGS: Record<string, string> = {
  a: 'activation',
  d: 'dataset',
  h: 'help',
  K: 'classes',
  l: 'layers',
  L: 'depth',
  m: 'model',
  n: 'per-class',
  o: 'out',
  q: 'quiet',
  r: 'reference',
  t: 'trials',
  V: 'version',
};

/**
 * Letters that are options of their own in one theory command, as the paper writes the symbol
 * (`--D 1:90`, `--k 2`); no other command gives them a meaning. (The theory commands' `--K` and
 * `--n` mean classes and samples per class, as -K and -n do everywhere.)
 */
export const SYMBOL_FLAGS: Record<string, string> = {
  D: 'layer widths (theory phase)',
  k: 'bottleneck width (theory lowrank)',
};

const RENAMED_FLAGS: Record<string, Record<string, string>> = {
  'theory uos': { d: 'ambient-dim', r: 'intrinsic-dim' },
  'theory phase': { d: 'ambient-dim', r: 'intrinsic-dim' },
  'theory clustering': { d: 'input-dim', m: 'hidden', n: 'points' },
  train: { a: 'arch' },
};

/** Rewrites deprecated spellings to the current ones, calling `warn` (a message without the `layerprobe: warning:` prefix) for each. */
export function renameDeprecatedFlags(argv: readonly string[], warn: (msg: string) => void = (m) => process.stderr.write(`layerprobe: warning: ${m}\n`)): string[] {
  const words = argv.filter((a) => !a.startsWith('-'));
  const command = words[0] === 'theory' ? `theory ${words[1]}` : (words[0] ?? '');
  const renames = RENAMED_FLAGS[command];
  if (!renames) return [...argv];
  const end = argv.indexOf('--');
  const meanings = Object.entries(SHORT_FLAGS).filter(([k]) => 'admnr'.includes(k)).map(([k, v]) => `-${k} ${v}`).join(', ');
  return argv.map((a, i) => {
    if (end >= 0 && i > end) return a;
    const m = /^--?([a-zA-Z])(=.*)?$/.exec(a);
    const now = m ? renames[m[1]!] : undefined;
    if (!m || !now) return a;
    warn(`${a.replace(/=.*/, '')} is deprecated in \`${command}\`; use --${now} (short flags mean one thing everywhere: ${meanings})`);
    return `--${now}${m[2] ?? ''}`;
  });
}

/** Flags that may repeat; every other flag takes one value. */
const REPEATABLE = new Set(['model', 'input', 'fail-under', 'fail-over', 'sweep']);

/**
 * A single-value flag given twice is refused before yargs sees it: yargs turns the values into an
 * array, which a string option then fails on deep inside a command, and a number option quietly
 * sums (`--scale 255 --scale 1` ran with 256).
 */
function checkRepeatedFlags(argv: readonly string[]): void {
  const seen = new Map<string, number>();
  for (const a of argv) {
    if (a === '--') break;
    const long = /^--(?:no-)?([a-zA-Z][a-zA-Z0-9-]*)(?:=.*)?$/.exec(a);
    const short = /^-([a-zA-Z])$/.exec(a);
    const name = long ? long[1]! : short ? (SHORT_FLAGS[short[1]!] ?? short[1]!) : null;
    if (name === null || REPEATABLE.has(name)) continue;
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    if (count === 2) throw new UsageError(`--${name} was given more than once`, `give it once (only --model, --input, --fail-under, --fail-over and --sweep repeat)`);
  }
}

/**
 * Shipped names work wherever a model or spec path does, from any folder: `-m fmnist-mlp` (its TF.js
 * model), `fmnist-cnn.onnx` (its ONNX twin, derived on first use), `audit fmnist-zoo` (the shipped
 * spec). An existing file of that name wins.
 */
async function resolveShippedNames(argv: Record<string, unknown>): Promise<void> {
  const one = async (v: unknown) => (typeof v === 'string' ? resolveModelArg(v) : v);
  if (Array.isArray(argv.model)) argv.model = argv.m = await Promise.all(argv.model.map(one));
  else if (typeof argv.model === 'string') argv.model = await one(argv.model);
  if (typeof argv.models === 'string') argv.models = (await Promise.all(argv.models.split(',').map((s) => one(s.trim())))).join(',');
  if (typeof argv.reference === 'string') argv.reference = argv.r = await one(argv.reference);
  const spec = argv.spec;
  if (typeof spec === 'string' && (SHIPPED_SPECS as readonly string[]).includes(spec) && !existsSync(spec)) argv.spec = shippedSpec(spec);
}

const COMMAND_MODULES = [auditCommand, mergeCommand, compareCommand, layersCommand, extractCommand, datasetsCommand, reportCommand, trainCommand, exportCommand, theoryCommand, schemaCommand];
/** First word of each command's usage (`audit [spec]` → `audit`). */
const COMMANDS: readonly string[] = COMMAND_MODULES.map((c) => String(c.command).split(' ')[0]!);

/** Stops a parse-only run (parseCommandLine) after the command line parsed, before the command runs. */
class ParsedOnly {
  constructor(
    readonly argv: Record<string, unknown>,
    readonly deprecations: string[],
  ) {}
}

/**
 * The command line as the CLI would parse it — deprecated spellings rewritten, repeated flags
 * refused, yargs' checks, shipped names resolved — without running the command: what the tests
 * use to check every documented example's arguments cheaply. Usage errors throw (UsageError).
 */
export async function parseCommandLine(argv: string[]): Promise<{ argv: Record<string, unknown>; deprecations: string[] }> {
  try {
    await main(argv, { parseOnly: true });
  } catch (e) {
    if (e instanceof ParsedOnly) return { argv: e.argv, deprecations: e.deprecations };
    throw e;
  }
  return { argv: {}, deprecations: [] };
}

export async function main(argv: string[], opts: { parseOnly?: boolean } = {}): Promise<void> {
  if (!opts.parseOnly) process.on('SIGINT', () => {
    interrupted = true;
    process.stderr.write('\nlayerprobe: interrupted; removing unfinished output\n');
    // The work in flight cannot be cancelled at once and runs on until exit; anything it prints
    // now (a summary table, a "report:" path) would describe a run that no longer exists.
    const mute = (() => true) as typeof process.stdout.write;
    process.stdout.write = mute;
    process.stderr.write = mute;
    void abortAllRunFolders().finally(() => process.exit(130));
  });
  if (argv.length === 0) {
    // The main job: audit the shipped reference models on the shipped test set.
    const spec = fileURLToPath(new URL('../../probes/fmnist-zoo.yaml', import.meta.url));
    process.stderr.write(`layerprobe: no command given; running the default audit ${path.relative(process.cwd(), spec)} (see --help for commands)\n`);
    argv = ['audit', spec];
  }
  // The warnings wait until the command line parsed: a usage error stays one line.
  const deprecations: string[] = [];
  argv = renameDeprecatedFlags(argv, (m) => deprecations.push(m));
  checkRepeatedFlags(argv);
  if (argv.includes('--version') || argv.includes('-V')) {
    await printVersion(argv.includes('--verbose'));
    return;
  }
  const cli = yargs(argv)
    .scriptName('layerprobe')
    .usage('$0 <command> [options]\n\nMeasures what the hidden layers of a trained classifier\ndo to real data, layer by layer.')
    .command(auditCommand)
    .command(mergeCommand)
    .command(compareCommand)
    .command(layersCommand)
    .command(extractCommand)
    .command(datasetsCommand)
    .command(reportCommand)
    .command(trainCommand)
    .command(exportCommand)
    .command(theoryCommand)
    .command(schemaCommand)
    .demandCommand(1, 'name a command (see the list above)')
    .middleware(checkSeed)
    .middleware(resolveShippedNames)
    .middleware((parsed) => {
      if (opts.parseOnly) throw new ParsedOnly(parsed, deprecations);
      for (const m of deprecations) warn(m);
    })
    .strict()
    .version(false)
    .option('version', { alias: 'V', type: 'boolean', describe: 'print the version (with --verbose: packages and the TF.js backend in use)' })
    .option('verbose', { type: 'boolean', describe: 'more detail where a command offers it' })
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 runtime failure (model or data), 2 usage error, 3 threshold failed, 4 report written but some metric cells failed (each with its reason in the report), 130 interrupted.')
    .fail((raw, err, y) => {
      if (err) throw err;
      // yargs spreads some messages over lines ("Invalid values:\n  Argument: to, …"): one line.
      const msg = raw.replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
      if (opts.parseOnly) throw new UsageError(msg);
      const command = argv.find((a) => !a.startsWith('-'));
      if (!command || !COMMANDS.includes(command) || msg.startsWith('Not enough non-option arguments')) {
        // No (known) command or subcommand: the list of commands is the useful answer.
        y.showHelp((s: string) => process.stderr.write(s + '\n'));
        fail(msg, undefined, 2);
      }
      // Within a command the error names the problem; the full help would bury it.
      const unknown = /^Unknown arguments?: ([^,\s]+)/.exec(msg);
      let near = '';
      if (unknown) {
        // The command's own option names, read off its help text (yargs exposes no list here).
        let help = '';
        y.showHelp((h: string) => (help = h));
        const options = [...new Set(Array.from(help.matchAll(/--([a-z][a-z0-9-]*)/g), (m) => m[1]!))];
        const name = unknown[1]!.replace(/^-+/, '');
        const close = options.filter((o) => editDistance(name, o) <= Math.max(2, Math.floor(name.length / 3)) || o.startsWith(name));
        near = didYouMean(name, close).replace(/`([^`]+)`/g, '`--$1`');
      }
      // `theory phase …`: the help to point at is the subcommand's.
      const words = command === 'theory' ? argv.slice(argv.indexOf(command), argv.indexOf(command) + 2).filter((a) => !a.startsWith('-')) : [command];
      fail(msg, `${near ? near + ' ' : ''}See \`layerprobe ${words.join(' ')} --help\``, 2);
    });
  await cli.parseAsync();
}

export async function runCli(argv: string[]): Promise<void> {
  // `layerprobe layers m.onnx | head` closes stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  try {
    await main(argv);
  } catch (e) {
    await abortAllRunFolders();
    if (interrupted) process.exit(130);
    if (e instanceof LayerprobeError) fail(e.message, e.hint, e.exitCode);
    if (process.env.LAYERPROBE_DEBUG && e instanceof Error) process.stderr.write((e.stack ?? '') + '\n');
    fail(`internal error: ${errorMessage(e).split('\n')[0]}`, 'this is a bug in layerprobe; rerun with LAYERPROBE_DEBUG=1 for a stack trace and report it', 1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runCli(hideBin(process.argv));
