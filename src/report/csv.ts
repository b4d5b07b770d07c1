/**
 * CSV cells for every table layerprobe writes (metrics.csv, monitor.csv, sweep.csv, the theory
 * tables): empty for a missing or non-finite number (CSV has no NaN), and strings quoted when a
 * spreadsheet could misread them — separators, quotes, newlines, or a leading = + - @, which
 * would start a formula. Layer and class names come from files the user did not write.
 */
export type CsvValue = string | number | boolean | null | undefined;

export function csvCell(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = String(v);
  return typeof v === 'string' && /[",\n\r]|^[=+\-@]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(cells: readonly CsvValue[]): string {
  return cells.map(csvCell).join(',');
}
