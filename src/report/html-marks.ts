/** The marks of a report cell (marks.ts) as HTML: sampled ˢ, reduced [kd], no better than random ≈. */
import { html, type SafeHtml } from './html-escape.js';
import { dimsMark, NO_BETTER_MARK, SAMPLED_MARK, type CellMarks } from './marks.js';

export function markHtml(mk: CellMarks): SafeHtml {
  return html`${mk.sampled ? html`<sup class="mark" title="sampled: computed on ${String(mk.sampled.n)} of ${String(mk.sampled.N)} images">${SAMPLED_MARK}</sup>` : ''}${mk.dims !== undefined ? html` <span class="mark${mk.unreliable ? ' unreliable' : ''}" title="${mk.note ?? `reduced to ${String(mk.dims)} dims`}">${dimsMark(mk)}</span>` : ''}${mk.noBetter ? html`<span class="mark nobetter" title="no better than random: the interval of the excess contains 0 or lies on the worse side">${NO_BETTER_MARK}</span>` : ''}`;
}
