// The GPU is there, the CUDA build sees it, and select() finds a kernel for every supported case.
import { planAttention } from '../../src-ts/attention';
import { binding } from '../../src-ts/binding';
import { makeCase } from '../helpers';
import { DTYPES, HEAD_DIMS, gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();

describe('GPU present', () => {
  it('probe() shows a usable CUDA device with kernel paths', () => {
    const r = gpu.report();
    expect(r.build).toBe('cuda');
    expect(r.devices.length).toBeGreaterThan(0);
    expect(r.devices[0].paths.length).toBeGreaterThan(0);
    expect(r.cudaError).toBe('');
    expect(r.cudaRuntimeVersion).toBeGreaterThan(0);
    expect(r.cudaDriverVersion).toBeGreaterThan(0);
  });

  it('reports sane device facts', () => {
    for (const d of gpu.report().devices) {
      expect(d.capability[0]).toBeGreaterThanOrEqual(8);
      expect(d.freeMemory).toBeGreaterThan(0);
      expect(d.freeMemory).toBeLessThanOrEqual(d.totalMemory);
    }
  });
});

describe('kernel selection', () => {
  it.each(DTYPES.flatMap((dtype) => HEAD_DIMS.flatMap((d) => (['forward', 'backward'] as const).map((op) => [op, dtype, d] as const))))(
    '%s %s headDim %i has a kernel at least that wide',
    (op, dtype, headDim) => {
      gpu.report();
      const sel = binding().select({
        op, device: 0, dtype, headDim, seqlenQ: 512, seqlenK: 512, headsQ: 8, headsKV: 2, windowLeft: -1, windowRight: 0,
      });
      expect(sel.path).not.toBe('none');
      expect(sel.kernelHeadDim).toBeGreaterThanOrEqual(headDim);
      expect(sel.kernelHeadDim % 8).toBe(0);
    },
  );

  it("routes 16-bit dtypes to the GPU under 'auto', and float32 to the CPU", () => {
    gpu.report();
    const bf = makeCase({ seqlenQ: 8, headDim: 64, dtype: 'bfloat16' });
    const f32 = makeCase({ seqlenQ: 8, headDim: 64 });
    expect(planAttention(bf.q, bf.k, bf.v).backend).toBe('cuda');
    expect(planAttention(f32.q, f32.k, f32.v).backend).toBe('cpu');
  });
});
