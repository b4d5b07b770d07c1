/**
 * TensorFlow.js loading and backend choice. `@tensorflow/tfjs-node` is an optional dependency
 * (its install downloads libtensorflow: offline it fails and npm leaves it out); without it we run
 * TF.js as assembled in tf-parts.ts on the wasm backend, several times faster than the pure-JS
 * cpu one.
 * The chosen backend is recorded in every manifest, so numbers can be traced to the kernels that
 * made them.
 */
import type { Tf } from './tf-types.js';
import { tf as tfParts } from './tf-parts.js';

export type { Tf };
export type BackendPreference = 'auto' | 'node' | 'wasm' | 'cpu';

export interface TfHandle {
  tf: Tf;
  /** 'tensorflow (tfjs-node)', 'wasm', or 'cpu'. */
  backend: string;
  /** Package versions, for the manifest. */
  version: string;
}

let loading: Promise<TfHandle> | null = null;
let loadedWith: BackendPreference | null = null;

function preferenceFromEnv(): BackendPreference {
  const v = process.env.LAYERPROBE_BACKEND;
  return v === 'node' || v === 'wasm' || v === 'cpu' ? v : 'auto';
}

async function tryTfjsNode(): Promise<Tf | null> {
  // A variable specifier keeps TypeScript from requiring the optional package at compile time.
  const specifier = '@tensorflow/tfjs-node';
  try {
    return (await import(specifier)) as Tf;
  } catch {
    return null;
  }
}

async function load(pref: BackendPreference): Promise<TfHandle> {
  if (pref === 'auto' || pref === 'node') {
    const tfn = await tryTfjsNode();
    if (tfn) {
      await tfn.setBackend('tensorflow');
      await tfn.ready();
      return { tf: tfn, backend: 'tensorflow (tfjs-node)', version: tfn.version_core };
    }
    if (pref === 'node') throw new Error('@tensorflow/tfjs-node is not installed (it is optional: npm i @tensorflow/tfjs-node); use LAYERPROBE_BACKEND=wasm');
  }
  const tf = tfParts;
  if (pref !== 'cpu') {
    await import('@tensorflow/tfjs-backend-wasm');
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return { tf, backend: 'wasm', version: tf.version_core };
    }
  }
  await tf.setBackend('cpu');
  await tf.ready();
  // The cpu backend prints a multi-line "install our node backend" banner on first use; the
  // backend in use is already named in --version --verbose and every manifest. PROD only mutes
  // TF.js's console warnings.
  tf.env().set('PROD', true);
  return { tf, backend: 'cpu', version: tf.version_core };
}

/** Load TF.js once per process; later calls return the same handle. */
export function loadTf(pref: BackendPreference = preferenceFromEnv()): Promise<TfHandle> {
  if (loading && loadedWith !== pref && pref !== 'auto') {
    // A second, different explicit request: switch backend on the already-loaded module.
    loading = loading.then(async (h) => {
      if (pref === 'node') return load('node');
      if (pref === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
      await h.tf.setBackend(pref);
      await h.tf.ready();
      return { ...h, backend: pref };
    });
    loadedWith = pref;
    return loading;
  }
  if (!loading) {
    loading = load(pref);
    loadedWith = pref;
  }
  return loading;
}
