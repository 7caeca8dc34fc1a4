// The cases of the CUDA backward path against the float64 reference gradients, by the flash-attn rule, and
// the deterministic flag.
import { flashAttention, flashAttentionBackward } from '../../src-ts/index';
import { type Case, checkCase, makeCase, makeRng, randomTensor } from '../helpers';
import { DTYPES, type GpuSuite, headDimSuite } from './gpu-helpers';

const cuda = (c: Case): Case => ({ device: 'cuda', backward: true, lseTol: 1e-4, ...c });

export function headDims(gpu: GpuSuite, dtype: (typeof DTYPES)[number]): void {
  headDimSuite(gpu, 'backward', dtype, cuda);
}

/** 'long': the cases with a sequence over 2000 (their float64 references take the longest). */
export function seqlens(gpu: GpuSuite, which: 'short' | 'long'): void {
  const pick = (sq: number, sk: number) => (Math.max(sq, sk) > 2000) === (which === 'long');
  describe('CUDA backward, sequence lengths (seqlenQ ≠ seqlenK)', () => {
    it.each([
      [1, 1], [1, 17], [17, 1], [17, 1000], [1000, 17], [1000, 1000], [4097, 1000], [1000, 4097],
    ].filter(([sq, sk]) => pick(sq, sk)))('seqlenQ %i, seqlenK %i', async (seqlenQ, seqlenK) => {
      gpu.report();
      for (const causal of [false, true]) {
        await checkCase(cuda({ dtype: 'bfloat16', headDim: 64, seqlenQ, seqlenK, headsQ: 1, causal }));
      }
    });
  });
}

export function gqa(gpu: GpuSuite): void {
  describe('CUDA backward, grouped-query / multi-query attention (dk, dv summed over the group)', () => {
    it.each([
      [4, 4], [4, 2], [16, 2], [8, 1],
    ])('headsQ %i, headsKV %i', async (headsQ, headsKV) => {
      gpu.report();
      for (const causal of [false, true]) {
        await checkCase(cuda({ dtype: 'float16', headDim: 128, batch: 2, seqlenQ: 77, seqlenK: 150, headsQ, headsKV, causal }));
      }
    });
  });
}

export function windows(gpu: GpuSuite): void {
  describe('CUDA backward, windows and scale', () => {
    it.each([
      [[0, 0]], [[64, 0]], [[-1, 8]], [[50, -1]],
    ] as Array<[[number, number]]>)('window %p', async (windowSize) => {
      gpu.report();
      await checkCase(cuda({ dtype: 'bfloat16', headDim: 64, seqlenQ: 300, seqlenK: 257, headsQ: 2, windowSize }));
    });

    it('rows and keys that see nothing get zero gradients', async () => {
      gpu.report();
      const res = await checkCase(cuda({ dtype: 'bfloat16', headDim: 64, seqlenQ: 200, seqlenK: 64, headsQ: 1, windowSize: [3, 2] }));
      // Query i sees [i - 139, i - 134]: rows 0..133 see nothing.
      for (let i = 0; i < 134 * 64; i++) expect(res.dq!.data[i]).toBe(0);
    });

    it.each([0.1, 1.5])('softmaxScale %p', async (softmaxScale) => {
      gpu.report();
      await checkCase(cuda({ dtype: 'float16', headDim: 64, seqlenQ: 120, seqlenK: 90, softmaxScale }));
    });
  });
}

export function deterministic(gpu: GpuSuite): void {
  describe('CUDA backward, deterministic', () => {
    it.each(DTYPES)('%s: deterministic: true gives bit-identical dq, dk, dv across runs', async (dtype) => {
      gpu.report();
      const rng = makeRng();
      // GQA and long keys give many thread blocks adding into the same dq / dk rows.
      const d = makeCase({ dtype, headDim: 128, batch: 2, seqlenQ: 1500, seqlenK: 1500, headsQ: 8, headsKV: 2 }, rng);
      const dout = randomTensor([...d.q.shape], dtype, rng);
      const f = await flashAttention(d.q, d.k, d.v, { device: 'cuda', causal: true });
      const runs = [];
      for (let i = 0; i < 4; i++) {
        runs.push(await flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cuda', causal: true, deterministic: true }));
      }
      for (const r of runs.slice(1)) {
        expect(Buffer.compare(Buffer.from(r.dq.data.buffer), Buffer.from(runs[0].dq.data.buffer))).toBe(0);
        expect(Buffer.compare(Buffer.from(r.dk.data.buffer), Buffer.from(runs[0].dk.data.buffer))).toBe(0);
        expect(Buffer.compare(Buffer.from(r.dv.data.buffer), Buffer.from(runs[0].dv.data.buffer))).toBe(0);
      }
    });

    it('deterministic gradients also pass the error rule', async () => {
      gpu.report();
      await checkCase(cuda({ dtype: 'bfloat16', headDim: 64, seqlenQ: 400, seqlenK: 300, headsQ: 8, headsKV: 1, deterministic: true, causal: true }));
    });
  });
}
