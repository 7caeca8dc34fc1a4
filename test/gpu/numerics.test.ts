// numerics.test.ts — hostile numbers on the CUDA (sm80) kernels: NaN in q/k/v propagates where it
// reaches, forward and backward, and is never mistaken for a masked key; the backward's error at
// input magnitudes 1, 10 and 100 (bf16, fp16) stays within 2x of the same math done naively in
// the dtype (for fp16 at 100: fp16 without overflow, see below), against float64. The measured errors are printed as one table at the end.
import { type DType, type HostTensor, flashAttention, flashAttentionBackward, tensor } from '../../src-ts/index';
import { assertRule, countNaN, makeRng, maxAbs, maxAbsDiff, randomTensor, values } from '../helpers';
import { naiveBackwardInDtype } from '../naive-dtype';
import { FLOAT16 } from '../numeric';
import { referenceBackward, visible } from '../reference';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();
const CUDA = { device: 'cuda' as const };
const DTYPES: DType[] = ['bfloat16', 'float16'];
const NAN16 = 0x7fff; // a quiet NaN in both float16 and bfloat16

function withNaN(t: HostTensor, index: number): HostTensor {
  if (t.dtype === 'float32') {
    const data = (t.data as Float32Array).slice();
    data[index] = NaN;
    return tensor(data, [...t.shape], 'float32');
  }
  const data = (t.data as Uint16Array).slice();
  data[index] = NAN16;
  return tensor(data, [...t.shape], t.dtype as 'float16' | 'bfloat16');
}

const rowOf = (a: Float64Array, i: number, d: number) => Array.from(a.subarray(i * d, (i + 1) * d));

describe.each(DTYPES)('CUDA NaN propagation, %s', (dtype) => {
  for (const d of [64, 128]) {
    const s = 150;
    const rng = makeRng();
    const shape = [1, s, 1, d];
    const q = randomTensor(shape, dtype, rng);
    const k = randomTensor(shape, dtype, rng);
    const v = randomTensor(shape, dtype, rng);

    it(`headDim ${d}: NaN in one q row makes that row NaN and leaves the others as they were`, async () => {
      gpu.report();
      const clean = await flashAttention(q, k, v, CUDA);
      const r = await flashAttention(withNaN(q, 70 * d + 5), k, v, CUDA);
      const out = values(r.out), ref = values(clean.out);
      expect(rowOf(out, 70, d).every(Number.isNaN)).toBe(true);
      expect(r.lse.data[70]).toBeNaN();
      for (const i of [0, 69, 71, s - 1]) expect(rowOf(out, i, d)).toEqual(rowOf(ref, i, d));
    });

    it(`headDim ${d}, causal: NaN in k row j reaches exactly the rows that see key j`, async () => {
      gpu.report();
      const j = 77;
      const r = await flashAttention(q, withNaN(k, j * d + 1), v, { ...CUDA, causal: true });
      const out = values(r.out);
      for (let i = 0; i < s; i++) {
        const sees = visible(i, j, s, s, { causal: true });
        expect([i, rowOf(out, i, d).some(Number.isNaN), Number.isNaN(r.lse.data[i])]).toEqual([i, sees, sees]);
      }
    });

    it(`headDim ${d}: rows that see no key give 0 and -inf even with NaN in k`, async () => {
      gpu.report();
      const kk = withNaN(randomTensor([1, 40, 1, d], dtype, rng), 3);
      const r = await flashAttention(q, kk, randomTensor([1, 40, 1, d], dtype, rng), { ...CUDA, causal: true });
      const out = values(r.out);
      for (let i = 0; i < s - 40; i++) {
        expect(rowOf(out, i, d).every((x) => x === 0)).toBe(true);
        expect(r.lse.data[i]).toBe(-Infinity);
      }
      for (let i = s - 40; i < s; i++) expect(Number.isNaN(r.lse.data[i])).toBe(true);
    });

    it(`headDim ${d}: backward, a NaN lse row or a NaN in dout reaches dq and every dk/dv it feeds`, async () => {
      gpu.report();
      const f = await flashAttention(q, k, v, CUDA);
      const dout = randomTensor(shape, dtype, rng);
      const lse = tensor(f.lse.data.slice(), [...f.lse.shape], 'float32');
      lse.data[33] = NaN;
      for (const g of [
        await flashAttentionBackward(dout, q, k, v, f.out, lse, CUDA),
        await flashAttentionBackward(withNaN(dout, 33 * d), q, k, v, f.out, f.lse, CUDA),
      ]) {
        expect(rowOf(values(g.dq), 33, d).some(Number.isNaN)).toBe(true);
        const dk = values(g.dk);
        for (let j = 0; j < s; j++) expect([j, rowOf(dk, j, d).some(Number.isNaN)]).toEqual([j, true]);
        expect(countNaN(values(g.dq)) < s * d).toBe(true); // not everything: other dq rows stay finite
      }
    });
  }
});

// ---- backward error against float64 at input magnitudes 1, 10, 100 ------------------------------
interface Row {
  dtype: DType;
  magnitude: number;
  tensor: string;
  ours: number;
  naive: number;
}
const table: Row[] = [];

afterAll(() => {
  if (table.length === 0) return;
  const lines = table.map(
    (r) =>
      `${r.dtype.padEnd(9)} M=${String(r.magnitude).padEnd(4)} ${r.tensor.padEnd(3)} ours ${r.ours.toExponential(2)}  ` +
      `naive ${r.naive.toExponential(2)}  ratio ${(r.ours / Math.max(r.naive, 1e-300)).toFixed(2)}`,
  );
  console.log(`CUDA backward max |err| / max |ref| against float64:\n${lines.join('\n')}`);
});

describe.each(DTYPES)('CUDA backward at large input magnitudes, %s', (dtype) => {
  it.each([1, 10, 100])('magnitude %d: dq, dk, dv within 2x of naive-in-dtype against float64, no NaN', async (m) => {
    gpu.report();
    const dims = { batch: 1, seqlenQ: 97, seqlenK: 130, headsQ: 2, headsKV: 1, headDim: 64 };
    const rng = makeRng();
    const sq = [1, dims.seqlenQ, 2, 64], sk = [1, dims.seqlenK, 1, 64];
    const [q, k, v, dout] = [sq, sk, sk, sq].map((sh) => randomTensor(sh, dtype, rng, m));
    const f = await flashAttention(q, k, v, CUDA);
    const g = await flashAttentionBackward(dout, q, k, v, f.out, f.lse, CUDA);
    const args = [values(dout), values(q), values(k), values(v), dims, {}] as const;
    const ref = referenceBackward(...args);
    // The yardstick for float16 at magnitude 100 is float16 arithmetic without its overflow: naive
    // float16 itself rounds dP ~ 1e5 to Inf there, which would make any bound Inf. The gradients
    // are linear in dout and rounding commutes with a power-of-two scale, so the naive backward
    // runs on dout / 2^8 (dP, dS, gradients all in float16 range) and its gradients are scaled
    // back by 2^8: float16's 11-bit significand, unbounded exponent.
    const shift = dtype === 'float16' && m >= 100 ? 256 : 1;
    const naiveRaw = naiveBackwardInDtype(args[0].map((x) => x / shift), args[1], args[2], args[3], dims, {}, dtype);
    const naive = {
      dq: naiveRaw.dq.map((x) => x * shift),
      dk: naiveRaw.dk.map((x) => x * shift),
      dv: naiveRaw.dv.map((x) => x * shift),
    };
    for (const t of ['dq', 'dk', 'dv'] as const) {
      const ours = values(g[t]);
      // Where the float64 gradient itself overflows float16, Inf is the right float16 answer.
      const fits = (x: number) => dtype !== 'float16' || Math.abs(x) < FLOAT16.maxFinite + 16; // below: rounds to finite
      const keep = Array.from(ref[t].keys()).filter((i) => fits(ref[t][i]));
      const pick = (a: ArrayLike<number>) => Float64Array.from(keep, (i) => a[i]);
      const [o, r, n] = [pick(ours), pick(ref[t]), pick(naive[t])];
      const denom = Math.max(maxAbs(r), 1e-30);
      table.push({ dtype, magnitude: m, tensor: t, ours: maxAbsDiff(o, r).max / denom, naive: maxAbsDiff(n, r).max / denom });
      expect(countNaN(ours)).toBe(0);
      // The yardstick must itself be finite, or the 2x rule below bounds nothing.
      expect(n.every(Number.isFinite)).toBe(true);
      assertRule(t, o, r, n, dtype, `${dtype} magnitude ${m}`);
    }
  });
});
