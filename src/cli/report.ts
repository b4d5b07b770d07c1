import type { Argv, CommandModule } from 'yargs';
import { renderReportFile } from '../report/render.js';
import { printJson } from './result-json.js';

interface Args {
  run: string;
  out?: string;
  'kappa-layer'?: string;
  json: boolean;
  force: boolean;
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
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}, result {html, source, bytes}' })
      .example('$0 report runs/mlp', 'rewrite runs/mlp/report.html from its report.json (runs/mlp: the audit gate example)')
      .example('$0 report runs/mlp/report.json -o audit.html --force', 'write the page somewhere else')
      .example('$0 report runs/mlp --kappa-layer dense_1 -o kappa.html --json', 'open the κ heat map at another layer; machine-readable output') as unknown as Argv<Args>,
  handler: async (a) => {
    const r = await renderReportFile(a.run, {
      ...(a.out !== undefined ? { out: a.out } : {}),
      ...(a['kappa-layer'] !== undefined ? { kappaLayer: a['kappa-layer'] } : {}),
      force: a.force,
    });
    if (a.json) printJson('report', r);
    else process.stdout.write(r.html + '\n');
  },
};
