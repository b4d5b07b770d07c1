/**
 * One HiGHS instance (wasm) per process, shared by the separability LP (metrics) and the theory
 * solvers. The loader is the default export
 * of highs' ES build, but its type declarations are CommonJS, which TypeScript (NodeNext) reads
 * as `{ default: loader }`; either shape is accepted at run time.
 */
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { RuntimeFailure, errorMessage } from '../errors.js';

type Loader = () => Promise<Highs>;

let highsPromise: Promise<Highs> | null = null;

function loader(): Loader {
  const ns: unknown = highsModule;
  const dflt = (ns as { default?: unknown }).default;
  const inner = dflt && typeof dflt === 'object' ? (dflt as { default?: unknown }).default : undefined;
  const f = typeof dflt === 'function' ? dflt : inner;
  if (typeof f !== 'function') throw new RuntimeFailure('the highs package has no loader function (unexpected version?)');
  return f as Loader;
}

export function loadHighs(): Promise<Highs> {
  let p = highsPromise;
  if (!p) {
    p = Promise.resolve()
      .then(() => loader()())
      .catch((e: unknown) => {
        highsPromise = null;
        throw e instanceof RuntimeFailure ? e : new RuntimeFailure(`could not load the HiGHS solver (wasm): ${errorMessage(e)}`);
      });
    highsPromise = p;
  }
  return p;
}

/** highs-js can be left in a broken state after an internal error: the next caller loads a fresh instance. */
export function discardHighs(): void {
  highsPromise = null;
}
