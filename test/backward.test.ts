// Backward pass of the CPU backend against the textbook float64 gradients.
import { flashAttention, flashAttentionBackward } from '../src-ts/index';
import { type Case, checkCase, makeCase, makeRng, randomTensor, values } from './helpers';
import { referenceBackward } from './reference';

const cpu = (c: Case): Case => ({ device: 'cpu', backward: true, ...c });

describe('backward, float32', () => {
  it.each([
    { seqlenQ: 40, headDim: 32 },
    { batch: 2, seqlenQ: 27, seqlenK: 61, headsQ: 3, headDim: 64 },
    { seqlenQ: 70, seqlenK: 25, headsQ: 2, headDim: 128 },
  ])('dq, dk, dv match the reference: %o', async (c) => {
    await checkCase(cpu(c));
  });

  it('returns dq like q and dk, dv like k and v', async () => {
    const res = await checkCase(cpu({ batch: 2, seqlenQ: 6, seqlenK: 11, headsQ: 4, headsKV: 2, headDim: 16 }));
    expect(res.dq!.shape).toEqual([2, 6, 4, 16]);
    expect(res.dk!.shape).toEqual([2, 11, 2, 16]);
    expect(res.dv!.shape).toEqual([2, 11, 2, 16]);
  });

  it('is bit-identical run to run and for any thread count (deterministic)', async () => {
    const rng = makeRng();
    const d = makeCase({ batch: 2, seqlenQ: 50, seqlenK: 64, headsQ: 4, headsKV: 2, headDim: 32 }, rng);
    const dout = randomTensor([...d.q.shape], 'float32', rng);
    const f = await flashAttention(d.q, d.k, d.v, { device: 'cpu' });
    const a = await flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cpu', threads: 1 });
    const b = await flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cpu', threads: 3, deterministic: true });
    const c = await flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cpu' });
    for (const g of ['dq', 'dk', 'dv'] as const) {
      expect(b[g].data).toEqual(a[g].data);
      expect(c[g].data).toEqual(a[g].data);
    }
  });
});

describe.each(['float16', 'bfloat16'] as const)('backward, %s', (dtype) => {
  it.each([
    { seqlenQ: 48, headDim: 32 },
    { batch: 2, seqlenQ: 29, seqlenK: 53, headsQ: 4, headsKV: 2, headDim: 64 },
    { seqlenQ: 60, seqlenK: 21, headsQ: 2, headDim: 128, causal: true },
  ])('is within 2× the naive-%s error: %o', async (c) => {
    await checkCase(cpu({ ...c, dtype }));
  });
});

describe('backward with softmaxScale', () => {
  it.each([0.25, 1.7])('scale %p', async (softmaxScale) => {
    await checkCase(cpu({ seqlenQ: 25, seqlenK: 31, headDim: 32, softmaxScale }));
  });
});

describe('backward with the causal mask', () => {
  it.each([
    { seqlenQ: 40, seqlenK: 40 },
    { seqlenQ: 17, seqlenK: 60 },
    { seqlenQ: 60, seqlenK: 17 },
  ])('matches the reference: %o', async (c) => {
    await checkCase(cpu({ ...c, headsQ: 2, headDim: 32, causal: true }));
  });
});

describe('backward with sliding windows', () => {
  it.each([
    { windowSize: [6, 6] as [number, number], seqlenQ: 50, seqlenK: 50 },
    { windowSize: [4, 0] as [number, number], seqlenQ: 30, seqlenK: 55 },
    { windowSize: [-1, 2] as [number, number], seqlenQ: 55, seqlenK: 30 },
  ])('matches the reference: %o', async (c) => {
    await checkCase(cpu({ ...c, headsQ: 2, headDim: 32 }));
  });

  it('gives zero gradients (not NaN) where rows see no key', async () => {
    // Query i sees [i - 14, i - 11]: rows 0..10 see nothing; keys 0..7 are each seen by some row.
    const res = await checkCase(cpu({ seqlenQ: 20, seqlenK: 8, headsQ: 1, headDim: 16, windowSize: [2, 1] }));
    for (let i = 0; i < 11 * 16; i++) expect(res.dq!.data[i]).toBe(0);
  });

  it('gives zero dk, dv for keys no query sees', async () => {
    // seqlenQ 8, seqlenK 20, causal window [2, 0]: query i sees [i + 10, i + 12]; keys 0..9 unseen.
    const res = await checkCase(cpu({ seqlenQ: 8, seqlenK: 20, headsQ: 1, headDim: 16, causal: true, windowSize: [2, 0] }));
    for (let i = 0; i < 10 * 16; i++) {
      expect(res.dk!.data[i]).toBe(0);
      expect(res.dv!.data[i]).toBe(0);
    }
  });
});

describe('backward with grouped-query / multi-query attention', () => {
  it.each([
    { headsQ: 4, headsKV: 2 },
    { headsQ: 8, headsKV: 1 },
  ])('sums dk, dv over the query heads of each KV head: %o', async (c) => {
    await checkCase(cpu({ ...c, batch: 2, seqlenQ: 21, seqlenK: 26, headDim: 32 }));
    await checkCase(cpu({ ...c, seqlenQ: 21, seqlenK: 26, headDim: 32, dtype: 'bfloat16', causal: true }));
  });

  it('dk of a KV head is the sum over its query heads (checked against per-head references)', async () => {
    const rng = makeRng();
    const d = makeCase({ seqlenQ: 9, seqlenK: 12, headsQ: 4, headsKV: 1, headDim: 8 }, rng);
    const dout = randomTensor([...d.q.shape], 'float32', rng);
    const f = await flashAttention(d.q, d.k, d.v, { device: 'cpu' });
    const g = await flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cpu' });
    const ref = referenceBackward(values(dout), values(d.q), values(d.k), values(d.v), d.dims, {});
    for (let i = 0; i < ref.dk.length; i++) expect(g.dk.data[i]).toBeCloseTo(ref.dk[i], 4);
  });
});

describe('backward, odd shapes', () => {
  it.each([
    { seqlenQ: 1, seqlenK: 1 },
    { seqlenQ: 1, seqlenK: 17 },
    { seqlenQ: 17, seqlenK: 1 },
    { seqlenQ: 17, seqlenK: 17, causal: true },
    { seqlenQ: 1000, seqlenK: 1000, headsQ: 1, headDim: 8, causal: true },
  ])('sequence lengths %o', async (c) => {
    await checkCase(cpu({ headsQ: 2, headDim: 32, ...c }));
  });

  it.each([8, 40, 256])('head dim %i', async (headDim) => {
    await checkCase(cpu({ seqlenQ: 11, seqlenK: 19, headDim }));
    await checkCase(cpu({ seqlenQ: 11, seqlenK: 19, headDim, dtype: 'bfloat16' }));
  });
});
