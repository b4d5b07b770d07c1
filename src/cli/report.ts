import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError, errorMessage } from '../errors.js';
import { loadReport } from '../report/load.js';
import { renderHtml, REPORT_HTML } from '../report/html.js';
import { exists, writeFileAtomic } from '../report/run-folder.js';

interface Args {
  run: string;
  out?: string;
  'kappa-layer'?: string;
  json: boolean;
  force: boolean;
}

export interface ReportRenderOptions {
  out?: string;
  kappaLayer?: string;
  /** Replace an existing --out file (the run's own report.html is always replaced). */
  force?: boolean;
}

export interface ReportRenderResult {
  /** The report.html written (absolute). */
  html: string;
  /** The report.json it was rendered from (absolute). */
  source: string;
  bytes: number;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where the page goes: next to report.json, into an --out folder (a path ending in / is a folder,
 * created when missing), or to the --out file. Never onto the report.json it renders, and never
 * over another existing file without --force.
 */
async function target(out: string | undefined, dir: string, source: string, force: boolean): Promise<string> {
  if (out === undefined) return path.resolve(dir, REPORT_HTML);
  let file: string;
  if (/[\\/]$/.test(out) || (await isDir(out))) file = path.resolve(out, REPORT_HTML);
  else file = path.resolve(out);
  if (file === path.resolve(source)) throw new UsageError(`--out ${out} is the report.json being rendered`, 'write the page elsewhere, e.g. -o report.html');
  if (!force && file !== path.resolve(dir, REPORT_HTML) && (await exists(file))) throw new UsageError(`--out ${out}: ${file} already exists`, 'pass --force to replace it');
  const parent = path.dirname(file);
  try {
    await mkdir(parent, { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot write to ${parent}: ${errorMessage(e)}`);
  }
  return file;
}

/** The work of `layerprobe report`, callable without yargs. */
export async function renderReportFile(runFolderOrFile: string, opts: ReportRenderOptions = {}): Promise<ReportRenderResult> {
  const loaded = await loadReport(runFolderOrFile);
  if (opts.kappaLayer !== undefined && !loaded.report.models.some((m) => m.layers.some((l) => l.id === opts.kappaLayer))) {
    const ids = [...new Set(loaded.report.models.flatMap((m) => m.layers.map((l) => l.id)))];
    throw new UsageError(`--kappa-layer \`${opts.kappaLayer}\` is not a layer of this report`, `layers: ${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', …' : ''}`);
  }
  const file = await target(opts.out, loaded.dir, loaded.file, opts.force ?? false);
  const page = await renderHtml(loaded.report, opts.kappaLayer !== undefined ? { kappaLayer: opts.kappaLayer } : {});
  await writeFileAtomic(file, page);
  return { html: file, source: path.resolve(loaded.file), bytes: Buffer.byteLength(page) };
}

export const reportCommand: CommandModule<object, Args> = {
  command: 'report <run>',
  describe: 'write the self-contained HTML report (charts, tables, definitions) of a run folder',
  builder: (y: Argv) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'run folder written by audit (or its report.json)' })
      .option('out', { alias: 'o', type: 'string', describe: 'HTML file (or folder) to write (default report.html next to report.json)' })
      .option('kappa-layer', { type: 'string', describe: 'layer id whose pairwise κ heat map is shown first (default the last layer)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing --out file' })
      .option('json', { type: 'boolean', default: false, describe: 'print {html, source, bytes} as JSON on stdout' })
      .example('$0 report runs/20250101T120000Z-audit-model', 'rewrite runs/…/report.html from its report.json')
      .example('$0 report runs/latest/report.json -o /tmp/audit.html', 'write the page somewhere else')
      .example('$0 report run/ --kappa-layer dense_1 --json', 'open the κ heat map at another layer; machine-readable output') as unknown as Argv<Args>,
  handler: async (a) => {
    const r = await renderReportFile(a.run, {
      ...(a.out !== undefined ? { out: a.out } : {}),
      ...(a['kappa-layer'] !== undefined ? { kappaLayer: a['kappa-layer'] } : {}),
      force: a.force,
    });
    process.stdout.write(a.json ? JSON.stringify(r, null, 2) + '\n' : r.html + '\n');
  },
};
