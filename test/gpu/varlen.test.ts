// flashAttentionVarlen on the CUDA build: the varlen kernels are not wired yet, so DeviceTensors
// and device: 'cuda' are refused with E_UNSUPPORTED (never a silent fallback), and host tensors run
// on the CPU backend with the results of the CPU build.
import { DeviceTensor, flashAttention, flashAttentionVarlen, flashAttentionVarlenBackward, tensor } from '../../src-ts/index';
import { makeRng, randomTensor, rejectsWith } from '../helpers';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();
const NOT_WIRED = /varlen runs on the CPU backend; the CUDA kernels are not wired yet/;

describe('CUDA build: flashAttentionVarlen', () => {
  const rng = makeRng();
  const q = randomTensor([7, 4, 64], 'bfloat16', rng);
  const k = randomTensor([9, 2, 64], 'bfloat16', rng);
  const v = randomTensor([9, 2, 64], 'bfloat16', rng);
  const seqs = { cuSeqlensQ: new Int32Array([0, 3, 7]), cuSeqlensK: new Int32Array([0, 4, 9]), causal: true };

  it('refuses DeviceTensors with E_UNSUPPORTED', async () => {
    gpu.report();
    const [dq, dk, dv] = await Promise.all([q, k, v].map((t) => DeviceTensor.from(t)));
    try {
      const e = await rejectsWith(flashAttentionVarlen(dq as never, dk as never, dv as never, seqs), 'E_UNSUPPORTED');
      expect(e.message).toMatch(NOT_WIRED);
      const cu = await DeviceTensor.from(tensor(new Int32Array([0, 3, 7]), [3]));
      const e2 = await rejectsWith(flashAttentionVarlen(q, k, v, { ...seqs, cuSeqlensQ: cu as never }), 'E_UNSUPPORTED');
      expect(e2.message).toMatch(NOT_WIRED);
      cu.dispose();
    } finally {
      for (const t of [dq, dk, dv]) t.dispose();
    }
  });

  it("refuses device: 'cuda' with E_UNSUPPORTED", async () => {
    gpu.report();
    const e = await rejectsWith(flashAttentionVarlen(q, k, v, { ...seqs, device: 'cuda' }), 'E_UNSUPPORTED');
    expect(e.message).toMatch(NOT_WIRED);
  });

  it('runs host tensors on the CPU backend, as flashAttention does each sequence on the CPU', async () => {
    gpu.report();
    const { out, lse } = await flashAttentionVarlen(q, k, v, seqs);
    const one = await flashAttention(
      tensor(q.data.slice(3 * 4 * 64) as Uint16Array, [1, 4, 4, 64], 'bfloat16'),
      tensor(k.data.slice(4 * 2 * 64) as Uint16Array, [1, 5, 2, 64], 'bfloat16'),
      tensor(v.data.slice(4 * 2 * 64) as Uint16Array, [1, 5, 2, 64], 'bfloat16'),
      { causal: true, device: 'cpu' },
    );
    expect(Array.from(out.data.slice(3 * 4 * 64))).toEqual(Array.from(one.out.data));
    expect(lse.data[3]).toBe(one.lse.data[0]);
    const g = await flashAttentionVarlenBackward(out, q, k, v, out, lse, seqs);
    expect(g.dk.shape).toEqual([9, 2, 64]);
  });
});
