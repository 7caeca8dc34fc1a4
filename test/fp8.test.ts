import { flashAttention, fromFloat8E4M3, quantizeFp8, tensor, toFloat8E4M3, fromBfloat16 } from '../src-ts/index';

// Independent decoder: the OCP E4M3FN definition, in float64.
function ref(bits: number): number {
  const s = bits & 0x80 ? -1 : 1, e = (bits >> 3) & 15, m = bits & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}
const codes = Array.from({ length: 256 }, (_, i) => i);

describe('float8_e4m3 codecs', () => {
  test('every one of the 256 codes decodes to its OCP value and encodes back to itself', () => {
    const vals = fromFloat8E4M3(Uint8Array.from(codes));
    for (const c of codes) {
      if (Number.isNaN(ref(c))) expect(Number.isNaN(vals[c])).toBe(true);
      else expect(vals[c]).toBe(ref(c));
    }
    const back = toFloat8E4M3(vals);
    for (const c of codes) expect((c & 0x7f) === 0x7f ? back[c] & 0x7f : back[c]).toBe((c & 0x7f) === 0x7f ? 0x7f : c); // NaN stays NaN
  });
  test('midpoints between neighbours round to the even code; just off them to the nearest', () => {
    for (let c = 0; c < 0x7e; c++) {
      const mid = (ref(c) + ref(c + 1)) / 2;
      const even = c % 2 === 0 ? c : c + 1;
      expect(toFloat8E4M3([mid])[0]).toBe(even);
      expect(toFloat8E4M3([-mid])[0]).toBe(0x80 | even);
      expect(toFloat8E4M3([mid * (1 - 2 ** -20)])[0]).toBe(c);
      expect(toFloat8E4M3([mid * (1 + 2 ** -20)])[0]).toBe(c + 1);
    }
  });
  test('saturates to ±448 (Inf too), NaN stays NaN, -0 stays -0, tiny values go to ±0', () => {
    expect(Array.from(toFloat8E4M3([448, 460, 464, 500, 1e30, Infinity, -Infinity, -1e9]))).toEqual([0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0xfe, 0xfe]);
    expect(toFloat8E4M3([NaN])[0] & 0x7f).toBe(0x7f);
    expect(Array.from(toFloat8E4M3([-0, 2 ** -11, -(2 ** -10), 2 ** -10 * 1.01, 2 ** -9]))).toEqual([0x80, 0, 0x80, 1, 1]);
  });
});

describe('quantizeFp8', () => {
  test('per head: amax maps to 448 and value ≈ decode(data) · descale', async () => {
    const x = Float32Array.from({ length: 2 * 3 * 2 * 8 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    const { data, descale } = await quantizeFp8(tensor(x, [2, 3, 2, 8]), { granularity: 'head' });
    expect(descale.shape).toEqual([2, 2]);
    const dec = fromFloat8E4M3(data.data);
    for (let i = 0; i < x.length; i++) {
      const bh = Math.floor(i / 48) * 2 + (Math.floor(i / 8) % 2);
      expect(Math.abs(dec[i] * descale.data[bh] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) / 16 + 2 ** -9 * descale.data[bh]);
    }
  });
});

describe('flashAttention with float8_e4m3 on the CPU', () => {
  test('matches a float64 reference on the decoded, descaled values (causal, GQA, seqlenQ != seqlenK)', async () => {
    const [b, sq, sk, h, hk, d] = [1, 3, 5, 4, 2, 8];
    const rnd = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 4 - 2);
    const Q = await quantizeFp8(tensor(rnd(b * sq * h * d), [b, sq, h, d]));
    const K = await quantizeFp8(tensor(rnd(b * sk * hk * d), [b, sk, hk, d]));
    const V = await quantizeFp8(tensor(rnd(b * sk * hk * d), [b, sk, hk, d]));
    const r = await flashAttention(Q.data, K.data, V.data, { causal: true, device: 'cpu', descale: { q: Q.descale, k: K.descale, v: V.descale } });
    expect(r.out.dtype).toBe('bfloat16');
    const out = fromBfloat16(r.out.data as Uint16Array);
    const q = fromFloat8E4M3(Q.data.data), k = fromFloat8E4M3(K.data.data), v = fromFloat8E4M3(V.data.data);
    for (let hi = 0; hi < h; hi++) {
      const kh = Math.floor(hi / (h / hk));
      for (let i = 0; i < sq; i++) {
        const s: number[] = [];
        for (let j = 0; j <= i + sk - sq; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[(i * h + hi) * d + c] * Q.descale.data[hi] * k[(j * hk + kh) * d + c] * K.descale.data[kh];
          s.push(dot / Math.sqrt(d));
        }
        const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), l = e.reduce((a, x) => a + x, 0);
        expect(r.lse.data[hi * sq + i]).toBeCloseTo(m + Math.log(l), 4);
        for (let c = 0; c < d; c++) {
          let o = 0;
          e.forEach((w, j) => (o += (w / l) * v[(j * hk + kh) * d + c] * V.descale.data[kh]));
          expect(Math.abs(out[(i * h + hi) * d + c] - o)).toBeLessThanOrEqual(Math.abs(o) / 128 + 1e-6);
        }
      }
    }
  });
  test('a descale of the wrong shape is an E_SHAPE FlashAttentionError', async () => {
    const t = tensor(new Uint8Array(16), [1, 1, 2, 8], 'float8_e4m3');
    await expect(flashAttention(t, t, t, { device: 'cpu', descale: { q: new Float32Array(3) } })).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});
