/**
 * The seeded mutation fuzzer (`npm run fuzz`; a small budget of it runs in `npm test`).
 * For each format, mutants 0..n-1 are opened in-process by a worker process (fast: no CLI start-up
 * per mutant), which the parent restarts past any mutant that hangs it or kills it; every
 * `cliEvery`-th mutant is also run through the real CLI (`layers` for models, a small `extract`
 * for datasets) under /usr/bin/time for its peak RSS. Defects are judged by judge.ts.
 *
 *   node --import tsx test/fuzz/run.ts [--per-format 2000] [--seed 1] [--cli-every 25]
 *     [--limit-s 60] [--formats idx,npy,…] [--json out.json]
 *   node --import tsx test/fuzz/run.ts --format tfjs --seed 1 --only 17 --keep dir   (reproduce one)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FORMAT, FORMATS, ROOT, mutant, writeCase, type FormatName } from './formats.js';
import { judgeCli, type Verdict } from './judge.js';

export interface FuzzOptions {
  perFormat: number;
  seed: number;
  cliEvery: number;
  limitSeconds: number;
  formats: readonly FormatName[];
  log?: (line: string) => void;
}

export interface Defect {
  format: FormatName;
  index: number;
  via: 'in-process' | 'cli';
  kind: string;
  message: string;
}

export interface FormatSummary {
  format: FormatName;
  mutants: number;
  ok: number;
  refused: number;
  cliRuns: number;
  cliMaxRssMb: number | null;
  inProcessMaxRssMb: number;
  seconds: number;
}

export interface FuzzSummary {
  seed: number;
  perFormat: number;
  seconds: number;
  formats: FormatSummary[];
  defects: Defect[];
}

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** One mutant through the real CLI; RSS from /usr/bin/time where present. */
export async function runCliCase(format: FormatName, seed: number, index: number, limitSeconds: number, keep?: string): Promise<Verdict & { seconds: number; maxRssKb: number | null }> {
  const dir = keep ?? (await mkdtemp(path.join(os.tmpdir(), `lp-fuzzcli-${format}-`)));
  try {
    await writeCase(dir, await mutant(format, seed, index));
    const args = FORMAT[format].cli(dir, path.join(dir, 'out'));
    const cmd = [process.execPath, path.join(ROOT, 'bin/layerprobe.js'), ...args];
    const t0 = performance.now();
    const r = spawnSync(TIME ?? cmd[0]!, TIME ? ['-f', '@@RSS %M', ...cmd] : cmd.slice(1), {
      cwd: dir,
      encoding: 'utf8',
      timeout: limitSeconds * 1000,
      killSignal: 'SIGKILL',
      env: { ...process.env, CI: '1', LAYERPROBE_CALL_TIMEOUT_S: String(Math.max(1, limitSeconds - 5)) },
      maxBuffer: 64 << 20,
    });
    const seconds = (performance.now() - t0) / 1000;
    let stderr = r.stderr ?? '';
    let maxRssKb: number | null = null;
    const m = /@@RSS (\d+)\s*$/.exec(stderr);
    if (m) {
      maxRssKb = Number(m[1]);
      stderr = stderr.slice(0, m.index);
    }
    // /usr/bin/time reports a signal death as "Command terminated by signal N".
    const sig = /Command terminated by signal (\d+)/.exec(stderr);
    stderr = stderr.replace(/Command (?:exited with non-zero status \d+|terminated by signal \d+)\n?/g, '');
    const timedOut = r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
    const v = judgeCli({ code: sig ? null : r.status, signal: sig ? `signal ${sig[1]}` : r.signal, stderr, seconds, timedOut, maxRssKb }, limitSeconds);
    return { ...v, seconds, maxRssKb };
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

interface WorkerLine {
  start?: number;
  index?: number;
  ms?: number;
  maxRssKb?: number;
  defect?: boolean;
  outcome?: 'ok' | 'refused';
  kind?: string;
  message?: string;
}

/** Runs mutants [from, to) in one worker; resolves with where it stopped and why. */
function runWorker(format: FormatName, seed: number, from: number, to: number, limitSeconds: number, onLine: (l: WorkerLine) => void): Promise<{ next: number; failure: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fuzz/worker.ts'), format, String(seed), String(from), String(to)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1', LAYERPROBE_CALL_TIMEOUT_S: String(Math.max(1, limitSeconds - 5)) },
    });
    let current = from;
    let done = from;
    let stderrTail = '';
    let timer: NodeJS.Timeout | undefined;
    let hung = false;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, limitSeconds * 1000 + (current === from ? 20_000 : 0)); // the first mutant also pays the start-up
    };
    arm();
    child.stderr.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-800)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('@@FUZZ ')) return;
      const l = JSON.parse(line.slice(7)) as WorkerLine;
      if (l.start !== undefined) {
        current = l.start;
        arm();
      } else {
        done = l.index! + 1;
        onLine(l);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (done >= to && code === 0) return resolve({ next: to, failure: null });
      const why = hung ? `hung: no answer within ${limitSeconds} s` : `worker died (exit ${code}, signal ${signal}): ${stderrTail.trim().split('\n').slice(-2).join(' | ')}`;
      resolve({ next: current + 1, failure: done > current ? null : why });
    });
  });
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const t0 = performance.now();
  const found: Defect[] = [];
  // Each defect is logged as it is found, so a long run that is cut short still tells.
  const defects = {
    push(d: Defect): void {
      found.push(d);
      log(`DEFECT ${d.format} #${d.index} (${d.via}): ${d.kind}: ${d.message}`);
    },
    filter: (p: (d: Defect) => boolean) => found.filter(p),
  };
  const formats: FormatSummary[] = [];
  for (const format of opts.formats) {
    const f0 = performance.now();
    const s: FormatSummary = { format, mutants: 0, ok: 0, refused: 0, cliRuns: 0, cliMaxRssMb: null, inProcessMaxRssMb: 0, seconds: 0 };
    let next = 0;
    while (next < opts.perFormat) {
      const r = await runWorker(format, opts.seed, next, opts.perFormat, opts.limitSeconds, (l) => {
        s.mutants++;
        s.inProcessMaxRssMb = Math.max(s.inProcessMaxRssMb, Math.round(l.maxRssKb! / 1024));
        if (l.defect) defects.push({ format, index: l.index!, via: 'in-process', kind: l.kind!, message: l.message ?? '' });
        else if (l.outcome === 'ok') s.ok++;
        else s.refused++;
        if (!l.defect && l.maxRssKb! >= 2 * 1024 * 1024) defects.push({ format, index: l.index!, via: 'in-process', kind: `peak RSS ${Math.round(l.maxRssKb! / 1024)} MB`, message: '' });
      });
      if (r.failure) {
        s.mutants++;
        defects.push({ format, index: r.next - 1, via: 'in-process', kind: r.failure, message: '' });
      }
      next = r.next;
    }
    for (let i = 0; i < opts.perFormat; i += opts.cliEvery) {
      const v = await runCliCase(format, opts.seed, i, opts.limitSeconds);
      s.cliRuns++;
      if (v.maxRssKb !== null) s.cliMaxRssMb = Math.max(s.cliMaxRssMb ?? 0, Math.round(v.maxRssKb / 1024));
      if (v.defect) defects.push({ format, index: i, via: 'cli', kind: v.kind, message: v.message });
    }
    s.seconds = Math.round((performance.now() - f0) / 100) / 10;
    formats.push(s);
    log(`fuzz ${format}: ${s.mutants} mutants (${s.ok} opened, ${s.refused} refused), ${s.cliRuns} through the CLI, peak RSS ${s.inProcessMaxRssMb} MB in-process / ${s.cliMaxRssMb ?? '?'} MB CLI, ${s.seconds} s, ${defects.filter((d) => d.format === format).length} defects`);
  }
  for (const d of found) log(`reproduce ${d.format} #${d.index}: node --import tsx test/fuzz/run.ts --format ${d.format} --seed ${opts.seed} --only ${d.index} --keep /tmp/lp-case`);
  return { seed: opts.seed, perFormat: opts.perFormat, seconds: Math.round((performance.now() - t0) / 100) / 10, formats, defects: found };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seed = Number(arg('seed', '1'));
  const limitSeconds = Number(arg('limit-s', '60'));
  const only = process.argv.includes('--only') ? Number(arg('only', '0')) : null;
  if (only !== null) {
    // Reproduce one mutant: write it out, run it in-process and through the CLI.
    const format = arg('format', 'tfjs') as FormatName;
    const keep = path.resolve(arg('keep', path.join(os.tmpdir(), `lp-case-${format}-${only}`)));
    await writeCase(keep, await mutant(format, seed, only));
    let inProcess: string;
    try {
      await FORMAT[format].open(keep);
      inProcess = 'opened';
    } catch (e) {
      inProcess = `${(e as Error).constructor.name}: ${(e as Error).message}`;
    }
    const cli = await runCliCase(format, seed, only, limitSeconds, keep);
    process.stdout.write(`${keep}\nin-process: ${inProcess}\ncli: ${JSON.stringify(cli)}\n`);
  } else {
    const formats = arg('formats', FORMATS.join(',')).split(',') as FormatName[];
    const summary = await runFuzz({ perFormat: Number(arg('per-format', '2000')), seed, cliEvery: Number(arg('cli-every', '25')), limitSeconds, formats });
    const json = arg('json', '');
    if (json) await writeFile(json, JSON.stringify(summary, null, 2) + '\n');
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    process.exitCode = summary.defects.length ? 1 : 0;
  }
}
