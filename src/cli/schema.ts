import type { Argv, CommandModule } from 'yargs';
import { reportJsonSchema, REPORT_SCHEMA } from '../report/schema.js';

export const schemaCommand: CommandModule<object, { json: boolean }> = {
  command: 'schema',
  describe: `print the JSON Schema of report.json (${REPORT_SCHEMA})`,
  builder: (y: Argv) =>
    y.example('$0 schema > report.schema.json', 'validate reports with any JSON Schema tool') as unknown as Argv<{ json: boolean }>,
  handler: () => {
    process.stdout.write(JSON.stringify({ $id: REPORT_SCHEMA, ...(reportJsonSchema() as object) }, null, 2) + '\n');
  },
};
