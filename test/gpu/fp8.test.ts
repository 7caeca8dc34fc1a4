// fp8.test.ts — the sm90 float8_e4m3 forward against the CPU backend on the same e4m3 bits and
// descales: every head dim, mask kind, GQA ratio and odd lengths, bf16 and fp16 output.
//
// The kernel stores P in e4m3 (3 mantissa bits) for the second product; the CPU backend keeps P in
// float32. So out may differ by up to P's rounding: |Δ| <= 2^-4 · max|v·descale_v| plus the output
// dtype's own rounding. LSE does not see P's rounding (l sums the unrounded p), but fp8 wgmma
// accumulates Q Kᵀ with fewer mantissa bits than float32 (about 14, the DeepSeek-V3 report's
// measurement on Hopper), so a score's error scales with the magnitude of its products: row i's
// LSE may differ by 1e-2 + 2^-10 · scale · descale_q · descale_k · ‖q_i‖₁ · max|k|, which bounds
// 2^-10 · scale · Σ_d |q_id k_jd| for every key j (a 2x margin over 8 k32 steps at 2^-14 each).
import { DeviceTensor, flashAttention, fromFloat8E4M3, quantizeFp8, tensor } from '../../src-ts/index';
import type { HostTensor } from '../../src-ts/index';
import { gpuSuite, MASKS, maskName } from './gpu-helpers';
import { countNaN, makeRng, maxAbs, values, type Rng } from '../helpers';

const gpu = gpuSuite();

interface Fp8Case {
  headDim: number;
  batch: number;
  seqlenQ: number;
  seqlenK: number;
  headsQ: number;
  headsKV: number;
  causal?: boolean;
  windowSize?: [number, number];
  outDtype?: 'bfloat16' | 'float16';
  granularity?: 'tensor' | 'head';
}

function normal(shape: number[], rng: Rng): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => rng.normal() * 2), shape);
}

async function checkFp8(c: Fp8Case): Promise<void> {
  gpu.report();
  const rng = makeRng();
  const ctx = `${JSON.stringify(c)} seed ${rng.seed}`;
  const granularity = c.granularity ?? 'head';
  const Q = await quantizeFp8(normal([c.batch, c.seqlenQ, c.headsQ, c.headDim], rng), { granularity });
  const K = await quantizeFp8(normal([c.batch, c.seqlenK, c.headsKV, c.headDim], rng), { granularity });
  const V = await quantizeFp8(normal([c.batch, c.seqlenK, c.headsKV, c.headDim], rng), { granularity });
  const opts = { causal: c.causal, windowSize: c.windowSize, outDtype: c.outDtype };
  const cpu = await flashAttention(Q.data, K.data, V.data, { ...opts, device: 'cpu', descale: { q: Q.descale, k: K.descale, v: V.descale } });

  const made: DeviceTensor[] = [];
  try {
    const up = async (t: HostTensor) => {
      const d = await DeviceTensor.from(t);
      made.push(d);
      return d;
    };
    const [dq, dk, dv] = [await up(Q.data), await up(K.data), await up(V.data)];
    const descale = {
      q: (await up(Q.descale)) as DeviceTensor<'float32'>,
      k: (await up(K.descale)) as DeviceTensor<'float32'>,
      v: (await up(V.descale)) as DeviceTensor<'float32'>,
    };
    const r = await flashAttention(dq, dk, dv, { ...opts, device: 'cuda', descale });
    if (!(r.out instanceof DeviceTensor) || !(r.lse instanceof DeviceTensor)) throw new Error('DeviceTensors in must give DeviceTensors out');
    made.push(r.out, r.lse);
    const out = await r.out.toHost();
    const lse = await r.lse.toHost();
    expect(out.dtype).toBe(c.outDtype ?? 'bfloat16');
    expect(out.shape).toEqual([c.batch, c.seqlenQ, c.headsQ, c.headDim]);
    const ours = values(out), ref = values(cpu.out);
    const vAbs = fromFloat8E4M3(V.data.data).reduce((m, x, i) => {
      const bh = Math.floor(i / (c.seqlenK * c.headsKV * c.headDim)) * c.headsKV + (Math.floor(i / c.headDim) % c.headsKV);
      return Math.max(m, Math.abs(x * V.descale.data[bh]));
    }, 0);
    const ulp = c.outDtype === 'float16' ? 2 ** -10 : 2 ** -7;
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const tol = 2 ** -4 * vAbs + ulp * Math.abs(ref[i]) + 1e-6;
      worst = Math.max(worst, Math.abs(ours[i] - ref[i]) / tol);
    }
    expect(countNaN(ours)).toBe(0);
    if (worst > 1) throw new Error(`${ctx}: out differs from the CPU backend by ${worst.toFixed(2)}x the tolerance (max |v| ${vAbs})`);
    const lo = lse.data as Float32Array, lr = cpu.lse.data as Float32Array;
    const qv = fromFloat8E4M3(Q.data.data), kv = fromFloat8E4M3(K.data.data);
    const kMax = new Float64Array(c.batch * c.headsKV); // max |k| per (batch, kv head), decoded
    kv.forEach((x, i) => {
      const bh = Math.floor(i / (c.seqlenK * c.headsKV * c.headDim)) * c.headsKV + (Math.floor(i / c.headDim) % c.headsKV);
      kMax[bh] = Math.max(kMax[bh], Math.abs(x));
    });
    const group = c.headsQ / c.headsKV, scale = 1 / Math.sqrt(c.headDim);
    const lseTol = (i: number) => {
      const row = i % c.seqlenQ, head = Math.floor(i / c.seqlenQ) % c.headsQ, b = Math.floor(i / (c.seqlenQ * c.headsQ));
      const base = ((b * c.seqlenQ + row) * c.headsQ + head) * c.headDim;
      let l1 = 0;
      for (let e = 0; e < c.headDim; e++) l1 += Math.abs(qv[base + e]);
      const bhk = b * c.headsKV + Math.floor(head / group);
      return 1e-2 + 2 ** -10 * scale * Q.descale.data[b * c.headsQ + head] * K.descale.data[bhk] * l1 * kMax[bhk];
    };
    for (let i = 0; i < lr.length; i++) {
      if (lr[i] === -Infinity) {
        if (lo[i] !== -Infinity) throw new Error(`${ctx}: lse[${i}] = ${lo[i]} for a row that sees no key`);
        const row = i % c.seqlenQ, head = Math.floor(i / c.seqlenQ) % c.headsQ, b = Math.floor(i / (c.seqlenQ * c.headsQ));
        const base = ((b * c.seqlenQ + row) * c.headsQ + head) * c.headDim;
        if (maxAbs(ours.subarray(base, base + c.headDim)) !== 0) throw new Error(`${ctx}: row ${i} sees no key but out is not 0`);
      } else if (!(Math.abs(lo[i] - lr[i]) <= lseTol(i))) {
        throw new Error(`${ctx}: lse[${i}] = ${lo[i]}, CPU ${lr[i]} (tolerance ${lseTol(i)})`);
      }
    }
  } finally {
    for (const t of made) t.dispose();
  }
}

describe('CUDA float8_e4m3 forward (sm90) against the CPU backend on the same bits', () => {
  it.each([64, 128, 256, 96, 32].flatMap((d) => MASKS.map((m) => [d, maskName(m), m] as const)))(
    'headDim %i, %s, GQA 2, odd lengths',
    async (headDim, _name, mask) => {
      await checkFp8({ headDim, batch: 2, seqlenQ: 97, seqlenK: 130, headsQ: 4, headsKV: 2, ...mask });
    },
  );
  it.each([
    [1, 1],
    [4, 4],
    [4, 1],
    [6, 3],
  ])('heads %i / KV heads %i (MHA, GQA, MQA), causal', async (headsQ, headsKV) => {
    await checkFp8({ headDim: 128, batch: 1, seqlenQ: 200, seqlenK: 333, headsQ, headsKV, causal: true });
  });
  it.each([
    [1, 1],
    [17, 17],
    [1000, 1000],
    [17, 1000],
    [1000, 17],
    [4097, 4097],
  ])('seqlenQ %i, seqlenK %i (tails, empty rows under causal)', async (seqlenQ, seqlenK) => {
    await checkFp8({ headDim: 64, batch: 1, seqlenQ, seqlenK, headsQ: 2, headsKV: 1, causal: seqlenQ !== seqlenK || seqlenQ === 17 });
  });
  it('float16 output, per-tensor descales, window [200, 0]', async () => {
    await checkFp8({ headDim: 256, batch: 2, seqlenQ: 300, seqlenK: 300, headsQ: 2, headsKV: 2, windowSize: [200, 0], outDtype: 'float16', granularity: 'tensor' });
  });
});
