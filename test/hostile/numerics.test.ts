// numerics.test.ts — hostile numbers on the CPU backend: NaN/Inf inputs propagate (as in
// flash-attn and PyTorch) and are never mistaken for masked keys; scales near the float32 limit
// are computed right or refused; the backward stays accurate at large input magnitudes.
import { type DType, type HostTensor, flashAttention, flashAttentionBackward, tensor } from '../../src-ts/index';
import { MAX_SOFTMAX_SCALE } from '../../src-ts/validate';
import { makeRng, randomTensor, values } from '../helpers';
import { referenceBackward, referenceForward, visible } from '../reference';

const CPU = { device: 'cpu' as const };
const shapeOf = (b: number, s: number, h: number, d: number) => [b, s, h, d];

function withValue(t: HostTensor, index: number, x: number): HostTensor {
  const data = t.data.slice();
  if (t.dtype === 'float32') data[index] = x;
  else throw new Error('withValue: float32 only');
  return tensor(data as Float32Array, [...t.shape], 'float32');
}

/** Row (b=0, i, h=0) of a [1, s, 1, d] tensor. */
const row = (a: ArrayLike<number>, i: number, d: number) => Array.from({ length: d }, (_, c) => a[i * d + c]);

describe('hostile numerics: NaN and Inf propagate (CPU)', () => {
  const s = 40, d = 16;
  const rng = makeRng();
  const q = randomTensor(shapeOf(1, s, 1, d), 'float32', rng);
  const k = randomTensor(shapeOf(1, s, 1, d), 'float32', rng);
  const v = randomTensor(shapeOf(1, s, 1, d), 'float32', rng);

  it('NaN in one q row: that row is NaN (out and lse), the others are unchanged', async () => {
    const clean = await flashAttention(q, k, v, CPU);
    const r = await flashAttention(withValue(q, 5 * d + 3, NaN), k, v, CPU);
    expect(row(r.out.data, 5, d).every(Number.isNaN)).toBe(true);
    expect(r.lse.data[5]).toBeNaN();
    for (const i of [0, 4, 6, s - 1]) expect(row(r.out.data, i, d)).toEqual(row(clean.out.data, i, d));
  });

  it('NaN in one k row: every row that sees that key is NaN, rows that do not are finite (causal)', async () => {
    const j = 17;
    const r = await flashAttention(q, withValue(k, j * d, NaN), v, { ...CPU, causal: true });
    for (let i = 0; i < s; i++) {
      const sees = visible(i, j, s, s, { causal: true });
      expect([i, row(r.out.data, i, d).every(Number.isNaN), Number.isNaN(r.lse.data[i])]).toEqual([i, sees, sees]);
    }
  });

  it('an infinite score: +Inf makes its row NaN (inf - inf), -Inf gives that key weight 0, as in PyTorch', async () => {
    const qv = values(q), kv = values(k);
    for (const [t, x] of [['q', Infinity], ['q', -Infinity], ['k', Infinity], ['k', -Infinity]] as const) {
      const r = t === 'q' ? await flashAttention(withValue(q, 2 * d, x), k, v, CPU) : await flashAttention(q, withValue(k, 0, x), v, CPU);
      for (let i = 0; i < s; i++) {
        // The infinite element meets the other operand's element 0 in the scores of row i.
        const scores = t === 'q' ? (i === 2 ? Array.from({ length: s }, (_, j) => x * kv[j * d]) : []) : [x * qv[i * d]];
        const plusInf = scores.some((y) => y === Infinity);
        const outRow = row(r.out.data, i, d);
        expect([t, x, i, outRow.some(Number.isNaN), Number.isNaN(r.lse.data[i])]).toEqual([t, x, i, plusInf, plusInf]);
        if (!plusInf) expect(Number.isFinite(r.lse.data[i])).toBe(true); // never the "sees no key" -inf
      }
    }
  });

  it('rows that see no key still give out 0 and lse -inf when k holds NaN', async () => {
    const kk = randomTensor(shapeOf(1, 8, 1, d), 'float32', rng);
    const r = await flashAttention(q, withValue(kk, 3, NaN), randomTensor(shapeOf(1, 8, 1, d), 'float32', rng), { ...CPU, causal: true });
    // s_q = 40 > s_k = 8, bottom-right causal: rows 0..31 see no key.
    for (let i = 0; i < 32; i++) {
      expect(row(r.out.data, i, d).every((y) => Object.is(y, 0))).toBe(true);
      expect(r.lse.data[i]).toBe(-Infinity);
    }
    for (let i = 32; i < s; i++) expect(Number.isNaN(r.lse.data[i])).toBe(true);
  });

  it('backward: NaN in q, k, dout or lse reaches the gradients it feeds (never zeros)', async () => {
    const f = await flashAttention(q, k, v, CPU);
    const dout = randomTensor(shapeOf(1, s, 1, d), 'float32', rng);
    const i = 9;
    const lseNaN = tensor(f.lse.data.slice(), [...f.lse.shape], 'float32');
    lseNaN.data[i] = NaN;
    const cases: Array<[string, () => Promise<{ dq: HostTensor; dk: HostTensor; dv: HostTensor }>]> = [
      ['lse', () => flashAttentionBackward(dout, q, k, v, f.out, lseNaN, CPU)],
      ['q', () => flashAttentionBackward(dout, withValue(q, i * d + 1, NaN), k, v, f.out, f.lse, CPU)],
      ['dout', () => flashAttentionBackward(withValue(dout, i * d + 1, NaN), q, k, v, f.out, f.lse, CPU)],
    ];
    for (const [what, call] of cases) {
      const g = await call();
      // Row i sees every key (no mask): its dq row and every dk/dv row it reaches are NaN.
      expect([what, row(g.dq.data, i, d).some(Number.isNaN)]).toEqual([what, true]);
      expect([what, Array.from({ length: s }, (_, j) => row(g.dv.data, j, d).some(Number.isNaN)).every(Boolean) || what === 'q']).toEqual([what, true]);
      expect([what, Array.from({ length: s }, (_, j) => row(g.dk.data, j, d).some(Number.isNaN)).every(Boolean)]).toEqual([what, true]);
    }
  });

  it('finite inputs never give NaN, forward or backward (large and tiny values, signed zeros)', async () => {
    const extremes = new Float32Array(s * d).map((_, n) => [1e-38, -1e-38, 0, -0, 3e4, -3e4, 1e-45][n % 7]);
    const x = tensor(extremes, shapeOf(1, s, 1, d));
    const f = await flashAttention(x, x, x, CPU);
    const g = await flashAttentionBackward(x, x, x, x, f.out, f.lse, CPU);
    for (const a of [f.out.data, f.lse.data, g.dq.data, g.dk.data, g.dv.data]) expect(a.some(Number.isNaN)).toBe(false);
  });
});

describe('hostile numerics: scales near the float32 limit (CPU)', () => {
  const s = 6, d = 8;
  const ones = (x: number, n = s) => tensor(new Float32Array(n * d).fill(x), shapeOf(1, n, 1, d));
  const v = tensor(Float32Array.from({ length: s * d }, (_, n) => Math.floor(n / d)), shapeOf(1, s, 1, d)); // v row j = j

  it('softmaxScale 2e38 with q = 0 gives mean(v) and lse = ln(seqlenK)', async () => {
    const r = await flashAttention(ones(0), ones(1), v, { ...CPU, softmaxScale: 2e38 });
    for (let i = 0; i < s; i++) {
      expect(row(r.out.data, i, d).every((y) => Math.abs(y - 2.5) < 1e-6)).toBe(true);
      expect(r.lse.data[i]).toBeCloseTo(Math.log(s), 6);
    }
  });

  it('scaled scores of 3.2e38 (finite, past 2.4e38) are computed right', async () => {
    // q.k = 8 for every key, times 4e37: every score is 3.2e38; softmax uniform.
    const r = await flashAttention(ones(1), ones(1), v, { ...CPU, softmaxScale: 4e37 });
    for (let i = 0; i < s; i++) expect(row(r.out.data, i, d).every((y) => Math.abs(y - 2.5) < 1e-6)).toBe(true);
    for (let i = 0; i < s; i++) expect(Math.abs(r.lse.data[i] / 3.2e38 - 1)).toBeLessThan(1e-6); // + ln 6 is below an ulp
  });

  it('scores of +-3.2e38 in one row: the -3.2e38 keys get weight 0 (no inf - inf)', async () => {
    const k = tensor(Float32Array.from({ length: s * d }, (_, n) => (Math.floor(n / d) % 2 ? -1 : 1)), shapeOf(1, s, 1, d));
    const r = await flashAttention(ones(1), k, v, { ...CPU, softmaxScale: 4e37 });
    // keys 0, 2, 4 (v = 0, 2, 4) share the weight: mean 2.
    for (let i = 0; i < s; i++) expect(row(r.out.data, i, d).every((y) => Math.abs(y - 2) < 1e-6)).toBe(true);
  });

  it(`|softmaxScale| above ${MAX_SOFTMAX_SCALE.toPrecision(4)} is refused up front with E_ARG`, async () => {
    for (const softmaxScale of [3e38, -3e38, 1e300]) {
      await expect(flashAttention(ones(0), ones(1), v, { ...CPU, softmaxScale })).rejects.toMatchObject({ code: 'E_ARG' });
    }
  });

  it('finite inputs whose scaled scores overflow float32 are refused (E_UNSUPPORTED), not answered with NaN', async () => {
    await expect(flashAttention(ones(1), ones(1), v, { ...CPU, softmaxScale: 1e38 })).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
      message: expect.stringMatching(/overflow float32/),
    });
    const big = ones(1e20);
    await expect(flashAttention(big, big, v, CPU)).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
  });
});

describe('hostile numerics: backward accuracy at large magnitudes (CPU)', () => {
  const dims = { batch: 1, seqlenQ: 24, seqlenK: 20, headsQ: 2, headsKV: 1, headDim: 32 };
  const shapeQ = shapeOf(dims.batch, dims.seqlenQ, dims.headsQ, dims.headDim);
  const shapeK = shapeOf(dims.batch, dims.seqlenK, dims.headsKV, dims.headDim);

  async function errors(dtype: DType, magnitude: number, causal: boolean) {
    const rng = makeRng();
    const [q, k, v, dout] = [shapeQ, shapeK, shapeK, shapeQ].map((sh) => randomTensor(sh, dtype, rng, magnitude));
    const f = await flashAttention(q, k, v, { ...CPU, causal });
    const g = await flashAttentionBackward(dout, q, k, v, f.out, f.lse, { ...CPU, causal });
    const ref = referenceBackward(values(dout), values(q), values(k), values(v), dims, { causal });
    const refF = referenceForward(values(q), values(k), values(v), dims, { causal });
    const maxAbs = (a: ArrayLike<number>) => {
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
      return m;
    };
    const err = (got: HostTensor, want: Float64Array, floor = 0) => {
      const gv = values(got);
      let e = 0;
      for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(gv[i] - want[i]));
      return { rel: e / Math.max(maxAbs(want), floor), got: gv, want };
    };
    const dvMax = maxAbs(ref.dv);
    return {
      out: err(f.out, refF.out),
      dq: err(g.dq, ref.dq, dvMax), // where P is one-hot, dq = dk = 0: measured against |dv|
      dk: err(g.dk, ref.dk, dvMax),
      dv: err(g.dv, ref.dv),
    };
  }

  it.each([
    [1e3, false],
    [1e3, true],
    [1e4, false],
    [1e4, true],
  ])('float32 at magnitude %d (causal %s): backward relative error <= 1e-4 against float64', async (m, causal) => {
    const e = await errors('float32', m, causal);
    for (const t of ['out', 'dq', 'dk', 'dv'] as const) {
      expect([t, e[t].got.some(Number.isNaN)]).toEqual([t, false]);
      expect([t, e[t].rel <= 1e-4 ? 'ok' : e[t].rel]).toEqual([t, 'ok']);
    }
  });

  it.each([1e2, 1e3, 1e4])('float16 at magnitude %d: no NaN, and Inf only where the true gradient overflows float16', async (m) => {
    const e = await errors('float16', m, false);
    for (const t of ['out', 'dq', 'dk', 'dv'] as const) {
      const { got, want } = e[t];
      for (let i = 0; i < got.length; i++) {
        if (Number.isNaN(got[i]) || (!Number.isFinite(got[i]) && Math.abs(want[i]) < 65520)) {
          throw new Error(`${t}[${i}] = ${got[i]}, float64 ${want[i]}`);
        }
      }
    }
  });
});
