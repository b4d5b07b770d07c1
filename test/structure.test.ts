/**
 * The import graph of src/ follows the intended layering (docs/ARCHITECTURE: layers import only
 * downward): cli → api → pipeline → report → probe-spec → metrics → stats → features → runtime →
 * data; theory/, train/ and export/ sit beside the spine (they may use it, it never uses them);
 * linalg/, util/ and src/errors.ts are leaves any folder may use and that use only leaves;
 * src/index.ts (the package API) may use anything and nothing uses it. Checked here: no import
 * from a lower folder to a higher one, no spine → beside import, no circle between folders or
 * between files, and no dynamic import() of a project module (it hides a dependency from this
 * check and from readers) outside the CLI entry. Imports are read with the TypeScript parser, so
 * type-only imports count and comments do not.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from './helpers/fixtures.js';

const SRC = path.join(ROOT, 'src');
const VENDOR = path.join(ROOT, 'vendor');

/** The spine, top to bottom: a folder may import only folders after it. */
const SPINE = ['cli', 'api', 'pipeline', 'report', 'probe-spec', 'metrics', 'stats', 'features', 'runtime', 'data'];
const BESIDE = new Set(['theory', 'train', 'export']);
const LEAVES = new Set(['linalg', 'util', 'errors.ts']);
const API = 'index.ts';
const SHIPPED = 'shipped.ts';
/** The only file allowed a dynamic import() of a project module. */
const CLI_ENTRY = 'cli/main.ts';

/**
 * Written exceptions, each an edge `from-folder -> to-folder` with the files that make it and why.
 * A listed edge that no longer occurs fails the test, so the list shrinks as the code is fixed.
 */
const EXCEPTIONS: { from: string; to: string; files: string[]; why: string }[] = [];

interface Edge {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** src-relative path with forward slashes. */
function rel(file: string): string {
  return path.relative(SRC, file).split(path.sep).join('/');
}

/** The folder a src file belongs to (first path segment), or the file name for files directly in src/. */
function folderOf(relPath: string): string {
  const i = relPath.indexOf('/');
  return i < 0 ? relPath : relPath.slice(0, i);
}

function spineRank(folder: string): number {
  return SPINE.findIndex((s) => s.split('|').includes(folder));
}

interface Scan {
  edges: Edge[];
  /** `file: why` for each forbidden dynamic import. */
  dynamic: string[];
}

/** Static imports/exports (type-only included, `typeof import()` types included) and dynamic import() calls of every src file. */
function scan(): Scan {
  const edges: Edge[] = [];
  const dynamic: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = rel(file);
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    // Variables bound to a string literal, to tell `import(specifier)` of an optional package from a hidden project import.
    const literals = new Map<string, string>();
    const addEdge = (spec: string): void => {
      if (!spec.startsWith('.')) return;
      // vendor/ holds third-party code bundled at build time (scripts/bundle-tfjs.ts): a package, not a layer.
      if (path.resolve(path.dirname(file), spec).startsWith(VENDOR + path.sep)) return;
      const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      edges.push({ from, to: rel(target) });
    };
    const visit = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        addEdge(node.moduleSpecifier.text);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
        addEdge(node.argument.literal.text);
      } else if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && ts.isStringLiteralLike(node.initializer)) {
        literals.set(node.name.text, node.initializer.text);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const arg = node.arguments[0];
        const spec = arg && ts.isStringLiteralLike(arg) ? arg.text : arg && ts.isIdentifier(arg) ? literals.get(arg.text) : undefined;
        const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        if (spec === undefined) dynamic.push(`${from}:${line}: import() of a computed specifier`);
        else if (spec.startsWith('.') && from !== CLI_ENTRY) dynamic.push(`${from}:${line}: import('${spec}')`);
        // A bare package name loaded on demand (an optional backend, a heavy chart library) is no project dependency.
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return { edges, dynamic };
}

const { edges, dynamic } = scan();

/** Folder-level edges, each with the file edges that make it. */
function folderEdges(): Map<string, Edge[]> {
  const out = new Map<string, Edge[]>();
  for (const e of edges) {
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    if (a === b) continue;
    const key = `${a} -> ${b}`;
    if (!out.has(key)) out.set(key, []);
    out.get(key)!.push(e);
  }
  return out;
}

function isException(a: string, b: string, fileEdges: readonly Edge[]): boolean {
  return EXCEPTIONS.some((x) => x.from === a && x.to === b && fileEdges.every((e) => x.files.includes(e.from)));
}

/** Why a folder edge a → b breaks the layering, or null when it is allowed. */
function violation(a: string, b: string): string | null {
  if (b === API) return `${API} is the package API; nothing inside src imports it`;
  // shipped.ts (the shipped models, data and specs, deriving ONNX twins through export/) sits at
  // the API's level: the CLI and index.ts use it, nothing below them.
  if (b === SHIPPED && a !== API && a !== 'cli') return `${SHIPPED} is at the API's level (it uses export/); only the CLI and ${API} use it`;
  if (a === API || a === 'cli' || a === SHIPPED) return null;
  if (LEAVES.has(a)) return LEAVES.has(b) ? null : `${a} is a leaf helper and may import only leaves (linalg, util, errors.ts)`;
  if (LEAVES.has(b)) return null;
  if (BESIDE.has(a)) return b === 'cli' ? `${a} must not import the CLI` : null;
  const ra = spineRank(a);
  const rb = spineRank(b);
  if (ra < 0) return `${a} is not placed in the layering (add it to SPINE, BESIDE or LEAVES in test/structure.test.ts)`;
  if (BESIDE.has(b)) return `the spine never uses ${b}/ (theory, train and export sit beside it)`;
  if (rb < 0) return `${b} is not placed in the layering (add it to SPINE, BESIDE or LEAVES in test/structure.test.ts)`;
  return rb < ra ? `${a} sits below ${b} (${SPINE.join(' → ')})` : null;
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(nodes: Iterable<string>, next: (n: string) => Iterable<string>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next(v)) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const n of nodes) if (!idx.has(n)) strong(n);
  return out;
}

test('the scan sees the imports (a check that finds nothing cannot fail)', () => {
  assert.ok(edges.length > 300, `only ${edges.length} import edges found`);
  assert.ok(edges.some((e) => e.from === 'pipeline/capture.ts' && e.to === 'runtime/types.ts'), 'a known downward import (pipeline/capture.ts → runtime/types.ts) was not seen');
  // The checks themselves, on made-up edges.
  assert.match(violation('report', 'pipeline') ?? '', /below/);
  assert.match(violation('runtime', 'train') ?? '', /never uses train/);
  assert.match(violation('linalg', 'metrics') ?? '', /leaf/);
  assert.equal(violation('theory', 'pipeline'), null);
  assert.equal(violation('pipeline', 'report'), null);
  assert.deepEqual(cycles(['a', 'b', 'c'], (n) => ({ a: ['b'], b: ['a'], c: ['a'] })[n] ?? []), [['a', 'b']]);
});

test('every import goes down the layering (or sideways from theory/train/export into the spine)', () => {
  const bad: string[] = [];
  for (const [key, fileEdges] of folderEdges()) {
    const [a, b] = key.split(' -> ') as [string, string];
    const why = violation(a, b);
    if (why && !isException(a, b, fileEdges)) bad.push(`${key}: ${why}\n    ${fileEdges.map((e) => `${e.from} → ${e.to}`).join('\n    ')}`);
  }
  assert.deepEqual(bad, []);
});

test('the written exceptions are all still needed', () => {
  const present = folderEdges();
  for (const x of EXCEPTIONS) {
    const fileEdges = present.get(`${x.from} -> ${x.to}`);
    assert.ok(fileEdges && violation(x.from, x.to), `exception ${x.from} -> ${x.to} (${x.why}) no longer occurs: remove it from test/structure.test.ts`);
  }
});

test('no folders import each other in a circle (the written exceptions left out)', () => {
  const next = new Map<string, Set<string>>();
  for (const [key, fileEdges] of folderEdges()) {
    const [a, b] = key.split(' -> ') as [string, string];
    if (violation(a, b) && isException(a, b, fileEdges)) continue;
    if (!next.has(a)) next.set(a, new Set());
    next.get(a)!.add(b);
  }
  assert.deepEqual(cycles(next.keys(), (n) => next.get(n) ?? []), []);
});

test('no files import each other in a circle', () => {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  assert.deepEqual(cycles(next.keys(), (n) => next.get(n) ?? []), []);
});

test('no dynamic import() of project modules outside the CLI entry', () => {
  assert.deepEqual(dynamic, []);
});
