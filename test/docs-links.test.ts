/**
 * Every reference to the documentation resolves: each "docs/<page>.md[#anchor]" named in the
 * sources, the bin scripts, README.md and the docs themselves, and every relative Markdown link
 * in README.md and docs/, points at an existing file and, for an anchor, at a heading of that page
 * whose GitHub slug is the anchor. Also: every metric a report can contain has its own section.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogRows, OUTPUT_METRICS } from '../src/metrics/catalog.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function files(dir: string, keep: (f: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out;
}

/** GitHub's heading anchor: lower case, punctuation other than - and _ dropped, spaces to -. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links keep their text
    .replace(/<[^>]+>/g, '')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** The anchors of a Markdown page, with GitHub's -1, -2 … for repeated headings. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = githubSlug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

interface Ref {
  from: string;
  target: string;
  anchor: string | null;
}

/** "docs/…md#anchor" anywhere in a file, relative to the package root. */
function docsMentions(file: string): Ref[] {
  const text = readFileSync(file, 'utf8');
  return Array.from(text.matchAll(/(?<![\w./-])docs\/([A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md)(?:#([A-Za-z0-9_-]+))?/g), (m) => ({
    from: path.relative(ROOT, file),
    target: path.join('docs', m[1]!),
    anchor: m[2] ?? null,
  }));
}

/** Relative Markdown links outside code blocks, resolved against the file's folder. */
function markdownLinks(file: string): Ref[] {
  const out: Ref[] = [];
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = m[1]!;
      if (/^[a-z]+:/i.test(href)) continue;
      const [p, anchor] = href.split('#', 2) as [string, string | undefined];
      const target = p ? path.relative(ROOT, path.resolve(path.dirname(file), p)) : path.relative(ROOT, file);
      out.push({ from: path.relative(ROOT, file), target, anchor: anchor ?? null });
    }
  }
  return out;
}

const sources = [
  ...files(path.join(ROOT, 'src'), (f) => f.endsWith('.ts')),
  ...files(path.join(ROOT, 'bin'), () => true),
  path.join(ROOT, 'README.md'),
  ...files(path.join(ROOT, 'docs'), (f) => f.endsWith('.md')),
];
const markdown = [path.join(ROOT, 'README.md'), ...files(path.join(ROOT, 'docs'), (f) => f.endsWith('.md'))];

test('GitHub slugs as GitHub writes them', () => {
  assert.equal(githubSlug('probe_heldout_accuracy'), 'probe_heldout_accuracy');
  assert.equal(githubSlug('Within- and between-class covariance'), 'within--and-between-class-covariance');
  assert.equal(githubSlug('theory deep-linear'), 'theory-deep-linear');
  assert.equal(githubSlug('`models.input`'), 'modelsinput');
  assert.equal(githubSlug('From PyTorch & notebooks!'), 'from-pytorch--notebooks');
});

test('every docs/ reference points at an existing page and heading', (t) => {
  const refs = [...sources.flatMap(docsMentions), ...markdown.flatMap(markdownLinks)];
  assert.ok(refs.length > 50, `only ${refs.length} references found: is the scan broken?`);
  const broken: string[] = [];
  const cache = new Map<string, Set<string>>();
  for (const r of refs) {
    const file = path.join(ROOT, r.target);
    if (!existsSync(file)) {
      broken.push(`${r.from}: ${r.target} does not exist`);
      continue;
    }
    if (r.anchor === null || !r.target.endsWith('.md')) continue;
    if (!cache.has(file)) cache.set(file, anchors(file));
    if (!cache.get(file)!.has(r.anchor)) broken.push(`${r.from}: ${r.target}#${r.anchor} — no such heading`);
  }
  assert.deepEqual([...new Set(broken)], []);
});

test('every catalogue row points at its own section in docs/metrics, and the model accuracy has one', () => {
  const missing: string[] = [];
  for (const r of catalogRows()) {
    const [page, anchor] = r.docs.split('#') as [string, string];
    const file = path.join(ROOT, page);
    if (anchor !== r.key || !existsSync(file) || !anchors(file).has(anchor)) missing.push(`${r.key} → ${r.docs}`);
  }
  const all = new Set(files(path.join(ROOT, 'docs/metrics'), (f) => f.endsWith('.md')).flatMap((f) => [...anchors(f)]));
  for (const k of OUTPUT_METRICS) if (!all.has(k)) missing.push(`${k}: no section in docs/metrics`);
  assert.deepEqual(missing, []);
});

test('no SCIENCE.md citations in the documentation, the sources (definitions, notes, messages) or the bin scripts', () => {
  const shipped = [path.join(ROOT, 'README.md'), ...files(path.join(ROOT, 'docs'), (f) => f.endsWith('.md')), ...files(path.join(ROOT, 'bin'), () => true), ...files(path.join(ROOT, 'src'), (f) => f.endsWith('.ts'))];
  const offenders = shipped
    .filter((f) => /SCIENCE(\.md)?\s*§|SCIENCE\.md/.test(readFileSync(f, 'utf8')))
    .map((f) => path.relative(ROOT, f));
  assert.deepEqual(offenders, []);
});
