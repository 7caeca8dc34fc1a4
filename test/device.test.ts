// Device selection and DeviceTensor on the machine `npm test` runs on. CI has no GPU (the CUDA
// build must then fall back to the CPU backend for 'auto' and refuse 'cuda'); on a GPU machine the
// same tests check the GPU answers instead.
import { planAttention } from '../src-ts/attention';
import { DeviceTensor, flashAttention, probe, tensor } from '../src-ts/index';
import { noGpuReason } from '../src-ts/probe';
import { makeCase, rejectsWith } from './helpers';

const report = probe();
const gpu = noGpuReason(report, 0) === '';

describe(`device selection (${gpu ? 'GPU present' : 'no usable GPU'})`, () => {
  const bf = makeCase({ seqlenQ: 16, headDim: 64, dtype: 'bfloat16' });
  const f32 = makeCase({ seqlenQ: 16, headDim: 64 });

  it("'auto' runs float32 on the CPU backend", () => {
    expect(planAttention(f32.q, f32.k, f32.v).backend).toBe('cpu');
  });

  it(`'auto' runs bfloat16 on ${gpu ? 'the GPU' : 'the CPU backend (and says why)'}`, async () => {
    const p = planAttention(bf.q, bf.k, bf.v);
    expect(p.backend).toBe(gpu ? 'cuda' : 'cpu');
    if (!gpu) expect(p.why).toMatch(/no usable GPU/);
    const { out } = await flashAttention(bf.q, bf.k, bf.v);
    expect(out.dtype).toBe('bfloat16');
  });

  it("'cpu' always runs the CPU backend", () => {
    expect(planAttention(bf.q, bf.k, bf.v, { device: 'cpu' }).backend).toBe('cpu');
  });

  it(`'cuda' ${gpu ? 'runs on the GPU' : 'fails with E_NO_DEVICE and says what probe saw'}`, async () => {
    if (gpu) {
      expect(planAttention(bf.q, bf.k, bf.v, { device: 'cuda' }).backend).toBe('cuda');
      return;
    }
    const err = await rejectsWith(flashAttention(bf.q, bf.k, bf.v, { device: 'cuda' }), 'E_NO_DEVICE');
    expect(err.message).toMatch(report.build === 'cpu' ? /CPU-only build/ : /no usable device/);
    expect(err.message).toMatch(/device: 'cpu' or 'auto'/);
  });

  it(`'cuda' with float32 fails with ${gpu ? 'E_UNSUPPORTED' : 'E_NO_DEVICE'}`, async () => {
    await rejectsWith(flashAttention(f32.q, f32.k, f32.v, { device: 'cuda' }), gpu ? 'E_UNSUPPORTED' : 'E_NO_DEVICE');
  });

  it('a deviceIndex with no device behind it fails with E_NO_DEVICE', async () => {
    await rejectsWith(flashAttention(bf.q, bf.k, bf.v, { device: 'cuda', deviceIndex: 64 }), 'E_NO_DEVICE');
  });

  it('float8_e4m3 runs on the CPU backend (bf16 out)', async () => {
    const f8 = (s: number[]) => tensor(new Uint8Array(s.reduce((a, b) => a * b)), s, 'float8_e4m3');
    const r = await flashAttention(f8([1, 4, 1, 16]), f8([1, 4, 1, 16]), f8([1, 4, 1, 16]), { device: 'cpu' });
    expect(r.out.dtype).toBe('bfloat16');
  });
});

describe('DeviceTensor', () => {
  const host = tensor(new Float32Array(16), [2, 8]);

  if (gpu) {
    it('round-trips host data (GPU present)', async () => {
      const t = await DeviceTensor.from(tensor(Float32Array.from({ length: 16 }, (_, i) => i), [2, 8]));
      expect(Array.from((await t.toHost()).data)).toEqual(Array.from({ length: 16 }, (_, i) => i));
      t.dispose();
      expect(t.disposed).toBe(true);
    });
    return;
  }

  it('cannot be created without a GPU (E_NO_DEVICE)', async () => {
    await rejectsWith(DeviceTensor.from(host), 'E_NO_DEVICE');
    await rejectsWith(() => DeviceTensor.empty([2, 8], 'bfloat16'), 'E_NO_DEVICE');
  });

  it('says why in the message', async () => {
    const err = await rejectsWith(() => DeviceTensor.empty([4], 'float16'), 'E_NO_DEVICE');
    expect(err.message).toMatch(/DeviceTensor needs a CUDA GPU, but/);
  });

  it('supports `using` (Symbol.dispose exists)', () => {
    expect(typeof Symbol.dispose).toBe('symbol');
    expect(typeof (DeviceTensor.prototype as unknown as Record<symbol, unknown>)[Symbol.dispose]).toBe('function');
  });
});
