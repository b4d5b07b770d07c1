/**
 * The random-layer baseline's interval over draws (docs/metrics/baseline.md): each seeded draw of
 * the random layer gives one value of a metric; the report gives their mean and a Student-t
 * interval for the mean,  x̄ ± t_{(1+level)/2, n−1} · s/√n  (s the sample standard deviation).
 * It is the range in which the expected value over random layers (on these same buffered rows and
 * this same probe split) lies at the given confidence, treating the draws as independent. It
 * covers the spread of random weights only, not the sampling of images.
 */
import { UsageError } from '../../errors.js';

export const DRAW_INTERVAL_METHOD = 'Student-t interval for the mean over independent seeded draws of the random layer: mean ± t_{(1+level)/2, n−1}·s/√n';

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: ~15 significant digits). */
function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularised incomplete beta (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** I_x(a, b), the regularised incomplete beta function. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with ν degrees of freedom. */
export function studentTCdf(t: number, nu: number): number {
  const tail = 0.5 * incompleteBeta(nu / (nu + t * t), nu / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The q-quantile of Student's t with ν degrees of freedom (q in (0, 1)), by bisection on the CDF. */
export function studentTQuantile(q: number, nu: number): number {
  if (!(q > 0 && q < 1)) throw new UsageError(`t quantile: q must be in (0, 1), got ${q}`);
  if (!(nu > 0)) throw new UsageError(`t quantile: degrees of freedom must be positive, got ${nu}`);
  if (q === 0.5) return 0;
  if (q < 0.5) return -studentTQuantile(1 - q, nu);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, nu) < q) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, nu) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface DrawSummary {
  /** Finite values, in draw order. */
  values: number[];
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); NaN for one draw. */
  sd: number;
  /** Null with fewer than two finite draws. */
  ci: [number, number] | null;
  level: number;
}

/** Mean and t-interval of the values of the draws (non-finite values, e.g. an undefined κ, are dropped). */
export function summariseDraws(values: readonly number[], level = 0.95): DrawSummary {
  if (!(level > 0 && level < 1)) throw new UsageError(`interval level must be in (0, 1), got ${level}`);
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  const mean = n ? v.reduce((a, b) => a + b, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : NaN;
  const half = n > 1 ? (studentTQuantile((1 + level) / 2, n - 1) * sd) / Math.sqrt(n) : NaN;
  return { values: v, n, mean, sd, ci: n > 1 ? [mean - half, mean + half] : null, level };
}
