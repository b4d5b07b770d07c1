/**
 * Read a run's report.json back: a run folder or the file itself. Every failure names the file,
 * and a report of another schema version is refused up front rather than half-rendered.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeFailure, UsageError, errorMessage } from '../errors.js';
import { REPORT_SCHEMA, reportSchema, type Report } from './schema.js';

export const REPORT_JSON = 'report.json';

export interface LoadedReport {
  report: Report;
  /** The report.json that was read. */
  file: string;
  /** The folder holding it (where report.html goes by default). */
  dir: string;
}

async function kind(p: string): Promise<'dir' | 'file' | 'missing'> {
  try {
    return (await stat(p)).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

const HINT = 'pass a run folder written by `layerprobe audit` (it holds report.json), or the report.json itself';

/** Where the report of a run folder (or a direct path to a report file) lives. */
export async function resolveReportFile(runFolderOrFile: string): Promise<string> {
  const k = await kind(runFolderOrFile);
  if (k === 'dir') {
    const file = path.join(runFolderOrFile, REPORT_JSON);
    if ((await kind(file)) !== 'file') throw new UsageError(`${runFolderOrFile} has no ${REPORT_JSON}`, HINT);
    return file;
  }
  if (k === 'missing') {
    if (runFolderOrFile.endsWith('.json')) throw new UsageError(`${runFolderOrFile} does not exist`, HINT);
    throw new UsageError(`${runFolderOrFile} has no ${REPORT_JSON} (there is no such folder)`, HINT);
  }
  return runFolderOrFile;
}

function firstIssue(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const i = issues[0];
  if (!i) return 'unknown mismatch';
  const at = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  return at ? `${at}: ${i.message}` : i.message;
}

/** Parse and validate a report.json (layerprobe.report/1 only). */
export async function loadReport(runFolderOrFile: string): Promise<LoadedReport> {
  const file = await resolveReportFile(runFolderOrFile);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new RuntimeFailure(`could not read ${file}: ${errorMessage(e)}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new RuntimeFailure(`${file} is not valid JSON: ${errorMessage(e)}`, 'the run may have been written by an interrupted or foreign tool; rerun `layerprobe audit`');
  }
  const schema = typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>).schema : undefined;
  if (schema !== REPORT_SCHEMA) {
    const found = schema === undefined ? 'no `schema` field' : `schema \`${typeof schema === 'string' ? schema : JSON.stringify(schema)}\``;
    throw new RuntimeFailure(`${file} has ${found}; this layerprobe reads ${REPORT_SCHEMA}`, schema === undefined ? 'is this a layerprobe report.json?' : 'use the layerprobe version that wrote it, or rerun the audit');
  }
  const parsed = reportSchema.safeParse(data);
  if (!parsed.success) throw new RuntimeFailure(`${file} does not match ${REPORT_SCHEMA}: ${firstIssue(parsed.error.issues)}`);
  return { report: parsed.data, file, dir: path.dirname(file) };
}
