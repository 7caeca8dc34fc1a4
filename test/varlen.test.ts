// flashAttentionVarlen / flashAttentionVarlenBackward on the CPU backend: every packed sequence
// against the same sequence run alone through flashAttention / flashAttentionBackward as a batch
// of one (bit for bit: the same backend attends both), one configuration against the float64
// reference, the lse layout, outputs written in place, and every refusal.
import { type NativeTensorArg, type NativeVarlenBackwardRequest, type NativeVarlenForwardRequest, binding } from '../src-ts/binding';
import { Stream, flashAttention, flashAttentionBackward, flashAttentionVarlen, flashAttentionVarlenBackward, tensor } from '../src-ts/index';
import type { DType } from '../src-ts/dtype';
import type { HostTensor } from '../src-ts/tensor';
import { type Rng, assertClose, assertLse, makeRng, nanTensor, randomTensor, rejectsWith, values } from './helpers';
import { type RefOptions, referenceBackward, referenceForward } from './reference';
import { noGpuReason, probe } from '../src-ts/probe';

/** A usable GPU with the CUDA build loaded (CI has none): decides which error some cases give. */
const GPU = noGpuReason(probe(), 0) === '';

interface Setup {
  lensQ: number[];
  lensK: number[];
  headsQ: number;
  headsKV: number;
  headDim: number;
  dtype: DType;
}

interface Packed {
  s: Setup;
  cuQ: Int32Array;
  cuK: Int32Array;
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  dout: HostTensor;
  ctx: string;
}

function offsets(lens: number[]): Int32Array {
  const cu = new Int32Array(lens.length + 1);
  for (let b = 0; b < lens.length; b++) cu[b + 1] = cu[b] + lens[b];
  return cu;
}

function pack(s: Setup, rng: Rng = makeRng()): Packed {
  const cuQ = offsets(s.lensQ);
  const cuK = offsets(s.lensK);
  const [tq, tk] = [cuQ[cuQ.length - 1], cuK[cuK.length - 1]];
  return {
    s,
    cuQ,
    cuK,
    q: randomTensor([tq, s.headsQ, s.headDim], s.dtype, rng),
    k: randomTensor([tk, s.headsKV, s.headDim], s.dtype, rng),
    v: randomTensor([tk, s.headsKV, s.headDim], s.dtype, rng),
    dout: randomTensor([tq, s.headsQ, s.headDim], s.dtype, rng),
    ctx: `${JSON.stringify(s)} seed ${rng.seed}`,
  };
}

/** Rows [from, to) of a packed [total, heads, d] tensor as a [1, to − from, heads, d] one (a copy). */
function rows(t: HostTensor, from: number, to: number): HostTensor {
  const [, heads, d] = t.shape;
  const data = t.data.slice(from * heads * d, to * heads * d);
  return tensor(data as never, [1, to - from, heads, d], t.dtype);
}

/** Sequence b's part of a packed lse [heads, total] as a padded [1, heads, len] one. */
function lseRows(lse: HostTensor, from: number, to: number): HostTensor<'float32'> {
  const [heads, total] = lse.shape;
  const out = new Float32Array(heads * (to - from));
  for (let h = 0; h < heads; h++) out.set((lse.data as Float32Array).subarray(h * total + from, h * total + to), h * (to - from));
  return tensor(out, [1, heads, to - from], 'float32');
}

/** Exactly the same bits (16-bit dtypes are bit arrays already; float32 compared as values, with
 * matching infinities). */
function expectSame(what: string, ours: ArrayLike<number>, want: ArrayLike<number>, ctx: string): void {
  if (ours.length !== want.length) throw new Error(`${what} [${ctx}]: length ${ours.length}, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(ours[i], want[i])) throw new Error(`${what} [${ctx}]: element ${i} is ${ours[i]}, want ${want[i]}`);
  }
}

/** Every element of rows [from, to) of a packed tensor is +0. */
function expectZeroRows(what: string, t: HostTensor, from: number, to: number, ctx: string): void {
  const [, heads, d] = t.shape;
  for (let i = from * heads * d; i < to * heads * d; i++) {
    if (!Object.is(t.data[i], 0)) throw new Error(`${what} [${ctx}]: element ${i} of an empty sequence's rows is ${t.data[i]}, want 0`);
  }
}

type Masks = RefOptions & { softmaxScale?: number; threads?: number };

function apiOptions(m: Masks): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (m.causal) o.causal = true;
  if (m.windowSize) o.windowSize = m.windowSize;
  if (m.softmaxScale !== undefined) o.softmaxScale = m.softmaxScale;
  if (m.threads !== undefined) o.threads = m.threads;
  return o;
}

/** Runs the packed batch forward and backward, and each sequence alone as a padded batch of one;
 * the two must agree to the bit. */
async function checkAgainstPadded(p: Packed, m: Masks): Promise<void> {
  const opts = apiOptions(m);
  const seqs = { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK };
  const ctx = `${p.ctx} ${JSON.stringify(opts)}`;
  const fwd = await flashAttentionVarlen(p.q, p.k, p.v, { ...seqs, ...opts });
  expect(fwd.out.shape).toEqual(p.q.shape);
  expect(fwd.out.dtype).toBe(p.s.dtype);
  expect(fwd.lse.shape).toEqual([p.s.headsQ, p.q.shape[0]]);
  const bwd = await flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, fwd.out, fwd.lse, { ...seqs, ...opts });
  expect(bwd.dq.shape).toEqual(p.q.shape);
  expect(bwd.dk.shape).toEqual(p.k.shape);
  expect(bwd.dv.shape).toEqual(p.k.shape);

  for (let b = 0; b < p.s.lensQ.length; b++) {
    const [q0, q1, k0, k1] = [p.cuQ[b], p.cuQ[b + 1], p.cuK[b], p.cuK[b + 1]];
    const at = `${ctx} sequence ${b} (${q1 - q0} queries, ${k1 - k0} keys)`;
    if (q1 === q0) {
      expectZeroRows('dk', bwd.dk, k0, k1, at);
      expectZeroRows('dv', bwd.dv, k0, k1, at);
      continue;
    }
    if (k1 === k0) {
      expectZeroRows('out', fwd.out, q0, q1, at);
      expectZeroRows('dq', bwd.dq, q0, q1, at);
      expectSame('lse', lseRows(fwd.lse, q0, q1).data, new Float32Array(p.s.headsQ * (q1 - q0)).fill(-Infinity), at);
      continue;
    }
    const [q, k, v, dout] = [rows(p.q, q0, q1), rows(p.k, k0, k1), rows(p.v, k0, k1), rows(p.dout, q0, q1)];
    const one = await flashAttention(q, k, v, opts);
    expectSame('out', rows(fwd.out, q0, q1).data, one.out.data, at);
    expectSame('lse', lseRows(fwd.lse, q0, q1).data, one.lse.data, at);
    const g = await flashAttentionBackward(dout, q, k, v, one.out, one.lse, opts);
    expectSame('dq', rows(bwd.dq, q0, q1).data, g.dq.data, at);
    expectSame('dk', rows(bwd.dk, k0, k1).data, g.dk.data, at);
    expectSame('dv', rows(bwd.dv, k0, k1).data, g.dv.data, at);
  }
}

// Lengths 0 and 1 on either side, equal and unequal lengths, and one sequence longer than a
// 64-row tile of the CPU backend.
const MIXED = { lensQ: [5, 0, 1, 70, 3, 7, 2], lensK: [5, 4, 0, 70, 9, 1, 2] };

describe('flashAttentionVarlen matches each sequence run alone through flashAttention (forward and backward)', () => {
  const masks: [string, Masks][] = [
    ['no mask', {}],
    ['causal (bottom-right per sequence)', { causal: true }],
    ['sliding window [3, 2]', { windowSize: [3, 2] }],
    ['causal with a left window [4, 0]', { causal: true, windowSize: [4, -1] }],
    ['softmaxScale 0.3, window [-1, 1]', { softmaxScale: 0.3, windowSize: [-1, 1] }],
  ];
  for (const [name, m] of masks) {
    it(`float32, GQA 4/2, mixed lengths, ${name}`, async () => {
      await checkAgainstPadded(pack({ ...MIXED, headsQ: 4, headsKV: 2, headDim: 32, dtype: 'float32' }), m);
    });
  }

  it('MQA (8 query heads, 1 KV head), causal', async () => {
    await checkAgainstPadded(pack({ ...MIXED, headsQ: 8, headsKV: 1, headDim: 16, dtype: 'float32' }), { causal: true });
  });

  it('MHA, headDim 64, window [2, 0]', async () => {
    await checkAgainstPadded(pack({ lensQ: [3, 9, 1], lensK: [12, 9, 6], headsQ: 2, headsKV: 2, headDim: 64, dtype: 'float32' }), {
      windowSize: [2, 0],
    });
  });

  for (const dtype of ['float16', 'bfloat16'] as const) {
    it(`${dtype}, GQA 4/2, mixed lengths, causal`, async () => {
      await checkAgainstPadded(pack({ ...MIXED, headsQ: 4, headsKV: 2, headDim: 32, dtype }), { causal: true });
    });
  }

  it('many short sequences (run side by side, one thread each), window [5, 1]', async () => {
    const rng = makeRng();
    const lens = () => Array.from({ length: 24 }, () => Math.floor(rng.next() * 12));
    await checkAgainstPadded(pack({ lensQ: lens(), lensK: lens(), headsQ: 2, headsKV: 1, headDim: 16, dtype: 'float32' }, rng), {
      windowSize: [5, 1],
      threads: 4,
    });
  });

  it('a batch of one is flashAttention itself', async () => {
    await checkAgainstPadded(pack({ lensQ: [6], lensK: [11], headsQ: 2, headsKV: 1, headDim: 8, dtype: 'float32' }), { causal: true });
  });
});

describe('flashAttentionVarlen against the float64 reference', () => {
  it('out, lse and gradients of every sequence (float32, GQA, causal, unequal lengths)', async () => {
    const s: Setup = { lensQ: [4, 1, 6], lensK: [7, 3, 6], headsQ: 4, headsKV: 2, headDim: 16, dtype: 'float32' };
    const p = pack(s);
    const seqs = { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK, causal: true };
    const fwd = await flashAttentionVarlen(p.q, p.k, p.v, seqs);
    const g = await flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, fwd.out, fwd.lse, seqs);
    for (let b = 0; b < s.lensQ.length; b++) {
      const [q0, q1, k0, k1] = [p.cuQ[b], p.cuQ[b + 1], p.cuK[b], p.cuK[b + 1]];
      const dims = { batch: 1, seqlenQ: q1 - q0, seqlenK: k1 - k0, headsQ: s.headsQ, headsKV: s.headsKV, headDim: s.headDim };
      const [q, k, v, dout] = [rows(p.q, q0, q1), rows(p.k, k0, k1), rows(p.v, k0, k1), rows(p.dout, q0, q1)].map(values);
      const ref = referenceForward(q, k, v, dims, { causal: true });
      const at = `${p.ctx} sequence ${b}`;
      assertClose('out', rows(fwd.out, q0, q1).data, ref.out, at);
      assertLse(lseRows(fwd.lse, q0, q1).data, ref.lse, at);
      const rg = referenceBackward(dout, q, k, v, dims, { causal: true });
      assertClose('dq', rows(g.dq, q0, q1).data, rg.dq, at, 1e-4);
      assertClose('dk', rows(g.dk, k0, k1).data, rg.dk, at, 1e-4);
      assertClose('dv', rows(g.dv, k0, k1).data, rg.dv, at, 1e-4);
    }
  });
});

describe('flashAttentionVarlen lse layout and outputs', () => {
  it("lse is float32 [headsQ, totalQ]: lse[h][cuSeqlensQ[b] + i] is row i of sequence b's head h", async () => {
    const p = pack({ lensQ: [2, 3], lensK: [4, 1], headsQ: 2, headsKV: 1, headDim: 8, dtype: 'float32' });
    const { lse } = await flashAttentionVarlen(p.q, p.k, p.v, { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK });
    expect(lse.dtype).toBe('float32');
    expect(lse.shape).toEqual([2, 5]);
    for (let b = 0; b < 2; b++) {
      const one = await flashAttention(rows(p.q, p.cuQ[b], p.cuQ[b + 1]), rows(p.k, p.cuK[b], p.cuK[b + 1]), rows(p.v, p.cuK[b], p.cuK[b + 1]));
      const len = p.cuQ[b + 1] - p.cuQ[b];
      for (let h = 0; h < 2; h++) {
        for (let i = 0; i < len; i++) expect(lse.data[h * 5 + p.cuQ[b] + i]).toBe(one.lse.data[h * len + i]);
      }
    }
  });

  it('writes out, lse, dq, dk and dv in place when they are given, and returns them', async () => {
    const p = pack({ lensQ: [3, 0, 2], lensK: [2, 3, 0], headsQ: 2, headsKV: 2, headDim: 8, dtype: 'bfloat16' });
    const seqs = { cuSeqlensQ: tensor(p.cuQ, [4]), cuSeqlensK: p.cuK };
    const want = await flashAttentionVarlen(p.q, p.k, p.v, seqs);
    const out = nanTensor([5, 2, 8], 'bfloat16');
    const lse = nanTensor([2, 5], 'float32') as HostTensor<'float32'>;
    const got = await flashAttentionVarlen(p.q, p.k, p.v, { ...seqs, out, lse });
    expect(got.out).toBe(out);
    expect(got.lse).toBe(lse);
    expectSame('out', out.data, want.out.data, p.ctx);
    expectSame('lse', lse.data, want.lse.data, p.ctx);
    const grads = await flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, out, lse, seqs);
    const [dq, dk, dv] = [nanTensor([5, 2, 8], 'bfloat16'), nanTensor([5, 2, 8], 'bfloat16'), nanTensor([5, 2, 8], 'bfloat16')];
    const g = await flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, out, lse, { ...seqs, dq, dk, dv });
    expect([g.dq, g.dk, g.dv]).toEqual([dq, dk, dv]);
    expect(g.dq).toBe(dq);
    expectSame('dq', dq.data, grads.dq.data, p.ctx);
    expectSame('dk', dk.data, grads.dk.data, p.ctx);
    expectSame('dv', dv.data, grads.dv.data, p.ctx);
  });

  it('takes maxSeqlenQ/maxSeqlenK at or above the longest sequence', async () => {
    const p = pack({ lensQ: [3, 1], lensK: [2, 5], headsQ: 1, headsKV: 1, headDim: 8, dtype: 'float32' });
    const base = { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK };
    const want = await flashAttentionVarlen(p.q, p.k, p.v, base);
    for (const max of [{ maxSeqlenQ: 3, maxSeqlenK: 5 }, { maxSeqlenQ: 64, maxSeqlenK: 4096 }]) {
      const got = await flashAttentionVarlen(p.q, p.k, p.v, { ...base, ...max });
      expectSame('out', got.out.data, want.out.data, JSON.stringify(max));
    }
  });

  it('gives the same bits for any thread count, and runs in issue order on a Stream', async () => {
    const p = pack({ ...MIXED, headsQ: 4, headsKV: 2, headDim: 32, dtype: 'float32' });
    const seqs = { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK, causal: true };
    const one = await flashAttentionVarlen(p.q, p.k, p.v, { ...seqs, threads: 1 });
    using stream = new Stream(0);
    const [a, b] = await Promise.all([
      flashAttentionVarlen(p.q, p.k, p.v, { ...seqs, threads: 3, stream }),
      flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, one.out, one.lse, { ...seqs, stream }),
    ]);
    expectSame('out', a.out.data, one.out.data, p.ctx);
    expectSame('lse', a.lse.data, one.lse.data, p.ctx);
    const g1 = await flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, one.out, one.lse, { ...seqs, threads: 1 });
    expectSame('dq', b.dq.data, g1.dq.data, p.ctx);
    expectSame('dk', b.dk.data, g1.dk.data, p.ctx);
  });

  it('reads only own properties of the options (an inherited causal or cuSeqlensQ is not seen)', async () => {
    const p = pack({ lensQ: [4, 2], lensK: [4, 2], headsQ: 1, headsKV: 1, headDim: 8, dtype: 'float32' });
    const plain = await flashAttentionVarlen(p.q, p.k, p.v, { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK });
    const inherited = Object.assign(Object.create({ causal: true }) as object, { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK });
    const got = await flashAttentionVarlen(p.q, p.k, p.v, inherited as never);
    expectSame('out', got.out.data, plain.out.data, p.ctx);
    const noOffsets = Object.assign(Object.create({ cuSeqlensQ: p.cuQ }) as object, { cuSeqlensK: p.cuK });
    await rejectsWith(flashAttentionVarlen(p.q, p.k, p.v, noOffsets as never), 'E_ARG');
  });
});

describe('flashAttentionVarlen refuses bad offsets and shapes before anything runs', () => {
  const p = pack({ lensQ: [2, 3], lensK: [4, 1], headsQ: 4, headsKV: 2, headDim: 8, dtype: 'float32' });
  const fwd = (o: Record<string, unknown>, q = p.q, k = p.k, v = p.v) =>
    flashAttentionVarlen(q, k, v, { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK, ...o } as never);
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['offsets that do not start at 0', { cuSeqlensQ: new Int32Array([1, 2, 5]) }, 'E_ARG', /cuSeqlensQ\[0\] must be 0/],
    ['decreasing offsets', { cuSeqlensK: new Int32Array([0, 6, 5]) }, 'E_ARG', /cuSeqlensK must be non-decreasing/],
    ['a negative offset', { cuSeqlensQ: new Int32Array([0, -1, 5]) }, 'E_ARG', /non-decreasing/],
    ['a last offset below the total', { cuSeqlensQ: new Int32Array([0, 2, 4]) }, 'E_SHAPE', /totalQ\) = 5, but got 4/],
    ['a last offset past the total (no read past the end)', { cuSeqlensK: new Int32Array([0, 4, 600000]) }, 'E_SHAPE', /totalK\) = 5/],
    ['Q and K offsets for different batches', { cuSeqlensK: new Int32Array([0, 5]) }, 'E_SHAPE', /cuSeqlensK.shape\[0\] \(batch \+ 1\)/],
    ['float32 offsets', { cuSeqlensQ: tensor(new Float32Array([0, 2, 5]), [3]) }, 'E_DTYPE', /cuSeqlensQ must be int32/],
    ['offsets that are not a tensor', { cuSeqlensQ: [0, 2, 5] }, 'E_ARG', /cuSeqlensQ must be a tensor/],
    ['2-D offsets', { cuSeqlensQ: tensor(new Int32Array([0, 2, 5, 5]), [2, 2]) }, 'E_SHAPE', /cuSeqlensQ.shape/],
    ['a missing cuSeqlensK', { cuSeqlensK: undefined }, 'E_ARG', /cuSeqlensK is required/],
    ['maxSeqlenQ below the longest sequence', { maxSeqlenQ: 2 }, 'E_ARG', /maxSeqlenQ = 2 is below the longest sequence.*\(3 rows\)/],
    ['maxSeqlenK that is not an integer', { maxSeqlenK: 4.5 }, 'E_ARG', /maxSeqlenK must be a non-negative integer/],
    ['an unknown option', { cuSeqlens: p.cuQ }, 'E_ARG', /unknown option 'cuSeqlens'/],
    ['a layout (packed tensors have none)', { layout: 'bhsd' }, 'E_ARG', /unknown option 'layout'/],
    // float32 has no CUDA kernel; without a usable GPU there is no device at all.
    [`device: 'cuda' with float32`, { device: 'cuda' }, GPU ? 'E_UNSUPPORTED' : 'E_NO_DEVICE', GPU ? /no CUDA kernel/ : /needs a usable CUDA GPU/],
    ['causal with windowSize[1] > 0', { causal: true, windowSize: [1, 1] }, 'E_ARG', /causal: true means windowSize\[1\] = 0/],
    ['out of the wrong shape', { out: nanTensor([5, 4, 16], 'float32') }, 'E_SHAPE', /out.shape must equal q.shape/],
    ['lse in the padded layout', { lse: nanTensor([1, 4, 5], 'float32') }, 'E_SHAPE', /lse.shape must be an array of 2/],
  ];
  for (const [name, o, code, message] of cases) {
    it(`refuses ${name} (${code})`, async () => {
      const e = await rejectsWith(fwd(o), code);
      expect(e.message).toMatch(/^flashAttentionVarlen: /);
      expect(e.message).toMatch(message);
    });
  }

  it('refuses padded 4-D tensors, mismatched heads and head dims (E_SHAPE), mixed dtypes (E_DTYPE) and float8 (E_UNSUPPORTED)', async () => {
    await rejectsWith(fwd({}, tensor(new Float32Array(5 * 4 * 8), [1, 5, 4, 8])), 'E_SHAPE');
    await rejectsWith(fwd({}, p.q, tensor(new Float32Array(5 * 3 * 8), [5, 3, 8]), tensor(new Float32Array(5 * 3 * 8), [5, 3, 8])), 'E_SHAPE');
    await rejectsWith(fwd({}, p.q, tensor(new Float32Array(5 * 2 * 16), [5, 2, 16]), tensor(new Float32Array(5 * 2 * 16), [5, 2, 16])), 'E_SHAPE');
    await rejectsWith(fwd({}, p.q, p.k, tensor(new Float32Array(4 * 2 * 8), [4, 2, 8])), 'E_SHAPE');
    const e = await rejectsWith(fwd({}, p.q, randomTensor([5, 2, 8], 'bfloat16', makeRng())), 'E_DTYPE');
    expect(e.message).toMatch(/k.dtype must be 'float32'/);
    const fp8 = (n: number, shape: number[]) => tensor(new Uint8Array(n), shape, 'float8_e4m3');
    const u = await rejectsWith(fwd({}, fp8(160, [5, 4, 8]), fp8(80, [5, 2, 8]), fp8(80, [5, 2, 8])), 'E_UNSUPPORTED');
    expect(u.message).toMatch(/float8_e4m3' has no varlen path/);
  });

  it('refuses a backward lse that is not [headsQ, totalQ] float32, and offsets that do not fit its tensors', async () => {
    const seqs = { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK };
    const { out, lse } = await flashAttentionVarlen(p.q, p.k, p.v, seqs);
    const bwd = (o: Record<string, unknown>, l: HostTensor = lse) => flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, out, l as HostTensor<'float32'>, { ...seqs, ...o } as never);
    const e = await rejectsWith(bwd({}, nanTensor([5, 4], 'float32')), 'E_SHAPE');
    expect(e.message).toMatch(/^flashAttentionVarlenBackward: lse.shape must be \[headsQ, totalQ\] = \[4, 5\]/);
    await rejectsWith(bwd({}, tensor(new Uint16Array(20), [4, 5], 'bfloat16')), 'E_DTYPE');
    await rejectsWith(bwd({ cuSeqlensQ: new Int32Array([0, 3, 2]) }), 'E_ARG');
    await rejectsWith(bwd({ cuSeqlensK: new Int32Array([0, 4, 6]) }), 'E_SHAPE');
    await rejectsWith(bwd({ maxSeqlenK: 3 }), 'E_ARG');
    await rejectsWith(bwd({ dk: nanTensor([5, 4, 8], 'float32') }), 'E_SHAPE');
  });
});

describe('flashAttentionVarlen with hostile options and offsets', () => {
  const p = pack({ lensQ: [2, 3], lensK: [4, 1], headsQ: 2, headsKV: 1, headDim: 8, dtype: 'float32' });

  it('a throwing getter or Proxy trap is E_ARG naming the field', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    const e1 = await rejectsWith(flashAttentionVarlen(p.q, p.k, p.v, { cuSeqlensK: p.cuK, get cuSeqlensQ() { return boom(); } } as never), 'E_ARG');
    expect(e1.message).toMatch(/^flashAttentionVarlen: reading options.cuSeqlensQ threw: Error: boom/);
    const e2 = await rejectsWith(flashAttentionVarlen(p.q, p.k, p.v, new Proxy({}, { ownKeys: boom }) as never), 'E_ARG');
    expect(e2.message).toMatch(/^flashAttentionVarlen: /);
    const cu = { get data() { return boom(); }, shape: [3], dtype: 'int32' };
    const e3 = await rejectsWith(flashAttentionVarlenBackward(p.dout, p.q, p.k, p.v, p.q, nanTensor([2, 5], 'float32') as never, { cuSeqlensQ: p.cuQ, cuSeqlensK: cu } as never), 'E_ARG');
    expect(e3.message).toMatch(/cuSeqlensK\.data/);
  });

  it('offsets whose getter changes between reads are used as checked or refused, never read past the rows', async () => {
    let reads = 0;
    const cuSeqlensQ = { get data() { return ++reads === 1 ? new Int32Array([0, 2, 5]) : new Int32Array([0, 1000000, 5]); }, shape: [3], dtype: 'int32' };
    try {
      const r = await flashAttentionVarlen(p.q, p.k, p.v, { cuSeqlensQ, cuSeqlensK: p.cuK } as never);
      const want = await flashAttentionVarlen(p.q, p.k, p.v, { cuSeqlensQ: p.cuQ, cuSeqlensK: p.cuK });
      expectSame('out', r.out.data, want.out.data, p.ctx);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('E_ARG');
    }
    expect(reads).toBeGreaterThan(0);
  });
});

describe('the addon checks the offsets itself (a request that skipped the TypeScript checks)', () => {
  const p = pack({ lensQ: [2, 3], lensK: [4, 1], headsQ: 2, headsKV: 1, headDim: 8, dtype: 'float32' });
  const arg = (t: HostTensor): NativeTensorArg => ({ data: t.data as Float32Array, shape: [...t.shape], dtype: t.dtype });
  const int32 = (...v: number[]): NativeTensorArg => ({ data: Int32Array.from(v), shape: [v.length], dtype: 'int32' });
  const request = (o: Record<string, unknown>): NativeVarlenForwardRequest => ({
    backend: 'cpu', device: 0, scale: 0.5, windowLeft: -1, windowRight: -1, threads: 1,
    q: arg(p.q), k: arg(p.k), v: arg(p.v), cuSeqlensQ: int32(...p.cuQ), cuSeqlensK: int32(...p.cuK), ...o,
  }) as NativeVarlenForwardRequest;

  it('runs a valid request', async () => {
    const r = await binding().varlenForward(request({}));
    expect((r.out as Float32Array).length).toBe(5 * 2 * 8);
    expect((r.lse as Float32Array).length).toBe(2 * 5);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ['an offset far past the rows', { cuSeqlensK: int32(0, 2147483647, 5) }, 'E_ARG'],
    ['a last offset past the rows', { cuSeqlensQ: int32(0, 2, 1000) }, 'E_SHAPE'],
    ['a negative first offset', { cuSeqlensQ: int32(-3, 2, 5) }, 'E_ARG'],
    ['offsets of different batches', { cuSeqlensK: int32(0, 1, 2, 5) }, 'E_SHAPE'],
    ['float32 offsets', { cuSeqlensQ: { data: new Float32Array([0, 2, 5]), shape: [3], dtype: 'float32' } }, 'E_DTYPE'],
    ['no offsets', { cuSeqlensK: undefined }, 'E_ARG'],
    ['a maxSeqlenK below the longest sequence', { maxSeqlenK: 3 }, 'E_ARG'],
    ['backend cuda (float32: no kernel; or no GPU)', { backend: 'cuda' }, GPU ? 'E_UNSUPPORTED' : 'E_NO_DEVICE'],
  ];
  for (const [name, o, code] of bad) {
    it(`refuses ${name} (${code})`, async () => {
      await expect(binding().varlenForward(request(o))).rejects.toMatchObject({ code, message: expect.stringMatching(/^varlen_forward: /) });
    });
  }

  it('refuses bad offsets in the backward too', async () => {
    const { out, lse } = await binding().varlenForward(request({}));
    const req = {
      ...request({}), dout: arg(p.dout), out: { data: out, shape: [5, 2, 8], dtype: 'float32' },
      lse: { data: lse, shape: [2, 5], dtype: 'float32' }, deterministic: false,
    } as NativeVarlenBackwardRequest;
    await expect(binding().varlenBackward({ ...req, cuSeqlensQ: int32(0, 6, 5) })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(binding().varlenBackward({ ...req, cuSeqlensK: int32(0, 4, 9) })).rejects.toMatchObject({ code: 'E_SHAPE' });
    const g = await binding().varlenBackward(req);
    expect((g.dk as Float32Array).length).toBe(5 * 1 * 8);
  });
});
