// Forward pass of the CPU backend, feature by feature, against the float64 reference.
// float32: relative error ≲ 1e-5. float16/bfloat16: the flash-attn rule (≤ 2× naive-in-dtype).
import { flashAttention } from '../src-ts/index';
import { type Case, checkCase, makeCase, values } from './helpers';
import { referenceForward } from './reference';

const cpu = (c: Case): Case => ({ device: 'cpu', ...c });

describe('forward, float32', () => {
  it.each([
    { seqlenQ: 64, headDim: 32 },
    { batch: 2, seqlenQ: 33, seqlenK: 70, headsQ: 3, headDim: 64 },
    { batch: 1, seqlenQ: 130, seqlenK: 45, headsQ: 2, headDim: 128 },
  ])('matches the reference to 1e-5 relative: %o', async (c) => {
    await checkCase(cpu(c));
  });

  it('returns out shaped like q and float32 lse [batch, headsQ, seqlenQ]', async () => {
    const res = await checkCase(cpu({ batch: 2, seqlenQ: 5, seqlenK: 9, headsQ: 4, headsKV: 2, headDim: 16 }));
    expect(res.out.shape).toEqual([2, 5, 4, 16]);
    expect(res.out.data).toBeInstanceOf(Float32Array);
    expect(res.lse.shape).toEqual([2, 4, 5]);
    expect(res.lse.data).toBeInstanceOf(Float32Array);
  });

  it('does not modify its inputs', async () => {
    const d = makeCase({ seqlenQ: 20, headDim: 16 });
    const before = [d.q, d.k, d.v].map((t) => Float32Array.from(t.data as Float32Array));
    await flashAttention(d.q, d.k, d.v, { device: 'cpu' });
    [d.q, d.k, d.v].forEach((t, i) => expect(t.data).toEqual(before[i]));
  });

  it('gives the same result for any thread count', async () => {
    const d = makeCase({ batch: 2, seqlenQ: 90, seqlenK: 75, headsQ: 4, headDim: 32 });
    const one = await flashAttention(d.q, d.k, d.v, { device: 'cpu', threads: 1 });
    const many = await flashAttention(d.q, d.k, d.v, { device: 'cpu', threads: 3 });
    expect(many.out.data).toEqual(one.out.data);
    expect(many.lse.data).toEqual(one.lse.data);
  });
});

describe.each(['float16', 'bfloat16'] as const)('forward, %s', (dtype) => {
  it.each([
    { seqlenQ: 64, headDim: 32 },
    { batch: 2, seqlenQ: 47, seqlenK: 81, headsQ: 4, headsKV: 2, headDim: 64 },
    { seqlenQ: 100, seqlenK: 31, headsQ: 2, headDim: 128, causal: true },
  ])('is within 2× the naive-%s error: %o', async (c) => {
    const res = await checkCase(cpu({ ...c, dtype }));
    expect(res.out.dtype).toBe(dtype);
    expect(res.out.data).toBeInstanceOf(Uint16Array);
  });

  it('handles large logits without overflow (softmaxScale 4)', async () => {
    await checkCase(cpu({ seqlenQ: 40, headDim: 64, dtype, softmaxScale: 4 }));
  });
});

describe('softmaxScale', () => {
  it.each([0.3, 2, -0.5, 0])('uses scale %p instead of 1/sqrt(headDim)', async (softmaxScale) => {
    await checkCase(cpu({ seqlenQ: 30, seqlenK: 41, headDim: 32, softmaxScale }));
  });

  it('scale 0 averages the visible values uniformly (lse = log(#keys))', async () => {
    const d = makeCase({ seqlenQ: 3, seqlenK: 10, headsQ: 1, headDim: 8 });
    const { out, lse } = await flashAttention(d.q, d.k, d.v, { device: 'cpu', softmaxScale: 0 });
    const vv = values(d.v);
    for (let x = 0; x < 8; x++) {
      let mean = 0;
      for (let j = 0; j < 10; j++) mean += vv[j * 8 + x] / 10;
      expect(out.data[x]).toBeCloseTo(mean, 5);
    }
    expect(lse.data[0]).toBeCloseTo(Math.log(10), 5);
  });
});

describe('causal mask (aligned bottom-right)', () => {
  it.each([
    { seqlenQ: 50, seqlenK: 50 },
    { seqlenQ: 20, seqlenK: 77 },
    { seqlenQ: 77, seqlenK: 20 },
    { seqlenQ: 1, seqlenK: 33 },
  ])('matches the reference: %o', async (c) => {
    await checkCase(cpu({ ...c, headsQ: 2, headDim: 32, causal: true }));
  });

  it('lets query i see keys j <= i + seqlenK - seqlenQ (last query sees everything)', async () => {
    const d = makeCase({ seqlenQ: 4, seqlenK: 6, headsQ: 1, headDim: 8 });
    const causal = await flashAttention(d.q, d.k, d.v, { device: 'cpu', causal: true });
    const full = await flashAttention(d.q, d.k, d.v, { device: 'cpu' });
    // The last query row sees every key: same as no mask.
    for (let x = 24; x < 32; x++) expect(causal.out.data[x]).toBeCloseTo(full.out.data[x], 6);
    const ref = referenceForward(values(d.q), values(d.k), values(d.v),
      { batch: 1, seqlenQ: 4, seqlenK: 6, headsQ: 1, headsKV: 1, headDim: 8 }, { causal: true });
    expect(causal.lse.data[0]).toBeCloseTo(ref.lse[0], 5); // row 0 sees keys 0..2
  });

  it('gives zeros and lse -Infinity (never NaN) for queries above the first key when seqlenQ > seqlenK', async () => {
    const d = makeCase({ seqlenQ: 9, seqlenK: 4, headsQ: 2, headDim: 16 });
    const { out, lse } = await flashAttention(d.q, d.k, d.v, { device: 'cpu', causal: true });
    // Query i sees j <= i - 5: rows 0..4 see nothing.
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 9; i++) {
        const l = lse.data[h * 9 + i];
        if (i < 5) expect(l).toBe(-Infinity);
        else expect(Number.isFinite(l)).toBe(true);
        for (let x = 0; x < 16; x++) {
          const o = out.data[(i * 2 + h) * 16 + x];
          if (i < 5) expect(o).toBe(0);
          else expect(Number.isNaN(o)).toBe(false);
        }
      }
    }
  });

  it('equals windowSize [-1, 0]', async () => {
    const d = makeCase({ seqlenQ: 31, seqlenK: 40, headDim: 16 });
    const a = await flashAttention(d.q, d.k, d.v, { device: 'cpu', causal: true });
    const b = await flashAttention(d.q, d.k, d.v, { device: 'cpu', windowSize: [-1, 0] });
    expect(b.out.data).toEqual(a.out.data);
  });
});

describe('sliding window', () => {
  it.each([
    { windowSize: [8, 8] as [number, number], seqlenQ: 60, seqlenK: 60 },
    { windowSize: [5, 0] as [number, number], seqlenQ: 40, seqlenK: 70 },
    { windowSize: [0, 3] as [number, number], seqlenQ: 70, seqlenK: 40 },
    { windowSize: [16, -1] as [number, number], seqlenQ: 50, seqlenK: 50 },
    { windowSize: [-1, 4] as [number, number], seqlenQ: 30, seqlenK: 60 },
    { windowSize: [0, 0] as [number, number], seqlenQ: 33, seqlenK: 33 },
    { windowSize: [6, -1] as [number, number], seqlenQ: 45, seqlenK: 45, causal: true },
  ])('matches the reference: %o', async (c) => {
    await checkCase(cpu({ ...c, headsQ: 2, headDim: 32 }));
  });

  it('masks whole rows: zeros and lse -Infinity, no NaN', async () => {
    // seqlenQ 20, seqlenK 8, window [2, 1]: query i sees [i - 14, i - 11], so rows 0..10 see nothing.
    const res = await checkCase(cpu({ seqlenQ: 20, seqlenK: 8, headsQ: 2, headDim: 16, windowSize: [2, 1] }));
    let empty = 0;
    for (const l of res.lse.data) if (l === -Infinity) empty++;
    expect(empty).toBe(2 * 11);
    for (let i = 0; i < 11; i++) for (let x = 0; x < 32; x++) expect(res.out.data[i * 32 + x]).toBe(0);
  });

  it('masks whole rows in float16 and bfloat16 too', async () => {
    await checkCase(cpu({ seqlenQ: 20, seqlenK: 8, headDim: 16, windowSize: [2, 1], dtype: 'float16' }));
    await checkCase(cpu({ seqlenQ: 20, seqlenK: 8, headDim: 16, windowSize: [2, 1], dtype: 'bfloat16' }));
  });

  it('treats windows larger than the sequence as unbounded', async () => {
    const d = makeCase({ seqlenQ: 25, seqlenK: 30, headDim: 16 });
    const full = await flashAttention(d.q, d.k, d.v, { device: 'cpu' });
    const wide = await flashAttention(d.q, d.k, d.v, { device: 'cpu', windowSize: [1000, 1000] });
    expect(wide.out.data).toEqual(full.out.data);
    await checkCase(cpu({ seqlenQ: 25, seqlenK: 30, headDim: 16, windowSize: [29, 24] }));
    await checkCase(cpu({ seqlenQ: 25, seqlenK: 30, headDim: 16, windowSize: [28, 23] }));
  });
});

describe('grouped-query and multi-query attention', () => {
  it.each([
    { headsQ: 4, headsKV: 4 },
    { headsQ: 4, headsKV: 2 },
    { headsQ: 8, headsKV: 1 },
    { headsQ: 6, headsKV: 3 },
  ])('query head h reads KV head h / (headsQ/headsKV): %o', async (c) => {
    await checkCase(cpu({ ...c, batch: 2, seqlenQ: 19, seqlenK: 23, headDim: 32 }));
    await checkCase(cpu({ ...c, seqlenQ: 19, seqlenK: 23, headDim: 32, dtype: 'bfloat16', causal: true }));
  });
});

describe('odd shapes', () => {
  it.each([
    { seqlenQ: 1, seqlenK: 1 },
    { seqlenQ: 1, seqlenK: 17 },
    { seqlenQ: 17, seqlenK: 1 },
    { seqlenQ: 17, seqlenK: 17, causal: true },
    { seqlenQ: 1000, seqlenK: 1000, headsQ: 1, headDim: 16, causal: true },
    { seqlenQ: 999, seqlenK: 1000, headsQ: 1, headDim: 8 },
  ])('sequence lengths %o', async (c) => {
    await checkCase(cpu({ headsQ: 2, headDim: 32, ...c }));
  });

  it.each([8, 40, 72, 256])('head dim %i', async (headDim) => {
    await checkCase(cpu({ seqlenQ: 13, seqlenK: 29, headDim }));
    await checkCase(cpu({ seqlenQ: 13, seqlenK: 29, headDim, dtype: 'float16' }));
  });
});
