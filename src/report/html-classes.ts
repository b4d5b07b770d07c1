/**
 * Per-class and class-pair views of report.html, from what the audit already recorded (no extra
 * model runs): per-class probe recall (the probe's held-out confusion), per-class compression
 * C_k = Var_k / tr(Σ_B) (exact class statistics), the confusion matrix of the probe at a chosen
 * layer and of the model's output (a selector switches between them), and the hardest class
 * pairs tracked across depth (class-pairs.ts). Tables, not charts: K lines would not read.
 */
import type { LayerReport, ModelReport, Report } from './schema.js';
import { hardestPairs, probeConfusion, squareMatrix } from './class-pairs.js';
import { fmtNumber } from './format.js';
import { html, trusted, type SafeHtml } from './html-escape.js';

/** Above this many classes the class × layer tables and confusion matrices are left out. */
export const MAX_CLASS_TABLE = 30;
/** Class pairs tracked across depth. */
export const TRACKED_PAIRS = 5;

export const CLASSES_STYLE = `
.classes table.heat td.num { min-width: 52px; }
.classes .h0 { background: #fbdcdc; } .classes .h1 { background: #fdebd3; } .classes .h2 { background: #fbf6d4; } .classes .h3 { background: #e0f2dc; } .classes .h4 { background: #c6e9c9; }
.classes table.confusion td.num { min-width: 40px; padding: 2px 4px; }
.classes table.confusion td.diag { font-weight: 600; }
.classes table.confusion th.rot { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-weight: normal; }
.classes .confusions select { font: inherit; margin-left: 6px; }
.classes .block { margin-bottom: 20px; max-width: 100%; }
.classes .scroll { display: inline-block; max-width: 100%; vertical-align: top; }
.classes .scroll table { min-width: 0; }
.classes .row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.classes .row .block { flex: 0 1 auto; min-width: 0; }
.classes p.note { max-width: 560px; }
`;

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Shade class h0 (bad) … h4 (good) of a value in [lo, hi] where `higher` says which end is good. */
function shade(v: number | null | undefined, lo: number, hi: number, higher: boolean): string {
  if (!finite(v) || !(hi > lo)) return '';
  const t = Math.max(0, Math.min(1, (v - lo) / (hi - lo)));
  return `h${Math.min(4, Math.floor((higher ? t : 1 - t) * 5))}`;
}

/** Recall of each class from a confusion matrix (rows: true class). */
export function recalls(c: readonly (readonly number[])[]): (number | null)[] {
  return c.map((row, k) => {
    const n = row.reduce((s, v) => s + v, 0);
    return n > 0 ? row[k]! / n : null;
  });
}

function perClassCompression(l: LayerReport, K: number): (number | null)[] | undefined {
  const v = l.metrics.compression?.detail?.perClass;
  if (!Array.isArray(v) || v.length !== K) return undefined;
  return v.map((x: unknown) => (finite(x) ? x : null));
}

function classByLayer(title: string, note: string, id: string, m: ModelReport, classes: readonly string[], values: Map<LayerReport, (number | null)[]>, higher: boolean, fixed?: [number, number]): SafeHtml {
  const layers = m.layers.filter((l) => values.has(l));
  if (layers.length === 0) return html``;
  const all = [...values.values()].flat().filter(finite);
  const [lo, hi] = fixed ?? [Math.min(...all), Math.max(...all)];
  return html`<div class="block" data-view="${id}"><h4>${title}</h4><div class="scroll"><table class="heat" data-model="${m.name}"><thead><tr><th>class</th>${layers.map((l) => html`<th class="num mono" title="${l.op}, width ${l.dim}, depth ${l.depth.toFixed(2)}">${l.id}</th>`)}</tr></thead><tbody>${classes.map(
    (c, k) => html`<tr><td>${c}</td>${layers.map((l) => {
      const v = values.get(l)![k];
      const cls = shade(v, lo, hi, higher);
      return html`<td class="num${cls ? ` ${cls}` : ''}" data-v="${finite(v) ? String(v) : ''}">${finite(v) ? fmtNumber(v) : ''}</td>`;
    })}</tr>`,
  )}</tbody></table></div><p class="note">${note}</p></div>`;
}

function confusionTable(c: readonly (readonly number[])[], classes: readonly string[]): SafeHtml {
  const rowN = c.map((r) => r.reduce((s, v) => s + v, 0));
  return html`<table class="confusion"><thead><tr><th>true ↓ / predicted →</th>${classes.map((n) => html`<th class="num rot">${n}</th>`)}<th class="num">n</th></tr></thead><tbody>${c.map(
    (row, i) => html`<tr><td>${classes[i]}</td>${row.map((v, j) => {
      const p = rowN[i]! > 0 ? v / rowN[i]! : null;
      // Diagonal: recall, good when high; off-diagonal: confusion, shaded only when it is > 0.
      const cls = i === j ? shade(p, 0, 1, true) : p !== null && p > 0 ? (p < 0.05 ? 'h2' : p < 0.15 ? 'h1' : 'h0') : '';
      return html`<td class="num${i === j ? ' diag' : ''}${cls ? ` ${cls}` : ''}" data-v="${String(v)}" title="true ${classes[i]}, predicted ${classes[j]}: ${String(v)} of ${String(rowN[i])}">${p === null ? '' : (p * 100).toFixed(0)}</td>`;
    })}<td class="num">${String(rowN[i])}</td></tr>`,
  )}</tbody></table>`;
}

function confusions(m: ModelReport, classes: readonly string[]): SafeHtml {
  const K = classes.length;
  const views: { key: string; label: string; c: number[][] }[] = [];
  for (const l of m.layers) {
    const c = probeConfusion(l, K);
    if (c) views.push({ key: String(l.position), label: `probe at ${l.id} (depth ${l.depth.toFixed(2)})`, c });
  }
  const out = squareMatrix(m.accuracy?.detail?.confusion, K);
  if (out && out.every((r) => r.every((v) => v !== null))) views.push({ key: 'output', label: 'model output', c: out as number[][] });
  if (views.length === 0) return html``;
  const chosen = views.find((v) => v.key === 'output') ?? views[views.length - 1]!;
  return html`<div class="block confusions" data-view="confusion"><h4>Confusion matrix <label>shown<select data-confusion aria-label="confusion matrix shown">${views.map((v) => html`<option value="${v.key}"${v === chosen ? trusted(' selected') : ''}>${v.label}</option>`)}</select></label></h4>
${views.map((v) => html`<figure class="confusion-view" data-key="${v.key}" data-label="${v.label}"${v === chosen ? '' : trusted(' hidden')}><div class="scroll">${confusionTable(v.c, classes)}</div></figure>`)}
<p class="note">Percent of each true class (row) given each prediction (column); the diagonal is per-class recall. The probe's matrices count every held-out row (cross-fitted: each row scored by a probe that did not see it); the model output's counts every image measured. Hover a cell for the counts.</p></div>`;
}

function pairsTable(m: ModelReport, classes: readonly string[]): SafeHtml {
  const h = hardestPairs(m, classes.length, TRACKED_PAIRS);
  if (h.overall.length === 0) return html``;
  const source = h.layers[0]!.source;
  const all = h.overall.flatMap((p) => p.scores).filter(finite);
  const hi = Math.max(...all, 1e-12);
  return html`<div class="block" data-view="pairs"><h4>Hardest class pairs across depth (${source})</h4><div class="scroll"><table class="heat pairs" data-model="${m.name}"><thead><tr><th>pair</th>${h.layers.map((lp) => html`<th class="num mono">${lp.layer.id}</th>`)}<th class="num">mean</th></tr></thead><tbody>${h.overall.map(
    (p) => html`<tr data-pair="${String(p.k)}-${String(p.l)}"><td>${classes[p.k]} vs ${classes[p.l]}</td>${p.scores.map((v, i) => {
      const top = h.layers[i]!.pairs[0];
      const isTop = top && top.k === p.k && top.l === p.l && top.score > 0;
      const cls = shade(v, 0, hi, false);
      return html`<td class="num${cls ? ` ${cls}` : ''}" data-v="${finite(v) ? String(v) : ''}"${isTop ? trusted(' data-top') : ''}>${finite(v) ? fmtNumber(v) : ''}${isTop ? html`<sup title="the hardest pair at this layer">▲</sup>` : ''}</td>`;
    })}<td class="num">${fmtNumber(p.mean)}</td></tr>`,
  )}</tbody></table></div><p class="note">The ${String(h.overall.length)} class pairs with the highest mean ${source} over the layers (higher: harder to tell apart); ▲ marks the hardest pair of each layer.${source.startsWith('1 − κ') ? ' 1 − κ: share of the pair’s cross-class point pairs that the best linear direction misorders (0: separable, ½: indistinguishable).' : ' Probe confusion: (c_kl + c_lk)/(n_k + n_l) of the held-out rows.'}</p></div>`;
}

export function classesSection(report: Report): SafeHtml {
  const classes = report.dataset.classes;
  const K = classes.length;
  const blocks: SafeHtml[] = [];
  for (const m of report.models) {
    const parts: SafeHtml[] = [];
    parts.push(pairsTable(m, classes));
    if (K <= MAX_CLASS_TABLE) {
      const rec = new Map<LayerReport, (number | null)[]>();
      const comp = new Map<LayerReport, (number | null)[]>();
      for (const l of m.layers) {
        const c = probeConfusion(l, K);
        if (c) rec.set(l, recalls(c));
        const pc = perClassCompression(l, K);
        if (pc) comp.set(l, pc);
      }
      const row: SafeHtml[] = [];
      row.push(classByLayer('Per-class probe recall (held-out)', 'Share of each class’s held-out rows the layer’s linear probe assigns to it; shaded from 0 (red) to 1 (green).', 'recall', m, classes, rec, true, [0, 1]));
      row.push(classByLayer('Per-class compression C_k', 'C_k = Var_k / tr(Σ_B): the class’s own spread against the between-class spread, exact over all images (C is their count-weighted mean); smaller is more compressed, shaded within this table.', 'compression', m, classes, comp, false));
      if (row.some((r) => r.html !== '')) parts.push(html`<div class="row">${row}</div>`);
      parts.push(confusions(m, classes));
    }
    const body = parts.filter((p) => p.html !== '');
    if (body.length) blocks.push(html`<div class="classes-model" data-model="${m.name}"><h3>${m.name}</h3>${body}</div>`);
  }
  if (blocks.length === 0) return html``;
  return html`<section id="classes" class="classes">
<h2>Classes and class pairs</h2>
${K > MAX_CLASS_TABLE ? html`<p class="note">${String(K)} classes: the class × layer tables and confusion matrices are left out (above ${String(MAX_CLASS_TABLE)}); report.json holds them.</p>` : ''}
${blocks}
</section>`;
}
