/**
 * Benchmark of the random-layer phase map (SCIENCE.md §4): the quadratic layer's exact
 * (semidefinite) test on a 20×20 grid — r = 1…20 against 20 widths from 1 to r(r+1) = 420 —
 * with 10 trials per column at d = 40. Every trial finds its threshold by bisection over the
 * nested widths, so the cost is ~log₂(420) exact tests per trial, dominated by r near 20 where
 * each barrier Newton step factors a ~300×300 system. Prints one JSON line.
 *
 *   node --import tsx bench/theory.ts
 */
import { phaseTransition } from '../src/metrics/baseline/phase.js';

const values = Array.from({ length: 20 }, (_, i) => i + 1);
const widths = Array.from({ length: 20 }, (_, i) => Math.round(1 + (i * 419) / 19));
const t0 = performance.now();
const res = await phaseTransition({ vary: 'intrinsic', values, widths, d: 40, activation: 'quadratic', trials: 10, seed: 0 });
const ms = performance.now() - t0;
const tests = res.columns.reduce((s, c) => s + c.tests, 0);
const undecided = res.columns.reduce((s, c) => s + c.undecided, 0);
process.stdout.write(
  JSON.stringify({
    name: 'theory phase 20x20x10 d=40',
    ms: Math.round(ms),
    tests,
    undecided,
    slope: res.fit ? Number(res.fit.slope.toFixed(4)) : null,
    dStar: res.columns.map((c) => (c.dStar === null ? null : Number(c.dStar.toFixed(2)))),
  }) + '\n',
);
