/**
 * A watchdog for third-party calls that can spin forever (TF.js topology resolution on a
 * malformed model.json is a known one). A busy JavaScript thread runs no timers and no signal
 * listeners, so neither a setTimeout nor the CLI's Ctrl-C handler can stop such a call. Two things
 * do, and `bounded` arranges both for the length of the call:
 *  - a watchdog thread (one worker, started on first use, holding the process open never) which,
 *    past the deadline, reaches into the busy main thread through the inspector protocol (its
 *    messages are delivered by a V8 interrupt, which runs even inside a busy loop), runs the
 *    registered sync cleanups, prints one line and exits with 1;
 *  - the process's SIGINT listeners are taken off while the call runs, so Ctrl-C gets the default
 *    action (the process ends at once; the shell reports 130). Whatever the listeners would have
 *    removed (an unfinished output folder) is swept by the next run in that folder.
 * The deadline is generous (model loading of a large model takes seconds, not minutes) and can be
 * changed with LAYERPROBE_CALL_TIMEOUT_S.
 */
import { Worker } from 'node:worker_threads';
import { closeSync, writeSync } from 'node:fs';

/** Default limit for one bounded call, in seconds. */
export const DEFAULT_CALL_TIMEOUT_S = 120;

/** Runs inside the watchdog thread (CommonJS, evaluated from a string: no build step). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const state = new BigInt64Array(workerData.shared);
let timer = null;
parentPort.on('message', (m) => {
  if (timer) clearTimeout(timer);
  timer = null;
  if (m.gen === undefined) return;
  timer = setTimeout(() => {
    // Disarmed (or re-armed for another call) while this timer waited: nothing to do.
    if (Atomics.load(state, 0) !== BigInt(m.gen)) return;
    const hook = 'globalThis[Symbol.for("layerprobe.watchdog")]?.(' + JSON.stringify(m.message) + ')';
    try {
      const { Session } = require('node:inspector');
      const s = new Session();
      s.connectToMainThread();
      s.post('Runtime.evaluate', { expression: hook + '; process.reallyExit ? process.reallyExit(1) : process.exit(1)' });
    } catch {
      require('node:fs').writeSync(2, 'layerprobe: error: ' + m.message + '\\n');
      process.kill(process.pid, 'SIGKILL');
    }
  }, m.ms);
});
`;

let worker: Worker | null = null;
let state: BigInt64Array | null = null;
let generation = 0;
let depth = 0;
const cleanups = new Set<() => void>();

/**
 * Register a synchronous cleanup to run if the watchdog fires (e.g. remove unfinished output
 * folders); returns a function that unregisters it.
 */
export function onWatchdogFire(fn: () => void): () => void {
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

/** The hook the watchdog thread calls on the stuck main thread (between its instructions). */
function fire(message: string): void {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // Cleanup is best effort; the message and the exit matter more.
    }
  }
  writeSync(2, `layerprobe: error: ${message}\n`);
  // The exit comes next; with the watchdog's inspector session attached, Node would add a
  // "Waiting for the debugger to disconnect..." line, which is not ours to print.
  closeSync(2);
}

function timeoutSeconds(): number {
  const env = Number(process.env.LAYERPROBE_CALL_TIMEOUT_S);
  return Number.isFinite(env) && env > 0 ? env : DEFAULT_CALL_TIMEOUT_S;
}

function ensureWorker(): { worker: Worker; state: BigInt64Array } {
  if (!worker || !state) {
    const shared = new SharedArrayBuffer(8);
    state = new BigInt64Array(shared);
    worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { shared } });
    worker.unref();
    (globalThis as Record<symbol, unknown>)[Symbol.for('layerprobe.watchdog')] = fire;
  }
  return { worker, state };
}

interface Armed {
  disarm(): void;
}

function arm(what: string): Armed {
  const seconds = timeoutSeconds();
  const w = ensureWorker();
  const gen = ++generation;
  Atomics.store(w.state, 0, BigInt(gen));
  w.worker.postMessage({ gen, ms: seconds * 1000, message: `${what} did not finish within ${seconds} s; stopped (a malformed model can make it loop forever)` });
  // Ctrl-C must work while the thread is busy: the default action, not a listener that cannot run.
  const listeners = process.listeners('SIGINT');
  for (const l of listeners) process.removeListener('SIGINT', l);
  return {
    disarm() {
      Atomics.store(w.state, 0, 0n);
      w.worker.postMessage({});
      for (const l of listeners) process.on('SIGINT', l);
    },
  };
}

/** Run a synchronous third-party call under the watchdog. `what` names it in the error. */
export function bounded<T>(what: string, fn: () => T): T {
  if (depth > 0) return fn();
  depth++;
  const a = arm(what);
  try {
    return fn();
  } finally {
    a.disarm();
    depth--;
  }
}

/** Run an asynchronous third-party call under the watchdog (its synchronous stretches included). */
export async function boundedAsync<T>(what: string, fn: () => Promise<T>): Promise<T> {
  if (depth > 0) return fn();
  depth++;
  const a = arm(what);
  try {
    return await fn();
  } finally {
    a.disarm();
    depth--;
  }
}
