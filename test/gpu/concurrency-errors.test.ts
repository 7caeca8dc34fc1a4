// Many GPU calls in flight at once; unsupported requests refused with the right code.
import { type AttentionResult, DeviceTensor, type HostTensor, flashAttention, tensor } from '../../src-ts/index';
import { binding } from '../../src-ts/binding';
import { type CaseData, makeCase, makeRng, rejectsWith, values } from '../helpers';
import { referenceForward } from '../reference';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();

describe('concurrent GPU calls', () => {
  it('32 host-tensor calls in flight equal the same calls made one at a time', async () => {
    gpu.report();
    const rng = makeRng();
    const cases: CaseData[] = [];
    for (let i = 0; i < 32; i++) {
      cases.push(makeCase({ dtype: i % 2 ? 'bfloat16' : 'float16', headDim: [64, 128][i % 2], batch: 1 + (i % 3),
        seqlenQ: 50 + 13 * i, seqlenK: 70 + 7 * i, headsQ: 4, headsKV: 2 }, rng));
    }
    const seq: Array<AttentionResult<HostTensor>> = [];
    for (const c of cases) seq.push(await flashAttention(c.q, c.k, c.v, { device: 'cuda', causal: true }));
    const par = await Promise.all(cases.map((c) => flashAttention(c.q, c.k, c.v, { device: 'cuda', causal: true })));
    par.forEach((r, i) => {
      expect(r.out.data).toEqual(seq[i].out.data);
      expect(r.lse.data).toEqual(seq[i].lse.data);
    });
  });

  it('32 DeviceTensor calls in flight equal sequential ones', async () => {
    gpu.report();
    const c = makeCase({ dtype: 'bfloat16', headDim: 128, batch: 2, seqlenQ: 300, seqlenK: 300, headsQ: 8, headsKV: 8 });
    const [q, k, v] = await Promise.all([c.q, c.k, c.v].map((t) => DeviceTensor.from(t)));
    const first = await flashAttention(q, k, v);
    const want = (await first.out.toHost()).data;
    const all = await Promise.all(Array.from({ length: 32 }, () => flashAttention(q, k, v)));
    for (const r of all) {
      expect((await r.out.toHost()).data).toEqual(want);
      r.out.dispose();
      r.lse.dispose();
    }
    for (const t of [q, k, v, first.out, first.lse]) t.dispose();
  });
});

describe('unsupported requests on the GPU', () => {
  it("float32 with device: 'cuda' is E_UNSUPPORTED (and 'auto' runs it on the CPU)", async () => {
    gpu.report();
    const c = makeCase({ headDim: 64, seqlenQ: 8 });
    const err = await rejectsWith(flashAttention(c.q, c.k, c.v, { device: 'cuda' }), 'E_UNSUPPORTED');
    expect(err.message).toMatch(/float32 runs on the CPU backend/);
    await flashAttention(c.q, c.k, c.v);
  });

  it('float8_e4m3: runs on Hopper when a kernel exists, else E_UNSUPPORTED', async () => {
    const r = gpu.report();
    const n = 1 * 64 * 2 * 64;
    const rng = makeRng();
    // Random fp8 values in about [-2, 2]: sign, exponent 5..8, any mantissa.
    const bytes = () => Uint8Array.from({ length: n }, () => (rng.next() < 0.5 ? 0x80 : 0) | ((5 + Math.floor(rng.next() * 4)) << 3) | Math.floor(rng.next() * 8));
    const q = tensor(bytes(), [1, 64, 2, 64], 'float8_e4m3');
    const k = tensor(bytes(), [1, 64, 2, 64], 'float8_e4m3');
    const v = tensor(bytes(), [1, 64, 2, 64], 'float8_e4m3');
    const sel = binding().select({ op: 'forward', device: 0, dtype: 'float8_e4m3', headDim: 64, seqlenQ: 64, seqlenK: 64, headsQ: 2, headsKV: 2, windowLeft: -1, windowRight: -1 });
    const hopper = r.devices[0].capability[0] === 9;
    if (!hopper || sel.path === 'none') {
      const err = await rejectsWith(flashAttention(q, k, v, { device: 'cuda' }), 'E_UNSUPPORTED');
      expect(err.message).toMatch(hopper ? /no CUDA kernel/ : /Hopper/);
      return;
    }
    const { out } = await flashAttention(q, k, v, { device: 'cuda' });
    expect(out.dtype).toBe('bfloat16');
    const dec = (t: typeof q) => Float64Array.from(t.data as Uint8Array, (b) => {
      const s = b & 0x80 ? -1 : 1; const e = (b >> 3) & 15; const m = b & 7;
      return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
    });
    const ref = referenceForward(dec(q), dec(k), dec(v), { batch: 1, seqlenQ: 64, seqlenK: 64, headsQ: 2, headsKV: 2, headDim: 64 });
    const got = values(out);
    let maxErr = 0;
    let maxRef = 0;
    for (let i = 0; i < got.length; i++) {
      expect(Number.isNaN(got[i])).toBe(false);
      maxErr = Math.max(maxErr, Math.abs(got[i] - ref.out[i]));
      maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
    }
    // fp8 keeps 3 mantissa bits (P is quantized too): a loose bound, but NaN or garbage fails.
    expect(maxErr).toBeLessThan(0.1 * maxRef + 0.05);
  });
});
