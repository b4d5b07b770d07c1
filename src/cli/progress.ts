/**
 * Progress on stderr: a live bar with images/s and ETA on a terminal, a plain line now and then
 * otherwise (logs, CI), nothing with --quiet or --json. stdout stays clean for machine output.
 * The metrics phase has a bar of its own (layer × metric group), on a terminal only: in a log the
 * stage line "computing metrics for N layers" says enough.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** `detail`: what was just done (shown on the bar when the options ask for it). */
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** What is counted. Default `images`. */
  unit?: string;
  /** Show nothing unless stderr is a terminal. */
  ttyOnly?: boolean;
  /** Show the `detail` of each update on the bar instead of a rate. */
  detail?: boolean;
}

/** A terminal a bar can redraw on (not under CI, whose logs keep every redraw). */
export function stderrIsTerminal(): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI;
}

export function makeProgress(label: string, opts: ProgressOptions = {}): Progress {
  const tty = stderrIsTerminal();
  if (opts.quiet || (opts.ttyOnly && !tty)) return { update() {}, stop() {} };
  const unit = opts.unit ?? 'images';
  const perSecond = unit === 'images' ? 'img/s' : `${unit}/s`;
  const start = performance.now();
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: opts.detail ? `${label} [{bar}] {value}/{total} ${unit} | ETA {eta_formatted} | {detail}` : `${label} [{bar}] {value}/{total} ${unit} | {rate} ${perSecond} | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, detail = '') {
        const rate = Math.round(done / Math.max(1e-3, (performance.now() - start) / 1000));
        if (!started) {
          bar.start(total, done, { rate, detail });
          started = true;
        } else bar.update(done, { rate, detail });
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastPrint = 0;
  let lastDone = -1;
  return {
    update(done, total) {
      const now = performance.now();
      if (done === lastDone) return;
      if (done !== total && now - lastPrint < 5000) return;
      lastPrint = now;
      lastDone = done;
      const rate = done / Math.max(1e-3, (now - start) / 1000);
      process.stderr.write(`${label}: ${done}/${total} ${unit} (${rate.toFixed(rate < 10 ? 1 : 0)} ${perSecond})\n`);
    },
    stop() {},
  };
}

/**
 * The bars of an audit or compare: the forward pass of each model (images), then its metrics
 * phase (layer × metric-group steps, on a terminal only), one bar at a time.
 */
export function auditProgress(verb: string, quiet: boolean): {
  onProgress(model: string, done: number, total: number): void;
  onMetricsProgress(model: string, done: number, total: number, step: string): void;
  stop(): void;
} {
  let bar: Progress | null = null;
  let current = '';
  const use = (key: string, make: () => Progress): Progress => {
    if (key !== current || bar === null) {
      bar?.stop();
      bar = make();
      current = key;
    }
    return bar;
  };
  return {
    onProgress: (model, done, total) => use(`forward ${model}`, () => makeProgress(`${verb} ${model}`, { quiet })).update(done, total),
    onMetricsProgress: (model, done, total, step) => use(`metrics ${model}`, () => makeProgress(`metrics ${model}`, { quiet, unit: 'steps', ttyOnly: true, detail: true })).update(done, total, `${step} done`),
    stop: () => bar?.stop(),
  };
}
