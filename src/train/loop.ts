/**
 * The training loop: Adam with linear warm-up and cosine decay, softmax cross-entropy, batches
 * drawn from a seeded shuffle. Written out rather than `model.fit` because fit shuffles with
 * Math.random, which no seed reaches; with seeded initialisers, our Rng and a deterministic
 * backend, one seed gives one result.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import { RuntimeFailure } from '../errors.js';
import type { Tf } from '../runtime/backend.js';
import { Rng } from '../util/rng.js';
import { batchOf, type InMemorySplit } from './data.js';

type LayersModel = tfTypes.LayersModel;
type Tensor = tfTypes.Tensor;

export interface Recipe {
  epochs: number;
  /** Peak learning rate, reached after the warm-up. */
  lr: number;
  batchSize: number;
  /** Optimizer steps of linear warm-up from 0 to `lr`; cosine decay to 0 follows. */
  warmupSteps: number;
  /** Pixel divisor (the model card's preprocess.scale). */
  scale: number;
  /** Train on the first `limit` items of the shuffled training set each epoch (tests, smoke runs). */
  limit?: number;
  /** Evaluate on the first `testLimit` test items only. */
  testLimit?: number;
}

export interface EpochStats {
  epoch: number;
  /** Mean loss and accuracy over the epoch's batches, as the weights moved. */
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
}

export interface TrainProgress {
  phase: 'train' | 'evaluate';
  epoch: number;
  epochs: number;
  /** Images processed in this phase of this epoch, and how many it has. */
  done: number;
  total: number;
  /** Running means over the current epoch (train) or evaluation so far. */
  loss: number;
  accuracy: number;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
  n: number;
}

/** Cosine decay after linear warm-up; 0-based step. */
export function learningRateAt(step: number, totalSteps: number, lr: number, warmup: number): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const t = (step - warmup) / Math.max(1, totalSteps - warmup);
  return lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
}

interface Adam {
  setLearningRate(v: number): void;
  minimize(f: () => tfTypes.Scalar, returnCost: true, varList?: tfTypes.Variable[]): tfTypes.Scalar | null;
  dispose(): void;
}

function makeAdam(tf: Tf, lr: number): Adam {
  // A subclass reaches Adam's protected learning rate, so the schedule needs no casts.
  class ScheduledAdam extends tf.AdamOptimizer {
    setLearningRate(v: number): void {
      this.learningRate = v;
    }
  }
  return new ScheduledAdam(lr, 0.9, 0.999, 1e-7);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function evaluate(
  tf: Tf,
  model: LayersModel,
  split: InMemorySplit,
  scale: number,
  opts: { limit?: number; batchSize?: number; onBatch?: (done: number, total: number, loss: number, acc: number) => void } = {},
): Promise<Evaluation> {
  const n = Math.min(split.n, opts.limit ?? split.n);
  const bs = opts.batchSize ?? 500;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < n; start += bs) {
    const idx = Int32Array.from({ length: Math.min(bs, n - start) }, (_, i) => start + i);
    const { x, labels } = batchOf(tf, split, idx, scale);
    const [l, c] = tf.tidy(() => {
      const logits = model.predict(x) as Tensor;
      const y = tf.tensor1d(labels, 'int32');
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(y, logits.shape[1]!), logits, undefined, undefined, tf.Reduction.SUM);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), y), 'int32'));
      return [loss, hits];
    });
    lossSum += (await l.data())[0]!;
    correct += (await c.data())[0]!;
    tf.dispose([x, l, c]);
    const done = start + idx.length;
    opts.onBatch?.(done, n, lossSum / done, correct / done);
    await yieldToEventLoop();
  }
  return { loss: lossSum / Math.max(1, n), accuracy: correct / Math.max(1, n), n };
}

export async function fit(
  tf: Tf,
  model: LayersModel,
  data: { train: InMemorySplit; test: InMemorySplit },
  recipe: Recipe,
  seed: number,
  onProgress?: (p: TrainProgress) => void,
): Promise<EpochStats[]> {
  const n = Math.min(data.train.n, recipe.limit ?? data.train.n);
  const bs = recipe.batchSize;
  const stepsPerEpoch = Math.ceil(n / bs);
  const totalSteps = stepsPerEpoch * recipe.epochs;
  const numClasses = data.train.classes.length;
  const rng = new Rng(seed);
  const order = Int32Array.from({ length: data.train.n }, (_, i) => i);
  const optimizer = makeAdam(tf, recipe.lr);
  const vars = model.trainableWeights.map((w) => w.read() as tfTypes.Variable);
  const history: EpochStats[] = [];
  let step = 0;
  try {
    for (let epoch = 1; epoch <= recipe.epochs; epoch++) {
      const t0 = performance.now();
      rng.shuffle(order);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let s = 0; s < stepsPerEpoch; s++, step++) {
        const idx = order.subarray(s * bs, Math.min(n, (s + 1) * bs));
        const { x, labels } = batchOf(tf, data.train, idx, recipe.scale);
        const y = tf.tensor1d(labels, 'int32');
        const oneHot = tf.oneHot(y, numClasses);
        optimizer.setLearningRate(learningRateAt(step, totalSteps, recipe.lr, recipe.warmupSteps));
        const box: { hits: Tensor | null } = { hits: null };
        const loss = optimizer.minimize(
          () => {
            const logits = model.apply(x, { training: true }) as Tensor;
            box.hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), y), 'int32')));
            return tf.losses.softmaxCrossEntropy(oneHot, logits) as tfTypes.Scalar;
          },
          true,
          vars,
        );
        const lossValue = loss ? (await loss.data())[0]! : NaN;
        const hitValue = box.hits ? (await box.hits.data())[0]! : 0;
        tf.dispose([x, y, oneHot, ...(loss ? [loss] : []), ...(box.hits ? [box.hits] : [])]);
        if (!Number.isFinite(lossValue)) throw new RuntimeFailure(`training diverged at epoch ${epoch}, step ${s + 1} (loss ${lossValue}); lower --lr`);
        lossSum += lossValue * idx.length;
        correct += hitValue;
        seen += idx.length;
        onProgress?.({ phase: 'train', epoch, epochs: recipe.epochs, done: seen, total: n, loss: lossSum / seen, accuracy: correct / seen });
        if (s % 10 === 9) await yieldToEventLoop();
      }
      const test = await evaluate(tf, model, data.test, recipe.scale, {
        ...(recipe.testLimit !== undefined ? { limit: recipe.testLimit } : {}),
        onBatch: (done, total, l, a) => onProgress?.({ phase: 'evaluate', epoch, epochs: recipe.epochs, done, total, loss: l, accuracy: a }),
      });
      history.push({
        epoch,
        trainLoss: lossSum / seen,
        trainAccuracy: correct / seen,
        testLoss: test.loss,
        testAccuracy: test.accuracy,
        seconds: (performance.now() - t0) / 1000,
      });
    }
  } finally {
    optimizer.dispose();
  }
  return history;
}
