/** `layerprobe merge`: statistics shards of a distributed audit → the audit's run folder (docs/distributed.md). */
import type { Argv, CommandModule } from 'yargs';
import { mergeShards } from '../pipeline/merge.js';
import { renderSummary } from '../report/summary.js';
import { throwIfGatesFailed } from './audit.js';
import { printJson } from './result-json.js';

interface Args {
  shards: string[];
  out?: string;
  means?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

export const mergeCommand: CommandModule<object, Args> = {
  command: 'merge <shards..>',
  describe: 'merge the statistics shards of `audit --shard i/n` into the run folder one process would write',
  builder: (y: Argv) =>
    y
      .positional('shards', { type: 'string', array: true, demandOption: true, describe: 'every shard file of one audit (phase 1), or the means file and every phase-2 shard' })
      .option('out', { alias: 'o', type: 'string', describe: 'run folder (default runs/<time>-audit-<model>)' })
      .option('means', { type: 'string', describe: 'where to write the means file when a second pass is needed (default means.lpshard beside the first shard)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing run folder or means file' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}, result the report (or {kind: "means", file, layers} when a second pass is needed)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress or table' })
      .example('$0 merge shards/shard-*-of-4.lpshard --out runs/big', 'phase 1: the run folder, or the means file when exact NC1/NC4 need a second pass')
      .example('$0 merge shards/means.lpshard shards/*.phase2.lpshard --out runs/big', 'after phase 2 (audit --shard i/n --means shards/means.lpshard)') as unknown as Argv<Args>,
  handler: async (a) => {
    const quiet = a.quiet || a.json;
    const r = await mergeShards({
      files: a.shards,
      ...(a.out !== undefined ? { out: a.out } : {}),
      ...(a.means !== undefined ? { means: a.means } : {}),
      force: a.force,
      command: ['merge', ...process.argv.slice(3)].join(' '),
      onStage: (msg) => {
        if (!quiet) process.stderr.write(msg + '\n');
      },
    });
    if (r.kind === 'means') {
      if (a.json) return printJson('merge', { kind: 'means', file: r.file, layers: r.layers });
      const layers = r.layers.filter((l) => l.layers.length).map((l) => `${l.model}: ${l.layers.join(', ')}`).join('; ');
      process.stdout.write(
        `phase 2 needed (exact NC1/NC4 need the global class means; layers ${layers}).\n` +
          `means: ${r.file}\n` +
          `next: run every task again with --means ${r.file} added, then: layerprobe merge ${r.file} <phase-2 shards> --out RUN\n`,
      );
      return;
    }
    if (a.json) printJson('merge', r.result.report, r.result.report.warnings);
    else if (!a.quiet) process.stdout.write(renderSummary(r.result.report) + '\n\n' + `report: ${r.result.outDir}/report.html (data: report.json, metrics.csv; merged from ${r.shards} shards)\n`);
    throwIfGatesFailed(r.result);
  },
};
