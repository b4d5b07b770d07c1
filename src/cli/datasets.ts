import type { Argv, CommandModule } from 'yargs';
import { datasetInfo, fetchDataset, knownDataset, registryNames, type Split } from '../data/registry.js';
import { formatTable } from '../report/table.js';
import { UsageError } from '../errors.js';
import { printJson } from './result-json.js';

interface Args {
  action: string;
  name?: string;
  split?: string;
  json: boolean;
  verify: boolean;
  quiet: boolean;
}

export const datasetsCommand: CommandModule<object, Args> = {
  command: 'datasets <action> [name]',
  describe: 'known datasets: list them, show where their files are, fetch them (sha256-verified)',
  builder: (y: Argv) =>
    y
      .positional('action', { type: 'string', choices: ['list', 'info', 'fetch'], demandOption: true })
      .positional('name', { type: 'string', describe: 'dataset name (fashion-mnist, mnist)' })
      .option('split', { type: 'string', choices: ['train', 'test'], describe: 'fetch only this split' })
      .option('verify', { type: 'boolean', default: false, describe: 'info: also check every file against its known checksum' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON on stdout: {command, version, result, warnings}' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false })
      .example('$0 datasets list', 'what layerprobe knows by name')
      .example('$0 datasets info fashion-mnist --verify', 'where each file was found, checksums checked')
      .example('$0 datasets fetch mnist', 'download into ~/.cache/layerprobe/datasets/mnist with sha256 verification') as unknown as Argv<Args>,
  handler: async (a) => {
    if (a.action === 'list') {
      const rows = await Promise.all(
        registryNames().map(async (n) => {
          const info = await datasetInfo(n);
          return { name: n, description: knownDataset(n).description, train: info.splits.train.available, test: info.splits.test.available };
        }),
      );
      if (a.json) return printJson('datasets list', rows);
      process.stdout.write(
        formatTable(['name', 'train', 'test', 'description'], rows.map((r) => [r.name, r.train ? 'here' : 'missing', r.test ? 'here' : 'missing', r.description])) + '\n',
      );
      return;
    }
    if (!a.name) throw new UsageError(`datasets ${a.action} needs a dataset name`, `known: ${registryNames().join(', ')}`);
    const name = a.name;
    knownDataset(name);
    if (a.action === 'info') {
      const info = await datasetInfo(name, { verify: a.verify });
      if (a.json) return printJson('datasets info', info);
      process.stdout.write(`${info.name}: ${info.description}\n${info.homepage} (${info.license}); classes: ${info.classes.join(', ')}\n\n`);
      const rows = (['train', 'test'] as const).flatMap((s) =>
        info.splits[s].files.map((f) => [s, f.role, f.path ?? 'missing', f.location ?? '', f.bytes === null ? '' : String(f.bytes), f.verification ?? '']),
      );
      process.stdout.write(formatTable(['split', 'file', 'path', 'where', 'bytes', 'checksum'], rows) + '\n');
      process.stdout.write(`\nsearched: ${info.searched.map((d) => d.dir).join(', ')}\n`);
      return;
    }
    const files = await fetchDataset(name, {
      ...(a.split ? { split: a.split as Split } : {}),
      onProgress: (p) => {
        if (!a.quiet && p.received === p.total) process.stderr.write(`fetched ${p.file} (${p.total} bytes)\n`);
      },
    });
    if (a.json) return printJson('datasets fetch', files);
    for (const f of files) process.stdout.write(`${f.downloaded ? 'downloaded' : 'already here'}  ${f.path}  sha256 ${f.sha256}\n`);
  },
};
