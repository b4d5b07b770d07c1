/**
 * Progress on stderr: a live bar with images/s and ETA on a terminal, a plain line now and then
 * otherwise (logs, CI), nothing with --quiet or --json. stdout stays clean for machine output.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** What is counted. Default `images`. */
  unit?: string;
}

export function makeProgress(label: string, opts: ProgressOptions = {}): Progress {
  if (opts.quiet) return { update() {}, stop() {} };
  const unit = opts.unit ?? 'images';
  const perSecond = unit === 'images' ? 'img/s' : `${unit}/s`;
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const start = performance.now();
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} ${unit} | {rate} ${perSecond} | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        const rate = Math.round(done / Math.max(1e-3, (performance.now() - start) / 1000));
        if (!started) {
          bar.start(total, done, { rate });
          started = true;
        } else bar.update(done, { rate });
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
