/**
 * The work of `layerprobe report`: re-render a run's report.html from its report.json.
 */
import { stat } from 'node:fs/promises';
import { mkdirSteps } from '../util/mkdir-steps.js';
import path from 'node:path';
import { UsageError, errorMessage } from '../errors.js';
import { loadReport } from './load.js';
import { renderHtml, REPORT_HTML } from './html.js';
import { exists, writeFileAtomic } from './run-folder.js';

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
    await mkdirSteps(parent);
  } catch (e) {
    throw new UsageError(`cannot write to ${parent}: ${errorMessage(e)}`);
  }
  return file;
}

/** Renders the report of a run folder (or a report.json) to HTML; the API of `layerprobe report`. */
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
