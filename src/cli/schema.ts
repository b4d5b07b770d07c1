/**
 * `layerprobe schema`: the JSON Schema of report.json, or with --spec that of probe spec files,
 * both generated from the zod schemas the code validates with. Printed bare (not in the --json
 * envelope): the output is a schema document for other tools.
 */
import type { Argv, CommandModule } from 'yargs';
import { reportJsonSchema, REPORT_SCHEMA } from '../report/schema.js';
import { probeSpecJsonSchema, PROBE_SPEC_SCHEMA } from '../probe-spec/probe-spec.js';

interface Args {
  spec: boolean;
}

export const schemaCommand: CommandModule<object, Args> = {
  command: 'schema',
  describe: `print the JSON Schema of report.json (${REPORT_SCHEMA}), or of probe specs with --spec (${PROBE_SPEC_SCHEMA})`,
  builder: (y: Argv) =>
    y
      .option('spec', { type: 'boolean', default: false, describe: `the probe spec's schema (${PROBE_SPEC_SCHEMA}; YAML specs validate as the JSON they parse to; docs/probe-spec.md)` })
      .example('$0 schema > report.schema.json', 'validate reports with any JSON Schema tool')
      .example('$0 schema --spec > probe-spec.schema.json', 'validate probe specs (YAML or JSON) before a run, or in an editor') as unknown as Argv<Args>,
  handler: (a) => {
    const schema = a.spec ? probeSpecJsonSchema() : { $id: REPORT_SCHEMA, ...(reportJsonSchema() as object) };
    process.stdout.write(JSON.stringify(schema, null, 2) + '\n');
  },
};
