/**
 * The training loop: Adam with linear warm-up and cosine decay, softmax cross-entropy, batches
 * drawn from a seeded shuffle. Written out rather than `model.fit` because fit shuffles with
 * Math.random, which no seed reaches; with seeded initialisers, our Rng and a deterministic
 * backend, one seed gives one result.
 */
import type * as tfTypes from '../runtime/tf-types.js';
import { RuntimeFailure } from '../errors.js';
import type { Tf } from '../runtime/backend.js';
import { Rng } from '../util/rng.js';
import type { CheckpointSchedule } from '../report/monitor-schema.js';
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

/** A point of the training run at which a monitor measures the model (src/train/monitor.ts). */
export interface Checkpoint {
  /** Epoch the checkpoint falls in (0 for the initial one, before any update). */
  epoch: number;
  /** Optimizer steps done so far. */
  step: number;
  stepsPerEpoch: number;
  /** Training progress in epochs: step / stepsPerEpoch. */
  epochProgress: number;
  endOfEpoch: boolean;
  /** Mean loss and accuracy over the batches since the previous checkpoint, as the weights moved; null for the initial one. */
  running: { loss: number; accuracy: number; images: number } | null;
  /** The test evaluation, at the end of an epoch. */
  test: Evaluation | null;
}


export interface FitHooks {
  schedule: CheckpointSchedule;
  /** Called at each checkpoint; the time it takes is left out of the epoch's `seconds`. */
  onCheckpoint(c: Checkpoint): Promise<void>;
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
  hooks?: FitHooks,
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
  // Running loss/accuracy since the previous checkpoint, and the time spent in checkpoints.
  const since = { loss: 0, correct: 0, images: 0 };
  let hookMs = 0;
  const checkpoint = async (epoch: number, stepsDone: number, endOfEpoch: boolean, test: Evaluation | null): Promise<void> => {
    if (!hooks) return;
    const t = performance.now();
    await hooks.onCheckpoint({
      epoch,
      step: stepsDone,
      stepsPerEpoch,
      epochProgress: stepsDone / stepsPerEpoch,
      endOfEpoch,
      running: since.images > 0 ? { loss: since.loss / since.images, accuracy: since.correct / since.images, images: since.images } : null,
      test,
    });
    since.loss = since.correct = since.images = 0;
    hookMs += performance.now() - t;
  };
  const sched = hooks?.schedule;
  if (sched && (!Number.isInteger(sched.every) || sched.every < 1)) throw new RuntimeFailure(`internal: checkpoint interval ${sched.every}`);
  try {
    if (sched?.initial) await checkpoint(0, 0, false, null);
    for (let epoch = 1; epoch <= recipe.epochs; epoch++) {
      const t0 = performance.now();
      hookMs = 0;
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
        since.loss += lossValue * idx.length;
        since.correct += hitValue;
        since.images += idx.length;
        onProgress?.({ phase: 'train', epoch, epochs: recipe.epochs, done: seen, total: n, loss: lossSum / seen, accuracy: correct / seen });
        // A step checkpoint at the end of an epoch waits for the test evaluation below.
        if (sched?.unit === 'step' && s < stepsPerEpoch - 1 && (step + 1) % sched.every === 0) {
          await checkpoint(epoch, step + 1, false, null);
        }
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
        seconds: (performance.now() - t0 - hookMs) / 1000,
      });
      if (sched) {
        const last = epoch === recipe.epochs;
        const due = sched.unit === 'epoch' ? epoch % sched.every === 0 : step % sched.every === 0;
        if (due || last) await checkpoint(epoch, step, true, test);
      }
    }
  } finally {
    optimizer.dispose();
  }
  return history;
}
