// The cases of the CUDA forward path against the float64 reference, by the flash-attn error rule
// (max |ours − ref64| ≤ 2 × max |naive-in-dtype − ref64| + eps), with NaN-poisoned outputs.
import { flashAttention } from '../../src-ts/index';
import { type Case, checkCase, makeCase, maxAbsDiff, values } from '../helpers';
import { DTYPES, type GpuSuite, headDimSuite } from './gpu-helpers';

const cuda = (c: Case): Case => ({ device: 'cuda', lseTol: 1e-4, ...c });

export function headDims(gpu: GpuSuite, dtype: (typeof DTYPES)[number]): void {
  headDimSuite(gpu, 'forward', dtype, cuda);
}

/** 'long': the cases with a sequence over 2000 (their float64 references take the longest). */
export function seqlens(gpu: GpuSuite, which: 'short' | 'long'): void {
  const pick = (sq: number, sk: number) => (Math.max(sq, sk) > 2000) === (which === 'long');
  describe('CUDA forward, sequence lengths (seqlenQ ≠ seqlenK)', () => {
    it.each([
      [1, 1], [1, 17], [17, 1], [17, 1000], [1000, 17], [1000, 1000], [1, 4097], [4097, 17], [4097, 4097],
    ].filter(([sq, sk]) => pick(sq, sk)))('seqlenQ %i, seqlenK %i', async (seqlenQ, seqlenK) => {
      gpu.report();
      const big = seqlenQ * seqlenK > 1e6;
      for (const causal of [false, true]) {
        await checkCase(cuda({ dtype: 'bfloat16', headDim: 64, seqlenQ, seqlenK, headsQ: big ? 1 : 2, causal }));
      }
    });

    if (which === 'long') {
      it('fp16 at seqlen 4097 with headDim 128', async () => {
        gpu.report();
        await checkCase(cuda({ dtype: 'float16', headDim: 128, seqlenQ: 4097, seqlenK: 1000, headsQ: 1, causal: true }));
      });
    }
  });
}

export function gqa(gpu: GpuSuite): void {
  describe('CUDA forward, grouped-query / multi-query attention', () => {
    it.each([
      [4, 4], [4, 2], [16, 2], [8, 1],
    ])('headsQ %i, headsKV %i', async (headsQ, headsKV) => {
      gpu.report();
      for (const causal of [false, true]) {
        await checkCase(cuda({ dtype: 'bfloat16', headDim: 128, batch: 2, seqlenQ: 77, seqlenK: 150, headsQ, headsKV, causal }));
      }
    });
  });
}

export function windows(gpu: GpuSuite): void {
  describe('CUDA forward, windows and scale', () => {
    it.each([
      [[0, 0]], [[64, 0]], [[3, 100]], [[-1, 8]], [[50, -1]], [[5000, 5000]],
    ] as Array<[[number, number]]>)('window %p', async (windowSize) => {
      gpu.report();
      await checkCase(cuda({ dtype: 'float16', headDim: 64, seqlenQ: 300, seqlenK: 257, headsQ: 2, windowSize }));
    });

    it('rows that see no key give zeros and lse -Infinity (no NaN)', async () => {
      gpu.report();
      // seqlenQ 300 > seqlenK 100, causal: queries 0..199 see nothing.
      const res = await checkCase(cuda({ dtype: 'bfloat16', headDim: 128, seqlenQ: 300, seqlenK: 100, headsQ: 2, causal: true }));
      for (let h = 0; h < 2; h++) for (let i = 0; i < 200; i++) expect(res.lse.data[h * 300 + i]).toBe(-Infinity);
      await checkCase(cuda({ dtype: 'float16', headDim: 64, seqlenQ: 64, seqlenK: 200, windowSize: [3, 2], headsQ: 2 }));
      await checkCase(cuda({ dtype: 'float16', headDim: 64, seqlenQ: 200, seqlenK: 64, windowSize: [3, 2], headsQ: 2 }));
    });

    it.each([0.05, 0.5, 2])('softmaxScale %p', async (softmaxScale) => {
      gpu.report();
      await checkCase(cuda({ dtype: 'bfloat16', headDim: 96, seqlenQ: 100, seqlenK: 100, softmaxScale, causal: true }));
    });
  });
}

export function agreesWithCpu(gpu: GpuSuite): void {
  describe('CUDA forward agrees with the CPU backend', () => {
    it.each(DTYPES)('%s: GPU and CPU outputs are within the dtype rule of each other', async (dtype) => {
      gpu.report();
      const d = makeCase({ dtype, headDim: 128, batch: 2, seqlenQ: 200, seqlenK: 333, headsQ: 8, headsKV: 2 });
      const g = await flashAttention(d.q, d.k, d.v, { device: 'cuda', causal: true });
      const c = await flashAttention(d.q, d.k, d.v, { device: 'cpu', causal: true });
      const diff = maxAbsDiff(values(g.out), values(c.out));
      expect(diff.max).toBeLessThan(dtype === 'float16' ? 5e-3 : 3e-2);
      expect(maxAbsDiff(g.lse.data, c.lse.data).max).toBeLessThan(1e-3);
    });
  });
}
