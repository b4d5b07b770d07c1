/**
 * The custom TF.js layers of layerprobe's ViT: a learned class token, learned position
 * embeddings, a pre-norm transformer block and the class-token read-out. They are defined
 * against the tf instance handed in (the rest of layerprobe gets tf from loadTf), registered
 * for (de)serialisation so saved models load with plain tf.loadLayersModel, and mirrored op for
 * op by the ONNX exporter (src/export/vit-ops.ts), which reads the weights in the order below.
 *
 * TransformerBlock (pre-norm, NTD):
 *   h = LN1(x); x1 = x + Wo·MHSA(Wq h, Wk h, Wv h)
 *   out = x1 + W2·gelu(W1·LN2(x1))
 * One layer per block keeps the block output a single, default-selected layer id.
 */
import type * as tfTypes from '../tf-types.js';
import type { Tf } from '../backend.js';

type Tensor = tfTypes.Tensor;
type Shape = tfTypes.Shape;
type LayerVariable = tfTypes.LayerVariable;
type Initializer = ReturnType<Tf["initializers"]["zeros"]>;
type ConfigDict = tfTypes.serialization.ConfigDict;
type LayerArgs = NonNullable<ConstructorParameters<typeof tfTypes.layers.Layer>[0]>;

/** Class names as saved in model.json; also the names the ONNX exporter and layer selection know. */
export const VIT_LAYER_CLASSES = {
  classToken: 'ClassToken',
  positionEmbedding: 'PositionEmbedding',
  transformerBlock: 'TransformerBlock',
  classTokenSelect: 'ClassTokenSelect',
} as const;

export interface InitArgs extends LayerArgs {
  /** Seed of the weight initialisers, so a training seed reproduces the initial weights. */
  seed?: number;
}

export interface TransformerBlockArgs extends InitArgs {
  numHeads: number;
  mlpDim: number;
  epsilon?: number;
}

/** Weight names of a TransformerBlock, in the order of `block.getWeights()`. */
export const BLOCK_WEIGHTS = [
  'ln1_gamma', 'ln1_beta',
  'q_kernel', 'q_bias', 'k_kernel', 'k_bias', 'v_kernel', 'v_bias', 'o_kernel', 'o_bias',
  'ln2_gamma', 'ln2_beta',
  'fc1_kernel', 'fc1_bias', 'fc2_kernel', 'fc2_bias',
] as const;

export const DEFAULT_LN_EPSILON = 1e-6;

function one(x: Tensor | Tensor[]): Tensor {
  return Array.isArray(x) ? x[0]! : x;
}

function oneShape(s: Shape | Shape[]): Shape {
  return Array.isArray(s[0]) ? (s as Shape[])[0]! : (s as Shape);
}

function lastDim(s: Shape, what: string): number {
  const d = s[s.length - 1];
  if (typeof d !== 'number') throw new Error(`${what} needs a known feature dimension, got shape [${s.join(',')}]`);
  return d;
}

export interface VitLayerClasses {
  ClassToken: new (args?: InitArgs) => tfTypes.layers.Layer;
  PositionEmbedding: new (args?: InitArgs) => tfTypes.layers.Layer;
  TransformerBlock: new (args: TransformerBlockArgs) => tfTypes.layers.Layer;
  ClassTokenSelect: new (args?: LayerArgs) => tfTypes.layers.Layer;
}

const defined = new WeakMap<Tf, VitLayerClasses>();

/** Defines (once per tf instance) and registers the ViT layer classes. */
export function registerVitLayers(tf: Tf): VitLayerClasses {
  const known = defined.get(tf);
  if (known) return known;
  const Layer = tf.layers.Layer;
  const normal = (seed: number | undefined): Initializer =>
    tf.initializers.truncatedNormal({ stddev: 0.02, ...(seed !== undefined ? { seed } : {}) });
  const glorot = (seed: number | undefined): Initializer =>
    tf.initializers.glorotUniform(seed !== undefined ? { seed } : {});

  function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  }

  /** x [n,t,d] · W [d,e] + b, through a 2-D matmul (the wasm BatchMatMul wants equal batch dims). */
  function dense(x: Tensor, w: Tensor, b: Tensor): Tensor {
    const [n, t, d] = x.shape as [number, number, number];
    const y = tf.add(tf.matMul(tf.reshape(x, [n * t, d]), w), b);
    return tf.reshape(y, [n, t, w.shape[1]!]);
  }

  /** Exactly TF.js's 'gelu' activation (erf form), which the exporter writes as Erf ops. */
  function gelu(x: Tensor): Tensor {
    return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))));
  }

  class ClassToken extends Layer {
    static className = VIT_LAYER_CLASSES.classToken;
    private token: LayerVariable | null = null;
    private readonly seed: number | undefined;
    constructor(args: InitArgs = {}) {
      super(args);
      this.seed = args.seed;
    }
    override build(inputShape: Shape | Shape[]): void {
      const d = lastDim(oneShape(inputShape), 'ClassToken');
      this.token = this.addWeight('token', [1, 1, d], 'float32', normal(this.seed));
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape | Shape[]): Shape {
      const s = oneShape(inputShape);
      return [s[0] ?? null, s[1] === null || s[1] === undefined ? null : s[1] + 1, s[2] ?? null];
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() => {
        const x = one(inputs);
        const token = this.token!.read();
        return tf.concat([tf.tile(token, [x.shape[0]!, 1, 1]), x], 1);
      });
    }
    override getConfig(): ConfigDict {
      return { ...super.getConfig(), ...(this.seed !== undefined ? { seed: this.seed } : {}) };
    }
  }

  class PositionEmbedding extends Layer {
    static className = VIT_LAYER_CLASSES.positionEmbedding;
    private pos: LayerVariable | null = null;
    private readonly seed: number | undefined;
    constructor(args: InitArgs = {}) {
      super(args);
      this.seed = args.seed;
    }
    override build(inputShape: Shape | Shape[]): void {
      const s = oneShape(inputShape);
      const t = s[1];
      if (typeof t !== 'number') throw new Error('PositionEmbedding needs a fixed number of tokens');
      this.pos = this.addWeight('embedding', [t, lastDim(s, 'PositionEmbedding')], 'float32', normal(this.seed));
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape | Shape[]): Shape {
      return oneShape(inputShape);
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() => tf.add(one(inputs), this.pos!.read()));
    }
    override getConfig(): ConfigDict {
      return { ...super.getConfig(), ...(this.seed !== undefined ? { seed: this.seed } : {}) };
    }
  }

  class TransformerBlock extends Layer {
    static className = VIT_LAYER_CLASSES.transformerBlock;
    readonly numHeads: number;
    readonly mlpDim: number;
    readonly epsilon: number;
    private readonly seed: number | undefined;
    private w: Record<(typeof BLOCK_WEIGHTS)[number], LayerVariable> | null = null;
    constructor(args: TransformerBlockArgs) {
      super(args);
      this.numHeads = args.numHeads;
      this.mlpDim = args.mlpDim;
      this.epsilon = args.epsilon ?? DEFAULT_LN_EPSILON;
      this.seed = args.seed;
    }
    override build(inputShape: Shape | Shape[]): void {
      const d = lastDim(oneShape(inputShape), 'TransformerBlock');
      if (d % this.numHeads !== 0) throw new Error(`TransformerBlock: width ${d} is not divisible by ${this.numHeads} heads`);
      const m = this.mlpDim;
      const s = (k: number): number | undefined => (this.seed === undefined ? undefined : this.seed * 16 + k);
      const ones = tf.initializers.ones();
      const zeros = tf.initializers.zeros();
      const shapes: Record<(typeof BLOCK_WEIGHTS)[number], [number[], Initializer]> = {
        ln1_gamma: [[d], ones],
        ln1_beta: [[d], zeros],
        q_kernel: [[d, d], glorot(s(1))],
        q_bias: [[d], zeros],
        k_kernel: [[d, d], glorot(s(2))],
        k_bias: [[d], zeros],
        v_kernel: [[d, d], glorot(s(3))],
        v_bias: [[d], zeros],
        o_kernel: [[d, d], glorot(s(4))],
        o_bias: [[d], zeros],
        ln2_gamma: [[d], ones],
        ln2_beta: [[d], zeros],
        fc1_kernel: [[d, m], glorot(s(5))],
        fc1_bias: [[m], zeros],
        fc2_kernel: [[m, d], glorot(s(6))],
        fc2_bias: [[d], zeros],
      };
      const w = {} as Record<(typeof BLOCK_WEIGHTS)[number], LayerVariable>;
      for (const name of BLOCK_WEIGHTS) {
        const [shape, init] = shapes[name];
        w[name] = this.addWeight(name, shape, 'float32', init);
      }
      this.w = w;
      this.built = true;
    }
    override computeOutputShape(inputShape: Shape | Shape[]): Shape {
      return oneShape(inputShape);
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() => {
        const x = one(inputs);
        const w = this.w!;
        const r = (k: (typeof BLOCK_WEIGHTS)[number]): Tensor => w[k].read();
        const [n, t, d] = x.shape as [number, number, number];
        const heads = this.numHeads;
        const dh = d / heads;
        const split = (y: Tensor): Tensor => tf.transpose(tf.reshape(y, [n, t, heads, dh]), [0, 2, 1, 3]);
        const h = layerNorm(x, r('ln1_gamma'), r('ln1_beta'), this.epsilon);
        const q = split(dense(h, r('q_kernel'), r('q_bias')));
        const k = split(dense(h, r('k_kernel'), r('k_bias')));
        const v = split(dense(h, r('v_kernel'), r('v_bias')));
        const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
        const ctx = tf.matMul(tf.softmax(scores), v);
        const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [n, t, d]);
        const x1 = tf.add(x, dense(merged, r('o_kernel'), r('o_bias')));
        const h2 = layerNorm(x1, r('ln2_gamma'), r('ln2_beta'), this.epsilon);
        const mlp = dense(gelu(dense(h2, r('fc1_kernel'), r('fc1_bias'))), r('fc2_kernel'), r('fc2_bias'));
        return tf.add(x1, mlp);
      });
    }
    override getConfig(): ConfigDict {
      return {
        ...super.getConfig(),
        numHeads: this.numHeads,
        mlpDim: this.mlpDim,
        epsilon: this.epsilon,
        ...(this.seed !== undefined ? { seed: this.seed } : {}),
      };
    }
  }

  class ClassTokenSelect extends Layer {
    static className = VIT_LAYER_CLASSES.classTokenSelect;
    constructor(args: LayerArgs = {}) {
      super(args);
    }
    override computeOutputShape(inputShape: Shape | Shape[]): Shape {
      const s = oneShape(inputShape);
      return [s[0] ?? null, s[2] ?? null];
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() => {
        const x = one(inputs);
        const [n, , d] = x.shape as [number, number, number];
        return tf.reshape(tf.slice(x, [0, 0, 0], [n, 1, d]), [n, d]);
      });
    }
  }

  for (const cls of [ClassToken, PositionEmbedding, TransformerBlock, ClassTokenSelect]) tf.serialization.registerClass(cls);
  const classes: VitLayerClasses = { ClassToken, PositionEmbedding, TransformerBlock, ClassTokenSelect };
  defined.set(tf, classes);
  return classes;
}
