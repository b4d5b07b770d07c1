/**
 * Which images a shard of a distributed audit processes (docs/distributed.md). The selection of
 * the whole audit (all images, or the seeded stratified --per-class/--limit sample) is split per
 * class, round robin over each class's indices in ascending order: shard i of n takes the j-th
 * image of every class for j ≡ i (mod n). Every index lands in exactly one shard, each shard
 * holds ⌊n_c/n⌋ or ⌈n_c/n⌉ images of class c (stratification preserved), and the split depends
 * only on the selection and n, so any machine computes the same one.
 */
import { UsageError } from '../errors.js';

export interface ShardSpec {
  /** 0-based. */
  index: number;
  count: number;
}

/** The environment variables the batch engines set for an array task. */
export interface ShardEnv {
  JOB_COMPLETION_INDEX?: string | undefined;
  SLURM_ARRAY_TASK_ID?: string | undefined;
  SLURM_ARRAY_TASK_MIN?: string | undefined;
  SLURM_ARRAY_TASK_COUNT?: string | undefined;
}

function whole(name: string, text: string | undefined, min: number): number {
  const v = text === undefined || text.trim() === '' ? NaN : Number(text);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`${name} must be a whole number ≥ ${min} (got \`${text ?? ''}\`)`);
  return v;
}

/**
 * `--shard i/n` (0-based i), `--shard i` with `--shard-count n`, or `--shard env`: the index from
 * JOB_COMPLETION_INDEX (a Kubernetes Indexed Job; the count from --shard-count) or from
 * SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN (a Slurm array; the count from
 * SLURM_ARRAY_TASK_COUNT unless --shard-count is given), so every task runs the same command line.
 */
export function parseShard(text: string, countFlag: number | undefined, env: ShardEnv): ShardSpec {
  const t = text.trim();
  let index: number;
  let count: number;
  if (t === 'env') {
    if (env.JOB_COMPLETION_INDEX !== undefined) {
      index = whole('JOB_COMPLETION_INDEX', env.JOB_COMPLETION_INDEX, 0);
      if (countFlag === undefined) throw new UsageError('--shard env under a Kubernetes Indexed Job needs --shard-count (the Job\'s completions)');
      count = countFlag;
    } else if (env.SLURM_ARRAY_TASK_ID !== undefined) {
      const id = whole('SLURM_ARRAY_TASK_ID', env.SLURM_ARRAY_TASK_ID, 0);
      const min = env.SLURM_ARRAY_TASK_MIN === undefined ? 0 : whole('SLURM_ARRAY_TASK_MIN', env.SLURM_ARRAY_TASK_MIN, 0);
      index = id - min;
      count = countFlag ?? whole('SLURM_ARRAY_TASK_COUNT', env.SLURM_ARRAY_TASK_COUNT, 1);
    } else {
      throw new UsageError('--shard env found neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm array) in the environment', 'give the shard explicitly, e.g. --shard 0/4');
    }
  } else {
    const m = /^(\d+)(?:\/(\d+))?$/.exec(t);
    if (!m) throw new UsageError(`--shard expects i/n (0-based, e.g. 0/4) or env (got \`${text}\`)`);
    index = Number(m[1]);
    if (m[2] !== undefined && countFlag !== undefined && Number(m[2]) !== countFlag) throw new UsageError(`--shard ${t} and --shard-count ${countFlag} disagree`);
    if (m[2] === undefined && countFlag === undefined) throw new UsageError(`--shard ${t} needs the number of shards: --shard ${t}/n or --shard-count n`);
    count = m[2] !== undefined ? Number(m[2]) : countFlag!;
  }
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`the number of shards must be a whole number ≥ 1 (got ${count})`);
  if (index < 0 || index >= count) throw new UsageError(`shard index ${index} is outside 0..${count - 1}`, 'indices are 0-based: --shard 0/4 … --shard 3/4 (a Slurm array may start anywhere; SLURM_ARRAY_TASK_MIN is subtracted)');
  return { index, count };
}

/** Shard `index` of `count` of a selection (ascending indices), round robin within each class; ascending. */
export function shardIndices(selection: Int32Array, labels: Int32Array, shard: ShardSpec): Int32Array {
  const seen = new Map<number, number>();
  const out: number[] = [];
  for (const i of selection) {
    const l = labels[i]!;
    const j = seen.get(l) ?? 0;
    seen.set(l, j + 1);
    if (j % shard.count === shard.index) out.push(i);
  }
  return Int32Array.from(out).sort();
}

export function shardName(s: ShardSpec): string {
  return `${s.index}/${s.count}`;
}
