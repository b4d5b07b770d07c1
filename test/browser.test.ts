/**
 * report.html in a real browser (headless Chromium through playwright-core): it loads nothing
 * but itself, logs no errors, draws every chart with data, sorts its table, and hostile names
 * stay text. Saves test-output/report.png for a look. Skipped where Chromium is not installed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { audit } from '../src/pipeline/audit.js';
import { renderHtml } from '../src/report/html.js';
import type { Report } from '../src/report/schema.js';
import { randomMlp, ROOT, tempDir, writeIdxDataset, writeOnnxMlp } from './helpers/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium); browser checks skipped`;
const SCREENSHOT = path.join(ROOT, 'test-output', 'report.png');

let browser: Browser | undefined;
let dir = '';
let report: Report;

before(async () => {
  if (skip) return;
  dir = await tempDir('lp-browser-');
  const data = await writeIdxDataset(path.join(dir, 'data'), 90, 3);
  const a = path.join(dir, 'mlp-a.onnx');
  const b = path.join(dir, 'mlp-b.onnx');
  await writeOnnxMlp(a, randomMlp([64, 12, 7, 3], 3));
  await writeOnnxMlp(b, randomMlp([64, 10, 6, 3], 5));
  report = (await audit({ models: [{ path: a }, { path: b }], dataset: data.images, perClass: 30, out: path.join(dir, 'run'), force: true, ci: 0.9, bootstrapReps: 20 })).report;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    headless: true,
    timeout: 30_000,
  });
});

after(async () => {
  await browser?.close();
});

/** MD-LSM and baseline metrics, as a separability audit adds them (unless the audit already did). */
function withSeparability(r: Report): Report {
  const out = structuredClone(r);
  const K = out.dataset.classes.length;
  for (const m of out.models) {
    for (const l of m.layers) {
      const k = 0.7 + 0.25 * l.depth;
      const matrix = Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => (i === j ? null : k - 0.01 * (i + j))));
      l.metrics.mdlsm_kappa ??= { name: 'mdlsm_kappa', value: k, definition: 'SCIENCE.md §3.1 MD-LSM κ', detail: { matrix } };
      l.metrics.mdlsm_heldout_kappa ??= { name: 'mdlsm_heldout_kappa', value: k - 0.05, definition: 'SCIENCE.md §3.1 MD-LSM κ, held-out' };
      l.metrics.mdlsm_null_kappa ??= { name: 'mdlsm_null_kappa', value: 0.55, definition: 'SCIENCE.md §3.1 MD-LSM κ, permuted labels', detail: { sd: 0.01 } };
      l.metrics.baseline_probe_heldout_accuracy ??= { name: 'baseline_probe_heldout_accuracy', value: 0.5, definition: 'SCIENCE.md §4 random-layer baseline' };
    }
  }
  return out;
}

interface Watch {
  requests: string[];
  failed: string[];
  errors: string[];
  dialogs: string[];
}

async function open(file: string): Promise<{ page: Page; watch: Watch; url: string }> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const watch: Watch = { requests: [], failed: [], errors: [], dialogs: [] };
  page.on('request', (r) => watch.requests.push(r.url()));
  page.on('requestfailed', (r) => watch.failed.push(`${r.url()}: ${r.failure()?.errorText ?? ''}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') watch.errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => watch.errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    watch.dialogs.push(d.message());
    void d.dismiss();
  });
  const url = pathToFileURL(file).href;
  await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  return { page, watch, url };
}

test('the report opens offline: no requests but itself, no console errors, every chart drawn with data', { skip, timeout: 60_000 }, async () => {
  const r = withSeparability(report);
  const file = path.join(dir, 'report.html');
  await writeFile(file, await renderHtml(r));
  const { page, watch, url } = await open(file);
  try {
    const charts = await page.$$eval('figure.chart', (figs) =>
      figs.map((f) => ({
        id: f.getAttribute('data-chart'),
        svgs: f.querySelectorAll('svg').length,
        marks: f.querySelectorAll('svg g.role-mark > path, svg g.role-mark > text').length,
        hidden: f.hidden,
        width: f.querySelector('svg')?.getBoundingClientRect().width ?? 0,
      })),
    );
    for (const id of ['compression', 'discrimination', 'nc1', 'probe', 'rank', 'mdlsm', 'kappa-heatmap']) assert.ok(charts.some((c) => c.id === id), `chart ${id}`);
    for (const c of charts) {
      assert.equal(c.svgs, 1, `${c.id}: one svg`);
      assert.ok(c.marks > 0, `${c.id}: has data marks`);
      if (!c.hidden) assert.ok(c.width > 100, `${c.id}: drawn (${c.width}px wide)`);
    }

    // Sorting: the C column ascending, then descending; empty cells stay last.
    const col = await page.$$eval('#numbers-table thead th', (ths) => ths.findIndex((t) => t.getAttribute('data-metric') === 'compression'));
    assert.ok(col > 0);
    const column = () => page.$$eval(`#numbers-table tbody tr td:nth-child(${col + 1})`, (tds) => tds.map((t) => t.getAttribute('data-v') ?? ''));
    const header = page.locator(`#numbers-table thead th:nth-child(${col + 1})`);
    await header.click();
    const asc = (await column()).map(Number);
    assert.deepEqual(asc, [...asc].sort((x, y) => x - y));
    await header.click();
    const desc = (await column()).map(Number);
    assert.deepEqual(desc, [...desc].sort((x, y) => y - x));
    assert.equal(await header.getAttribute('aria-sort'), 'descending');

    // The heat-map layer choice shows exactly one layer's map.
    const select = page.locator('select[data-heatmap]').first();
    const first = await select.locator('option').first().getAttribute('value');
    await select.selectOption(first!);
    const visible = await page.locator('.heatmaps').first().locator('figure[data-layer-index]:not([hidden])').evaluateAll((figs) => figs.map((f) => f.getAttribute('data-layer-index')));
    assert.deepEqual(visible, [first]);

    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.locator('select[data-heatmap]').first().selectOption({ index: (await select.locator('option').count()) - 1 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    assert.deepEqual(watch.requests, [url], 'the page requests nothing but itself');
    assert.deepEqual(watch.failed, []);
    assert.deepEqual(watch.errors, []);
  } finally {
    await page.close();
  }
});

test('hostile model, layer and class names stay text in the browser', { skip, timeout: 30_000 }, async () => {
  const r = withSeparability(report);
  const layer = '<script>alert(1)</script>';
  const cls = '"><img src=x onerror=alert(1)>';
  r.models[0]!.layers[0]!.id = layer;
  r.models[1]!.name = '<svg onload=alert(2)>';
  r.dataset.classes[0] = cls;
  r.warnings.push('<img src=x onerror=alert(3)>');
  const file = path.join(dir, 'hostile.html');
  await writeFile(file, await renderHtml(r, { kappaLayer: layer }));
  const { page, watch, url } = await open(file);
  try {
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('script').count(), 1);
    const cells = await page.$$eval('#numbers-table tbody td.mono', (tds) => tds.map((t) => t.textContent));
    assert.ok(cells.includes(layer), 'the layer id is shown as text');
    assert.ok(await page.getByText(cls, { exact: true }).count() > 0, 'the class name is shown as text');
    await page.waitForTimeout(200);
    assert.deepEqual(watch.dialogs, []);
    assert.deepEqual(watch.requests, [url]);
    assert.deepEqual(watch.errors, []);
  } finally {
    await page.close();
  }
});

test('views: a point shows its tooltip on hover, the confusion-matrix selector switches layer, nothing overflows at 1280 px', { skip, timeout: 60_000 }, async () => {
  const file = path.join(dir, 'views.html');
  await writeFile(file, await renderHtml(report));
  const { page, watch, url } = await open(file);
  try {
    // Hover the first point of the probe chart: the tooltip names the layer, op, width, reduction and N.
    const m = report.models[0]!;
    const l = m.layers[0]!;
    // The last point drawn is on top of any it overlaps, so the pointer reaches it.
    const point = page.locator('figure[data-chart="probe"] svg [aria-roledescription="point"]').last();
    await point.scrollIntoViewIfNeeded();
    await point.hover();
    const tip = page.locator('#tooltip');
    assert.ok(await tip.isVisible(), 'the tooltip is shown');
    const text = (await tip.textContent()) ?? '';
    const first = report.models.flatMap((mm) => mm.layers.filter((x) => text.startsWith(`${mm.name} · ${x.id} · `)))[0];
    assert.ok(first, `the tooltip names a layer: ${text}`);
    for (const part of [first.op, `width ${first.dim}`, first.reduction, `N = ${first.samples.streamed}`]) assert.ok(text.includes(part), `tooltip has "${part}": ${text}`);
    // The value it shows is one of that layer's probe values, as the report holds it.
    const valuePart = [...text.split(' · ')].reverse().find((p) => /: -?[\d.]+(e[+-]?\d+)?( \[.*)?$/.test(p)) ?? '';
    const shown = Number(/: (-?[\d.]+(?:e[+-]?\d+)?)(?: \[.*)?$/.exec(valuePart)?.[1]);
    const values = ['probe_train_accuracy', 'probe_heldout_accuracy', 'probe_control_train_accuracy', 'probe_control_heldout_accuracy', 'baseline_probe_heldout_accuracy'].map((k) => first.metrics[k]?.value).filter((v): v is number => typeof v === 'number');
    assert.ok(values.some((v) => Math.abs(v - shown) < 1e-3), `tooltip value ${shown} is one of ${values.join(', ')}`);
    await page.mouse.move(0, 0);
    assert.ok(await tip.isHidden(), 'the tooltip hides when the pointer leaves');

    // The confusion-matrix selector shows exactly one matrix, the one chosen.
    const block = page.locator(`.classes-model[data-model="${m.name}"] .confusions`);
    const select = block.locator('select[data-confusion]');
    const options = await select.locator('option').evaluateAll((os) => os.map((o) => o.getAttribute('value') ?? ''));
    assert.ok(options.includes(String(l.position)) && options.includes('output'), `options: ${options.join(', ')}`);
    await select.selectOption(String(l.position));
    const visible = await block.locator('figure[data-key]:not([hidden])').evaluateAll((fs) => fs.map((f) => f.getAttribute('data-key')));
    assert.deepEqual(visible, [String(l.position)]);
    // Its diagonal is the probe's per-class recall at that layer: the counts are the report's.
    const conf = l.metrics.probe_heldout_accuracy!.detail!.confusion as number[][];
    const diag = await block.locator('figure[data-key]:not([hidden]) td.diag').evaluateAll((tds) => tds.map((t) => Number(t.getAttribute('data-v'))));
    assert.deepEqual(diag, conf.map((row, k) => row[k]));

    // Nothing wider than the 1280 px window: the page, every chart and every table's frame.
    // Run in the page (the test's TypeScript has no DOM types, so the check is passed as source).
    const over = await page.evaluate<string[]>(`(() => {
      const out = [];
      if (document.documentElement.scrollWidth > window.innerWidth) out.push('page ' + document.documentElement.scrollWidth);
      for (const el of document.querySelectorAll('figure, .scroll, section, table')) {
        if (el.closest('.scroll') && el.tagName === 'TABLE') continue;
        const r = el.getBoundingClientRect();
        if (r.right > window.innerWidth + 0.5) out.push(el.tagName + '.' + el.className + ' ' + el.id + ' right ' + r.right);
      }
      for (const svg of document.querySelectorAll('figure.chart svg')) {
        const f = svg.closest('figure').getBoundingClientRect();
        const r = svg.getBoundingClientRect();
        if (r.right > f.right + 0.5) out.push('svg in ' + svg.closest('figure').getAttribute('data-chart') + ' overflows its figure');
      }
      return out;
    })()`);
    assert.deepEqual(over, []);
    assert.deepEqual(watch.requests, [url]);
    assert.deepEqual(watch.errors, []);
  } finally {
    await page.close();
  }
});
