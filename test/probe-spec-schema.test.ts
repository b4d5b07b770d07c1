/**
 * `layerprobe schema --spec` prints a JSON Schema that every probe spec in the repository
 * (probes/*.yaml, the yaml blocks of docs/probe-spec.md and README.md) satisfies, checked by an
 * independent validator (python3-jsonschema, Draft 2020-12), and that refuses what the spec parser
 * refuses (an unknown key, a wrong type, a missing model path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseProbeSpec } from '../src/probe-spec/probe-spec.js';
import { cli, ROOT } from './helpers/fixtures.js';

const PY = '/usr/bin/python3';

function jsonschemaAvailable(): boolean {
  return existsSync(PY) && spawnSync(PY, ['-c', 'import jsonschema'], { encoding: 'utf8' }).status === 0;
}

/** Validates each document against the schema; returns one error message (or '') per document. */
function pyValidate(schema: unknown, docs: unknown[]): string[] {
  const script = [
    'import json, sys, jsonschema',
    'data = json.load(sys.stdin)',
    'jsonschema.Draft202012Validator.check_schema(data["schema"])',
    'v = jsonschema.Draft202012Validator(data["schema"])',
    'print(json.dumps([(lambda es: es[0].message if es else "")(list(v.iter_errors(d))) for d in data["docs"]]))',
  ].join('\n');
  const r = spawnSync(PY, ['-c', script], { input: JSON.stringify({ schema, docs }), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

/** Every probe spec shown or shipped in the repository, by where it comes from. */
function exampleSpecs(): { where: string; text: string }[] {
  const out: { where: string; text: string }[] = [];
  for (const f of readdirSync(path.join(ROOT, 'probes')).filter((n) => /\.(ya?ml|json)$/.test(n))) {
    out.push({ where: `probes/${f}`, text: readFileSync(path.join(ROOT, 'probes', f), 'utf8') });
  }
  for (const doc of ['docs/probe-spec.md', 'README.md']) {
    const file = path.join(ROOT, doc);
    if (!existsSync(file)) continue;
    const blocks = Array.from(readFileSync(file, 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g), (m) => m[1]!);
    blocks.forEach((text, i) => {
      // Only blocks that are specs (a dataset and models), not other YAML a page may show.
      const v = parseYaml(text) as Record<string, unknown> | null;
      if (v && typeof v === 'object' && 'dataset' in v && 'models' in v) out.push({ where: `${doc} yaml block ${i + 1}`, text });
    });
  }
  return out;
}

test('schema --spec: every example spec validates with an independent JSON Schema validator', { skip: jsonschemaAvailable() ? false : 'python3-jsonschema is not installed (apt-get install python3-jsonschema)' }, () => {
  const r = cli(['schema', '--spec']);
  assert.equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout) as { $id: string; $schema: string; properties: Record<string, unknown> };
  assert.equal(schema.$id, 'layerprobe.probe-spec/1');
  assert.match(schema.$schema, /2020-12/);
  // Beside, not instead of, the report schema.
  const report = JSON.parse(cli(['schema']).stdout) as { $id: string };
  assert.equal(report.$id, 'layerprobe.report/1');

  const examples = exampleSpecs();
  assert.ok(examples.length >= 5, `only ${examples.length} example specs found`);
  const errors = pyValidate(schema, examples.map((e) => parseYaml(e.text) as unknown));
  assert.deepEqual(examples.map((e, i) => [e.where, errors[i]]).filter(([, e]) => e !== ''), []);
  // The parser accepts them too (schema and parser agree on the examples).
  for (const e of examples) parseProbeSpec(e.text, path.join(ROOT, 'probes', 'example.yaml'));

  // And both refuse the same broken specs: the validator is not accepting everything.
  const base = parseYaml(examples[0]!.text) as { dataset: Record<string, unknown>; models: Record<string, unknown>[] };
  const broken: [string, unknown][] = [
    ['unknown top-level key', { ...base, datset: 'x' }],
    ['unknown model key', { ...base, models: [{ ...base.models[0], inptu: {} }] }],
    ['model without path', { ...base, models: [{ name: 'x' }] }],
    ['no models', { ...base, models: [] }],
    ['perClass not an integer', { ...base, dataset: { ...base.dataset, perClass: 2.5 } }],
    ['unknown metric group', { ...base, metrics: ['geometry', 'vibes'] }],
    ['ci out of range', { ...base, ci: 1.5 }],
    ['channels 2', { ...base, models: [{ ...base.models[0], input: { channels: 2 } }] }],
  ];
  const brokenErrors = pyValidate(schema, broken.map(([, d]) => d));
  broken.forEach(([what, doc], i) => {
    assert.notEqual(brokenErrors[i], '', `the schema accepts a spec with ${what}`);
    assert.throws(() => parseProbeSpec(JSON.stringify(doc), path.join(ROOT, 'probes', 'x.json')), /probe spec/, `the parser accepts a spec with ${what}`);
  });
  // A single number where a list is allowed, as spec files write it.
  assert.equal(pyValidate(schema, [{ ...base, models: [{ ...base.models[0], input: { mean: 0.5, std: [0.5] } }] }])[0], '');
});
