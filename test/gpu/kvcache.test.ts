// flashAttentionWithKVCache on the CUDA decode kernels (DeviceTensors) against the CPU backend
// (host tensors, the oracle): out by the flash-attn rule (against the CPU backend in float32 on the
// same 16-bit values, with the CPU backend in the 16-bit dtype as the naive bound), lse, and the
// caches after the append. Split counts 1…many, page sizes 16 and 256, seqlenQ 1…16, GQA, rotary,
// cacheBatchIdx, many calls in flight on Streams, and a 1,000-step decode loop.
import { DeviceTensor, Stream, flashAttentionWithKVCache, tensor } from '../../src-ts/index';
import { toBfloat16, toFloat16 } from '../../src-ts/dtype';
import type { HostTensor } from '../../src-ts/tensor';
import { type Rng, assertRule, makeRng, randomTensor, values } from '../helpers';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();

type D16 = 'float16' | 'bfloat16';

interface KvCase {
  dtype: D16;
  batch: number;
  seqlenQ: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  /** Contiguous rows of maxSeqlen keys, or pages of this size. */
  pageSize?: number;
  maxSeqlen: number;
  lens: number[];
  seqlenNew: number;
  causal?: boolean;
  windowSize?: [number, number];
  rotaryDim?: number;
  rotaryInterleaved?: boolean;
  cacheBatchIdx?: number[];
  batchCache?: number;
}

interface Inputs {
  q: HostTensor;
  kCache: HostTensor;
  vCache: HostTensor;
  kNew?: HostTensor;
  vNew?: HostTensor;
  cacheSeqlens: HostTensor;
  blockTable?: HostTensor;
  cacheBatchIdx?: HostTensor;
  rotaryCos?: HostTensor;
  rotarySin?: HostTensor;
}

const copy = (t: HostTensor): HostTensor => tensor((t.data as Uint16Array).slice() as never, [...t.shape], t.dtype as never);
const i32 = (a: number[], shape?: number[]) => tensor(Int32Array.from(a), shape ?? [a.length]);

function inputs(c: KvCase, rng: Rng): Inputs {
  const rowsC = c.batchCache ?? c.batch;
  let cacheShape = [rowsC, c.maxSeqlen, c.headsKV, c.headDim];
  let blockTable: HostTensor | undefined;
  if (c.pageSize) {
    const per = c.maxSeqlen / c.pageSize;
    const n = c.batch * per + 2;
    const order = Array.from({ length: n }, (_, i) => i).sort(() => rng.next() - 0.5);
    blockTable = i32(order.slice(0, c.batch * per), [c.batch, per]);
    cacheShape = [n, c.pageSize, c.headsKV, c.headDim];
  }
  const x: Inputs = {
    q: randomTensor([c.batch, c.seqlenQ, c.headsQ, c.headDim], c.dtype, rng),
    kCache: randomTensor(cacheShape, c.dtype, rng),
    vCache: randomTensor(cacheShape, c.dtype, rng),
    cacheSeqlens: i32(c.lens),
    blockTable,
  };
  if (c.seqlenNew > 0) {
    x.kNew = randomTensor([c.batch, c.seqlenNew, c.headsKV, c.headDim], c.dtype, rng);
    x.vNew = randomTensor([c.batch, c.seqlenNew, c.headsKV, c.headDim], c.dtype, rng);
  }
  if (c.cacheBatchIdx) x.cacheBatchIdx = i32(c.cacheBatchIdx);
  if (c.rotaryDim) {
    const half = c.rotaryDim / 2;
    const cos = new Float32Array(c.maxSeqlen * half);
    const sin = new Float32Array(c.maxSeqlen * half);
    for (let p = 0; p < c.maxSeqlen; p++) {
      for (let i = 0; i < half; i++) {
        const a = p / 10000 ** (i / half);
        cos[p * half + i] = Math.cos(a);
        sin[p * half + i] = Math.sin(a);
      }
    }
    const as = (f: Float32Array) => {
      const t = randomTensor([c.maxSeqlen, half], c.dtype, rng);
      const enc = c.dtype === 'bfloat16' ? toBfloat16(f) : toFloat16(f);
      (t.data as Uint16Array).set(enc);
      return t;
    };
    x.rotaryCos = as(cos);
    x.rotarySin = as(sin);
  }
  return x;
}

function options(x: Record<string, unknown>, c: KvCase) {
  const o: Record<string, unknown> = { cacheSeqlens: x.cacheSeqlens };
  for (const k of ['kNew', 'vNew', 'blockTable', 'cacheBatchIdx', 'rotaryCos', 'rotarySin'] as const) if (x[k] !== undefined) o[k] = x[k];
  if (c.causal) o.causal = true;
  if (c.windowSize) o.windowSize = c.windowSize;
  if (c.rotaryInterleaved) o.rotaryInterleaved = true;
  return o;
}

/** The same 16-bit values as float32 host tensors (the CPU backend's float32 reference). */
function asF32(t: HostTensor | undefined): HostTensor | undefined {
  if (!t || t.dtype === 'int32') return t;
  return tensor(Float32Array.from(values(t)), [...t.shape]);
}

async function runCpu(x: Inputs, c: KvCase, f32: boolean) {
  const h: Record<string, HostTensor | undefined> = {};
  for (const [k, v] of Object.entries(x)) h[k] = v === undefined ? undefined : f32 ? asF32(v) : copy(v as HostTensor);
  const r = await flashAttentionWithKVCache(h.q!, h.kCache!, h.vCache!, { ...options(h, c), device: 'cpu' } as never);
  return { ...r, kCache: h.kCache!, vCache: h.vCache! };
}

async function runGpu(x: Inputs, c: KvCase, stream?: Stream) {
  const dev: Record<string, DeviceTensor | undefined> = {};
  const made: DeviceTensor[] = [];
  try {
    for (const [k, v] of Object.entries(x)) {
      if (v === undefined) continue;
      dev[k] = await DeviceTensor.from(v as HostTensor);
      made.push(dev[k]!);
    }
    const r = await flashAttentionWithKVCache(dev.q!, dev.kCache!, dev.vCache!, { ...options(dev, c), ...(stream ? { stream } : {}) } as never);
    made.push(r.out as DeviceTensor, r.lse as DeviceTensor);
    return { out: await (r.out as DeviceTensor).toHost(), lse: await (r.lse as DeviceTensor).toHost(),
      kCache: await dev.kCache!.toHost(), vCache: await dev.vCache!.toHost() };
  } finally {
    for (const t of made) t.dispose();
  }
}

async function check(c: KvCase, rng = makeRng()): Promise<void> {
  gpu.report();
  const x = inputs(c, rng);
  const ctx = `${JSON.stringify(c)} seed ${rng.seed}`;
  const [g, ref, naive] = [await runGpu(x, c), await runCpu(x, c, true), await runCpu(x, c, false)];
  assertRule('out', values(g.out), values(ref.out), values(naive.out), c.dtype, ctx);
  const gl = values(g.lse);
  const rl = values(ref.lse);
  for (let i = 0; i < rl.length; i++) {
    if (rl[i] === -Infinity ? gl[i] !== -Infinity : !(Math.abs(gl[i] - rl[i]) <= 2e-2 * Math.max(1, Math.abs(rl[i])))) {
      throw new Error(`lse [${ctx}] at ${i}: gpu ${gl[i]}, cpu ${rl[i]}`);
    }
  }
  // The caches after the append: the same bits as the CPU backend's (rotary: within one rounding).
  for (const name of ['kCache', 'vCache'] as const) {
    const a = values(g[name]);
    const b = values(naive[name]);
    for (let i = 0; i < a.length; i++) {
      const tol = c.rotaryDim && name === 'kCache' ? 2 ** -7 * Math.max(1, Math.abs(b[i])) : 0;
      if (!(Math.abs(a[i] - b[i]) <= tol) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
        throw new Error(`${name} [${ctx}] at ${i}: gpu ${a[i]}, cpu ${b[i]}`);
      }
    }
  }
}

describe('CUDA flashAttentionWithKVCache vs the CPU backend', () => {
  const base = { batch: 3, seqlenQ: 1, headsQ: 8, headsKV: 2, maxSeqlen: 512, lens: [17, 0, 300], seqlenNew: 1 };
  describe.each(['bfloat16', 'float16'] as const)('%s', (dtype) => {
    it.each([64, 128, 256])('headDim %i, contiguous, decode', (headDim) => check({ ...base, dtype, headDim }));
    it.each([1, 4, 16])('seqlenQ %i (speculative decoding), causal', (seqlenQ) =>
      check({ ...base, dtype, headDim: 128, seqlenQ, seqlenNew: seqlenQ, causal: true }));
    it.each([16, 256])('paged, pageSize %i', (pageSize) => check({ ...base, dtype, headDim: 128, pageSize, maxSeqlen: 1024, lens: [5, 700, 255] }));
  });
  it('many splits: batch 1, 16k context', () =>
    check({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, maxSeqlen: 16384, lens: [16000], seqlenNew: 1 }));
  it('one split: batch 64, short context', () =>
    check({ dtype: 'bfloat16', batch: 64, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, maxSeqlen: 64, lens: Array.from({ length: 64 }, (_, i) => i % 60), seqlenNew: 1 }));
  // Paged reads go through the block-table ring of each tile (decode_tile.h): every head dim, the
  // 64-row tile (seqlenQ 16 × group 4), a window, and many splits over a long paged row.
  it.each([64, 256])('paged 16, headDim %i', (headDim) =>
    check({ ...base, dtype: 'bfloat16', headDim, pageSize: 16, maxSeqlen: 1024, lens: [5, 700, 255] }));
  it.each([128, 256])('paged 16, seqlenQ 16 causal (64-row tile), headDim %i', (headDim) =>
    check({ ...base, dtype: 'float16', headDim, seqlenQ: 16, seqlenNew: 16, causal: true, pageSize: 16, maxSeqlen: 1024, lens: [5, 700, 255] }));
  it('paged 48 (not a power of two), sliding window', () =>
    check({ ...base, dtype: 'bfloat16', headDim: 128, pageSize: 48, maxSeqlen: 1056, lens: [5, 700, 255], windowSize: [100, 0] }));
  it('paged 16, many splits: batch 1, 12k context', () =>
    check({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, pageSize: 16, maxSeqlen: 12288, lens: [12000], seqlenNew: 1 }));
  // Several splits are merged by the last split CTA of each tile to finish (split_kernel.cuh's
  // fused combine, the default): the bar shapes' split counts at b1, and several query tiles per
  // KV head (MQA 32/1 × seqlenQ 4 = 128 packed rows, two 64-row tiles, each with its own counter).
  it.each([0, 16])('batch 1, 8k context (16 splits), pageSize %i', (pageSize) =>
    check({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, pageSize: pageSize || undefined, maxSeqlen: 8192, lens: [8191], seqlenNew: 1 }));
  it('two query tiles per KV head, many splits: MQA 32/1, seqlenQ 4, causal', () =>
    check({ dtype: 'float16', batch: 2, seqlenQ: 4, headsQ: 32, headsKV: 1, headDim: 128, maxSeqlen: 4096, lens: [4000, 1500], seqlenNew: 4, causal: true }));
  it('MQA, no new keys', () => check({ ...base, dtype: 'bfloat16', headDim: 64, headsKV: 1, seqlenNew: 0 }));
  describe.each(['bfloat16', 'float16'] as const)('rotary, %s', (dtype) => {
    it.each([false, true])('halves / interleaved %p, decode', (rotaryInterleaved) =>
      check({ ...base, dtype, headDim: 128, rotaryDim: 64, rotaryInterleaved }));
    it.each([false, true])('interleaved %p, seqlenQ 4 causal (per-token positions), paged 16', (rotaryInterleaved) =>
      check({ ...base, dtype, headDim: 128, rotaryDim: 128, rotaryInterleaved, seqlenQ: 4, seqlenNew: 4, causal: true, pageSize: 16, maxSeqlen: 1024, lens: [5, 700, 255] }));
    it('headDim 64, rotaryDim 32, many splits', () =>
      check({ ...base, dtype, headDim: 64, rotaryDim: 32, batch: 1, maxSeqlen: 8192, lens: [8000] }));
  });
  it('cacheBatchIdx', () => check({ ...base, dtype: 'bfloat16', headDim: 128, batchCache: 5, cacheBatchIdx: [4, 0, 2] }));

  it('runs 32 calls in flight on two Streams, each matching the CPU backend', async () => {
    gpu.report();
    const streams = [new Stream(0), new Stream(0)];
    try {
      const c: KvCase = { ...base, dtype: 'bfloat16', headDim: 128 };
      const rng = makeRng();
      const xs = Array.from({ length: 32 }, () => inputs(c, rng));
      const gs = await Promise.all(xs.map((x, i) => runGpu(x, c, streams[i % 2])));
      for (let i = 0; i < xs.length; i++) {
        const [ref, naive] = [await runCpu(xs[i], c, true), await runCpu(xs[i], c, false)];
        assertRule(`out of call ${i}`, values(gs[i].out), values(ref.out), values(naive.out), 'bfloat16', `seed ${rng.seed}`);
      }
    } finally {
      for (const s of streams) s.dispose();
    }
  });

  it('runs a 1,000-step decode loop on one Stream whose final cache and outputs match the CPU backend', async () => {
    gpu.report();
    const rng = makeRng();
    const [hq, hk, hd, ms, steps] = [4, 1, 64, 1024, 1000];
    const kc = randomTensor([1, ms, hk, hd], 'bfloat16', rng);
    const vc = randomTensor([1, ms, hk, hd], 'bfloat16', rng);
    const stream = new Stream(0);
    const dk = await DeviceTensor.from(kc);
    const dv = await DeviceTensor.from(vc);
    const pending: Promise<HostTensor>[] = [];
    const cpuOuts: HostTensor[] = [];
    try {
      for (let step = 0; step < steps; step++) {
        const q = randomTensor([1, 1, hq, hd], 'bfloat16', rng);
        const kNew = randomTensor([1, 1, hk, hd], 'bfloat16', rng);
        const vNew = randomTensor([1, 1, hk, hd], 'bfloat16', rng);
        const lens = i32([step]);
        const dev = await Promise.all([q, kNew, vNew, lens].map((t) => DeviceTensor.from(t as HostTensor)));
        const r = await flashAttentionWithKVCache(dev[0], dk, dv, { cacheSeqlens: dev[3] as never, kNew: dev[1], vNew: dev[2], causal: true, stream });
        pending.push((r.out as DeviceTensor).toHost().finally(() => { (r.out as DeviceTensor).dispose(); (r.lse as DeviceTensor).dispose(); }));
        for (const t of dev) t.dispose();
        cpuOuts.push((await flashAttentionWithKVCache(q, kc, vc, { cacheSeqlens: lens as never, kNew, vNew, causal: true, device: 'cpu' })).out);
      }
      const outs = await Promise.all(pending);
      for (let i = 0; i < steps; i += 97) {
        const a = values(outs[i]);
        const b = values(cpuOuts[i]);
        const err = Math.max(...Array.from(a).map((x, j) => Math.abs(x - b[j])));
        if (!(err <= 2 ** -6)) throw new Error(`decode step ${i}: max |gpu − cpu| = ${err} (seed ${rng.seed})`);
      }
      expect(Array.from((await dk.toHost()).data)).toEqual(Array.from(kc.data));
      expect(Array.from((await dv.toHost()).data)).toEqual(Array.from(vc.data));
    } finally {
      dk.dispose();
      dv.dispose();
      stream.dispose();
    }
  });
});
