// fp8-hadamard.test.ts — quantizeFp8's hadamard option on the host: the rotation's definition and
// orthogonality, determinism, what it does to the e4m3 error, option validation and NaN/Inf rules.
import { flashAttention, quantizeFp8, tensor, toBfloat16, fromBfloat16 } from '../src-ts/index';
import { hadamardRotate, quantizeHost } from '../src-ts/fp8';
import { binding } from '../src-ts/binding';
import { probe } from '../src-ts/index';
import { makeRng, rejectsWith } from './helpers';
import { outlierValues, rotateRows, rotationMatrix } from './fp8-quant-helpers';

const DIMS = [64, 128, 256];

function dot(a: ArrayLike<number>, b: ArrayLike<number>, off: number, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += a[off + i] * b[off + i];
  return s;
}

describe('the hadamard rotation (R = H·diag(sign)/sqrt(d), float32)', () => {
  test.each(DIMS)('d %i: equals the documented matrix applied in float64 to within float32 rounding', (d) => {
    const rng = makeRng();
    const x = outlierValues(8 * d, rng);
    const ours = hadamardRotate(Float32Array.from(x), d);
    const ref = rotateRows(x, d);
    for (let i = 0; i < x.length; i++) {
      const row = Math.floor(i / d) * d;
      const norm = Math.sqrt(dot(x, x, row, d));
      expect(Math.abs(ours[i] - ref[i])).toBeLessThanOrEqual(1e-6 * norm + 1e-30);
    }
  });

  test.each(DIMS)('d %i: R is orthogonal (RᵀR = I) and every entry has magnitude 1/sqrt(d)', (d) => {
    const r = rotationMatrix(d);
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += r[j * d + a] * r[j * d + b];
        expect(Math.abs(s - (a === b ? 1 : 0))).toBeLessThan(1e-12);
      }
    }
    // The signs are randomized: not all +1 and not all -1.
    const firstRow = Array.from(r.subarray(0, d), Math.sign);
    expect(new Set(firstRow).size).toBe(2);
  });

  test.each(DIMS)('d %i: preserves norms and q·k (the same rotation of q and k) within float32 rounding', (d) => {
    const rng = makeRng();
    const q = outlierValues(16 * d, rng);
    const k = outlierValues(16 * d, rng);
    const rq = hadamardRotate(Float32Array.from(q), d);
    const rk = hadamardRotate(Float32Array.from(k), d);
    for (let row = 0; row < 16 * d; row += d) {
      const nq = Math.sqrt(dot(q, q, row, d));
      const nk = Math.sqrt(dot(k, k, row, d));
      expect(Math.abs(Math.sqrt(dot(rq, rq, row, d)) - nq)).toBeLessThanOrEqual(2e-6 * nq);
      expect(Math.abs(dot(rq, rk, row, d) - dot(q, k, row, d))).toBeLessThanOrEqual(2e-6 * nq * nk);
    }
  });

  test('spreads a single outlier evenly over all d coordinates', () => {
    const x = new Float32Array(128);
    x[37] = 100;
    const y = hadamardRotate(x, 128);
    for (const v of y) expect(Math.abs(Math.abs(v) - 100 / Math.sqrt(128))).toBeLessThan(1e-4);
  });
});

describe('quantizeFp8 with hadamard: true', () => {
  test('is the rotation followed by the plain quantization, for both layouts and granularities', async () => {
    const rng = makeRng();
    const [b, s, h, d] = [2, 5, 3, 64];
    const x = outlierValues(b * s * h * d, rng);
    for (const layout of ['bshd', 'bhsd'] as const) {
      for (const granularity of ['head', 'tensor'] as const) {
        const shape = layout === 'bshd' ? [b, s, h, d] : [b, h, s, d];
        const rot = await quantizeFp8(tensor(x, shape), { hadamard: true, layout, granularity });
        const plain = await quantizeFp8(tensor(hadamardRotate(Float32Array.from(x), d), shape), { layout, granularity });
        expect(Array.from(rot.data.data)).toEqual(Array.from(plain.data.data));
        expect(Array.from(rot.descale.data)).toEqual(Array.from(plain.descale.data));
        expect(rot.descale.shape).toEqual([b, h]);
      }
    }
  });

  test('is deterministic: q and k quantized in separate calls get the same rotation', async () => {
    const rng = makeRng();
    const x = tensor(outlierValues(3 * 7 * 2 * 128, rng), [3, 7, 2, 128]);
    const a = await quantizeFp8(x, { hadamard: true });
    const c = await quantizeFp8(x, { hadamard: true });
    expect(Array.from(a.data.data)).toEqual(Array.from(c.data.data));
    expect(Array.from(a.descale.data)).toEqual(Array.from(c.descale.data));
  });

  test('fp8 attention (CPU backend) with rotated q, k and plain v is closer to float64 attention on outlier data', async () => {
    const rng = makeRng();
    const [s, h, d] = [1024, 2, 128]; // the gain grows with seqlen (native/cpu/dev/fp8_error_study.cpp)
    const q = outlierValues(s * h * d, rng), k = outlierValues(s * h * d, rng), v = outlierValues(s * h * d, rng);
    const shape = [1, s, h, d];
    // float64 reference on the unquantized values
    const ref = new Float64Array(s * h * d);
    for (let hi = 0; hi < h; hi++) {
      for (let i = 0; i < s; i++) {
        const sc = new Float64Array(s);
        let m = -Infinity;
        for (let j = 0; j < s; j++) {
          sc[j] = 0;
          for (let c = 0; c < d; c++) sc[j] += q[(i * h + hi) * d + c] * k[(j * h + hi) * d + c];
          sc[j] /= Math.sqrt(d);
          m = Math.max(m, sc[j]);
        }
        let l = 0;
        for (let j = 0; j < s; j++) l += sc[j] = Math.exp(sc[j] - m);
        for (let j = 0; j < s; j++) {
          for (let c = 0; c < d; c++) ref[(i * h + hi) * d + c] += (sc[j] / l) * v[(j * h + hi) * d + c];
        }
      }
    }
    const rmse = async (hadamard: boolean): Promise<number> => {
      const Q = await quantizeFp8(tensor(q, shape), { hadamard });
      const K = await quantizeFp8(tensor(k, shape), { hadamard });
      const V = await quantizeFp8(tensor(v, shape));
      const r = await flashAttention(Q.data, K.data, V.data, { device: 'cpu', descale: { q: Q.descale, k: K.descale, v: V.descale } });
      const o = fromBfloat16(r.out.data as Uint16Array);
      let se = 0;
      for (let i = 0; i < o.length; i++) se += (o[i] - ref[i]) ** 2;
      return Math.sqrt(se / o.length);
    };
    const plain = await rmse(false);
    const rotated = await rmse(true);
    expect(rotated).toBeLessThan(0.8 * plain);
    expect(rotated).toBeLessThan(2e-2);
  });

  test('takes float16 and bfloat16 input (rotated after the exact conversion to float32)', async () => {
    const rng = makeRng();
    const x = outlierValues(4 * 2 * 256, rng);
    const bf = toBfloat16(x);
    const a = await quantizeFp8(tensor(bf, [1, 4, 2, 256], 'bfloat16'), { hadamard: true });
    const c = await quantizeFp8(tensor(fromBfloat16(bf), [1, 4, 2, 256]), { hadamard: true });
    expect(Array.from(a.data.data)).toEqual(Array.from(c.data.data));
  });

  test('a NaN spreads over its row (all 0x7f), an Inf saturates its row; neither sets the scale', () => {
    const d = 64;
    const x = Float32Array.from({ length: 4 * d }, (_, i) => Math.cos(i));
    x[3] = NaN;
    x[d + 5] = Infinity;
    const { bits, descale } = quantizeHost(x, [1, 4, 1, d], 'head', 'bshd', true);
    const clean = Float32Array.from(x);
    clean.fill(0, 0, 2 * d);
    const ref = quantizeHost(clean, [1, 4, 1, d], 'head', 'bshd', true);
    for (let c = 0; c < d; c++) {
      expect(bits[c]).toBe(0x7f);
      expect([0x7e, 0xfe]).toContain(bits[d + c]);
    }
    expect(Array.from(bits.subarray(2 * d))).toEqual(Array.from(ref.bits.subarray(2 * d)));
    expect(descale[0]).toBe(ref.descale[0]);
  });
});

describe('quantizeFp8 NaN code', () => {
  test('every NaN is written as 0x7f, whatever its sign', () => {
    const x = new Float32Array(16).fill(1);
    new Uint32Array(x.buffer)[2] = 0xffc00000; // -NaN
    x[3] = NaN;
    const { bits } = quantizeHost(x, [1, 2, 1, 8], 'head');
    expect(bits[2]).toBe(0x7f);
    expect(bits[3]).toBe(0x7f);
  });
});

describe('quantizeFp8 option validation', () => {
  const t = tensor(new Float32Array(2 * 3 * 96), [1, 2, 3, 96]);
  test.each([32, 96, 80, 512])('hadamard with headDim %i is an E_ARG naming the head dims it takes', async (d) => {
    const err = await rejectsWith(quantizeFp8(tensor(new Float32Array(2 * d), [1, 2, 1, d]), { hadamard: true }), 'E_ARG');
    expect(err.message).toMatch(new RegExp(`hadamard: true needs headDim 64, 128 or 256.*got headDim ${d}`));
  });
  test('headDim 96 without hadamard is fine', async () => {
    await expect(quantizeFp8(t, { hadamard: false })).resolves.toBeDefined();
  });
  test.each([['yes'], [1], [null]])('hadamard: %p is an E_ARG', async (v) => {
    const err = await rejectsWith(quantizeFp8(t, { hadamard: v as never }), 'E_ARG');
    expect(err.message).toMatch(/hadamard must be true or false/);
  });
  test('an unknown option names the valid ones, hadamard included', async () => {
    const err = await rejectsWith(quantizeFp8(t, { hadamrd: true } as never), 'E_ARG');
    expect(err.message).toMatch(/unknown option 'hadamrd'; valid options: granularity, layout, hadamard/);
  });
});

describe('the native device quantization without a GPU', () => {
  const req = (t: unknown) => ({ t, device: 0, layout: 'bshd', granularity: 'head', hadamard: false }) as never;
  const host = { data: new Float32Array(2 * 64), shape: [1, 2, 1, 64], dtype: 'float32' };
  test('the CPU-only build rejects it with E_NO_DEVICE; the CUDA build refuses host data with E_ARG', async () => {
    const cpuOnly = probe().build === 'cpu';
    await expect(binding().quantizeFp8(req(host))).rejects.toMatchObject(
      cpuOnly
        ? { code: 'E_NO_DEVICE', message: expect.stringMatching(/quantizeFp8: .*built without CUDA/) }
        : { code: 'E_ARG', message: expect.stringMatching(/t.data must be a DeviceBuffer/) },
    );
  });
  test('a malformed request is an error, never a crash', async () => {
    await expect(binding().quantizeFp8(req(undefined))).rejects.toMatchObject({ code: expect.stringMatching(/^E_(ARG|NO_DEVICE)$/) });
    await expect(binding().quantizeFp8({ t: host, device: 0, layout: 'bsdh', granularity: 'head', hadamard: false } as never)).rejects.toMatchObject({
      code: expect.stringMatching(/^E_(ARG|NO_DEVICE)$/),
    });
  });
});
