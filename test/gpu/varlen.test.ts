// flashAttentionVarlen / flashAttentionVarlenBackward on CUDA. On Hopper the forward is one launch
// of the sm90 kernel over every sequence's tiles (it reads the offsets); elsewhere, and for the
// backward, each packed sequence runs as a batch of one on the kernels the plan picks for it
// (native/varlen/varlen_cuda.h). Either way the packed result must be bit for bit what
// flashAttention gives that sequence alone on the GPU (the one launch splits each sequence's keys
// into the same blocks; the backward with deterministic: true); and it must match the CPU
// backend's varlen (the oracle) within the 16-bit tolerance. Sequences with no queries or no keys, GQA, masks, both dtypes, host tensors
// with device: 'cuda', and the refusal of device-side offsets.
import {
  DeviceTensor,
  flashAttention,
  flashAttentionBackward,
  flashAttentionVarlen,
  flashAttentionVarlenBackward,
  tensor,
  type HostTensor,
} from '../../src-ts/index';
import { binding } from '../../src-ts/binding';
import type { NativeSelectRequest } from '../../src-ts/binding';
import { makeRng, randomTensor, rejectsWith, values } from '../helpers';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();
type D16 = 'bfloat16' | 'float16';

interface VCase {
  dtype: D16;
  headsQ: number;
  headsKV: number;
  headDim: number;
  lensQ: number[];
  lensK: number[];
  causal?: boolean;
  windowSize?: [number, number];
}

const offsets = (lens: number[]) => Int32Array.from([0, ...lens.map((_, i) => lens.slice(0, i + 1).reduce((a, b) => a + b, 0))]);

/** Rows r0 .. r0 + n - 1 of a packed [total, heads, d] host tensor, as a [1, n, heads, d] tensor. */
function rows(t: HostTensor, r0: number, n: number): HostTensor {
  const [, h, d] = t.shape;
  const data = (t.data as Uint16Array).slice(r0 * h * d, (r0 + n) * h * d);
  return tensor(data, [1, n, h, d], t.dtype as D16);
}

function sameBits(name: string, a: ArrayLike<number>, b: ArrayLike<number>, ctx: string): void {
  for (let i = 0; i < b.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      throw new Error(`${name} [${ctx}] at ${i}: packed ${a[i]}, alone ${b[i]}`);
    }
  }
}

function close(name: string, gpuV: ArrayLike<number>, cpuV: ArrayLike<number>, ctx: string, tol: number): void {
  let scale = 1;
  for (let i = 0; i < cpuV.length; i++) if (Number.isFinite(cpuV[i])) scale = Math.max(scale, Math.abs(cpuV[i]));
  for (let i = 0; i < cpuV.length; i++) {
    const ok = cpuV[i] === -Infinity ? gpuV[i] === -Infinity : Math.abs(gpuV[i] - cpuV[i]) <= tol * scale;
    if (!ok) throw new Error(`${name} [${ctx}] at ${i}: gpu ${gpuV[i]}, cpu ${cpuV[i]}`);
  }
}

/** The plan's question for one sequence of case `c` alone, as flashAttention() asks it. */
function selectOf(c: VCase, sq: number, sk: number): NativeSelectRequest {
  const [wl, wr] = c.windowSize ?? [-1, c.causal ? 0 : -1];
  return {
    op: 'forward', device: 0, dtype: c.dtype, headDim: c.headDim, seqlenQ: sq, seqlenK: sk, headsQ: c.headsQ,
    headsKV: c.headsKV, windowLeft: wl, windowRight: wr, batch: 1,
  };
}

async function onDevice<T>(hosts: HostTensor[], fn: (d: DeviceTensor[]) => Promise<T>): Promise<T> {
  const made: DeviceTensor[] = [];
  try {
    for (const h of hosts) made.push(await DeviceTensor.from(h));
    return await fn(made);
  } finally {
    for (const t of made) t.dispose();
  }
}

/** Fresh random packed inputs of a case, its offsets and its options. */
function inputs(c: VCase) {
  gpu.report();
  const rng = makeRng();
  const ctx = `${JSON.stringify(c)} seed ${rng.seed}`;
  const tq = c.lensQ.reduce((a, b) => a + b, 0), tk = c.lensK.reduce((a, b) => a + b, 0);
  const q = randomTensor([tq, c.headsQ, c.headDim], c.dtype, rng);
  const k = randomTensor([tk, c.headsKV, c.headDim], c.dtype, rng);
  const v = randomTensor([tk, c.headsKV, c.headDim], c.dtype, rng);
  const cuQ = offsets(c.lensQ), cuK = offsets(c.lensK);
  const mask = { ...(c.causal ? { causal: true } : {}), ...(c.windowSize ? { windowSize: c.windowSize } : {}) };
  return { rng, ctx, tq, tk, q, k, v, cuQ, cuK, mask, seqs: { cuSeqlensQ: cuQ, cuSeqlensK: cuK, ...mask } };
}

async function check(c: VCase): Promise<void> {
  const { rng, ctx, tq, q, k, v, cuQ, cuK, mask, seqs } = inputs(c);
  const dout = randomTensor([tq, c.headsQ, c.headDim], c.dtype, rng);

  // Packed, on the GPU (DeviceTensors): forward, then the deterministic backward from its out/lse.
  const g = await onDevice([q, k, v, dout], async ([dq_, dk_, dv_, ddo]) => {
    const f = await flashAttentionVarlen(dq_, dk_, dv_, seqs);
    try {
      const b = await flashAttentionVarlenBackward(ddo, dq_, dk_, dv_, f.out, f.lse, { ...seqs, deterministic: true });
      try {
        return {
          out: await f.out.toHost(), lse: await f.lse.toHost(),
          dq: await b.dq.toHost(), dk: await b.dk.toHost(), dv: await b.dv.toHost(),
        };
      } finally {
        for (const t of [b.dq, b.dk, b.dv]) t.dispose();
      }
    } finally {
      f.out.dispose();
      f.lse.dispose();
    }
  });
  const [out, lse, dq, dk, dv] = [g.out, g.lse, g.dq, g.dk, g.dv].map(values);
  const hd = c.headsQ * c.headDim, hkd = c.headsKV * c.headDim;

  // Each sequence alone on the GPU: the same bits.
  for (let b = 0; b < c.lensQ.length; b++) {
    const [sq, sk, q0, k0] = [c.lensQ[b], c.lensK[b], cuQ[b], cuK[b]];
    if (sq === 0 || sk === 0) {
      // No kernel runs: out 0 and lse -inf for queries with no key; zero gradients.
      for (let i = q0 * hd; i < (q0 + sq) * hd; i++) if (out[i] !== 0 || dq[i] !== 0) throw new Error(`empty side, seq ${b} [${ctx}]`);
      for (let h = 0; h < c.headsQ; h++) for (let i = 0; i < sq; i++) if (lse[h * tq + q0 + i] !== -Infinity) throw new Error(`lse of seq ${b} [${ctx}]`);
      for (let i = k0 * hkd; i < (k0 + sk) * hkd; i++) if (dk[i] !== 0 || dv[i] !== 0) throw new Error(`dk/dv of seq ${b} [${ctx}]`);
      continue;
    }
    const one = [rows(q, q0, sq), rows(k, k0, sk), rows(v, k0, sk), rows(dout, q0, sq)];
    const alone = await onDevice(one, async ([aq, ak, av, ado]) => {
      const f = await flashAttention(aq, ak, av, mask);
      const bw = await flashAttentionBackward(ado, aq, ak, av, f.out, f.lse, { ...mask, deterministic: true });
      const r = { out: await f.out.toHost(), lse: await f.lse.toHost(), dq: await bw.dq.toHost(), dk: await bw.dk.toHost(), dv: await bw.dv.toHost() };
      for (const t of [f.out, f.lse, bw.dq, bw.dk, bw.dv]) t.dispose();
      return r;
    });
    const tag = `${ctx} seq ${b}`;
    // A sequence of at most 16 queries runs alone on the split-KV decode kernels (the plan's
    // decode route), a different kernel than the packed launch: the same values within rounding,
    // not the same bits (its backward then reads that forward's out and lse).
    const viaDecode = binding().select(selectOf(c, sq, sk)).decode === true;
    const same = viaDecode
      ? (name: string, a: ArrayLike<number>, bb: ArrayLike<number>, t: string) => close(name, a, bb, t, name === 'lse' ? 1e-5 : 2e-2)
      : sameBits;
    same('out', out.subarray(q0 * hd, (q0 + sq) * hd), values(alone.out), tag);
    same('dq', dq.subarray(q0 * hd, (q0 + sq) * hd), values(alone.dq), tag);
    same('dk', dk.subarray(k0 * hkd, (k0 + sk) * hkd), values(alone.dk), tag);
    same('dv', dv.subarray(k0 * hkd, (k0 + sk) * hkd), values(alone.dv), tag);
    const al = values(alone.lse);
    for (let h = 0; h < c.headsQ; h++) same('lse', lse.subarray(h * tq + q0, h * tq + q0 + sq), al.subarray(h * sq, (h + 1) * sq), tag);
  }

  // The CPU backend's varlen on the same 16-bit inputs (computed in float32 there).
  const cf = await flashAttentionVarlen(q, k, v, { ...seqs, device: 'cpu' });
  const cb = await flashAttentionVarlenBackward(dout, q, k, v, cf.out, cf.lse, { ...seqs, device: 'cpu' });
  close('out', out, values(cf.out), ctx, 2e-2);
  close('lse', lse, values(cf.lse), ctx, 1e-2);
  close('dq', dq, values(cb.dq), ctx, 5e-2);
  close('dk', dk, values(cb.dk), ctx, 5e-2);
  close('dv', dv, values(cb.dv), ctx, 5e-2);
}

/** The forward alone (DeviceTensors; outputs poisoned with NaN first, test/helpers.ts) against the
 * CPU backend: every packed row, lse [headsQ, totalQ] element by element, empty rows exactly. */
async function checkForward(c: VCase): Promise<void> {
  const { ctx, tq, q, k, v, seqs } = inputs(c);
  const g = await onDevice([q, k, v], async ([a, b, d]) => {
    const f = await flashAttentionVarlen(a, b, d, seqs);
    try {
      return { out: values(await f.out.toHost()), lse: values(await f.lse.toHost()) };
    } finally {
      f.out.dispose();
      f.lse.dispose();
    }
  });
  const cf = await flashAttentionVarlen(q, k, v, { ...seqs, device: 'cpu' });
  const [co, cl] = [values(cf.out), values(cf.lse)];
  expect(g.lse.length).toBe(c.headsQ * tq);
  for (let i = 0; i < cl.length; i++) {
    if (cl[i] === -Infinity && g.lse[i] !== -Infinity) throw new Error(`lse ${i} of an empty row: ${g.lse[i]} [${ctx}]`);
  }
  for (let i = 0; i < co.length; i++) if (Number.isNaN(g.out[i])) throw new Error(`out ${i} not written [${ctx}]`);
  close('out', g.out, co, ctx, 2e-2);
  close('lse', g.lse, cl, ctx, 1e-2);
}

const MIXED_Q = [0, 1, 17, 300, 129, 1000, 0, 64, 128, 255, 2];
const MIXED_K = [5, 1, 17, 300, 0, 1037, 0, 64, 128, 700, 1];

describe('CUDA flashAttentionVarlen forward: one launch over every sequence, as the CPU backend', () => {
  const masks: Array<Pick<VCase, 'causal' | 'windowSize'>> = [{}, { causal: true }, { windowSize: [17, 5] }, { windowSize: [64, 0] }, { windowSize: [-1, 30] }];
  for (const m of masks) {
    it(`bf16 d128 GQA 8/2, lengths with 0 and 1 on either side, ${JSON.stringify(m)}`, () =>
      checkForward({ dtype: 'bfloat16', headsQ: 8, headsKV: 2, headDim: 128, lensQ: MIXED_Q, lensK: MIXED_K, ...m }));
  }
  it('fp16 d64 MQA, causal self-attention over the bench mix scaled down (16 sequences 4 … 256)', () => {
    const lens = [256, 192, 128, 128, 64, 64, 64, 32, 32, 20, 16, 8, 8, 4, 4, 4];
    return checkForward({ dtype: 'float16', headsQ: 4, headsKV: 1, headDim: 64, lensQ: lens, lensK: lens, causal: true });
  });
  it('bf16 d256 and fp16 d96 (on the d128 kernel), no mask', async () => {
    await checkForward({ dtype: 'bfloat16', headsQ: 2, headsKV: 2, headDim: 256, lensQ: [700, 0, 3], lensK: [129, 40, 3] });
    await checkForward({ dtype: 'float16', headsQ: 6, headsKV: 3, headDim: 96, lensQ: [1, 200, 77], lensK: [300, 1, 77] });
  });
  it('300 sequences (more than one launch schedules: each sequence on its own) give the same answer', () => {
    const lensQ = Array.from({ length: 300 }, (_, i) => (i * 37) % 23);
    const lensK = Array.from({ length: 300 }, (_, i) => (i * 53) % 29);
    return checkForward({ dtype: 'bfloat16', headsQ: 4, headsKV: 2, headDim: 64, lensQ, lensK, causal: true });
  });
});

describe('CUDA flashAttentionVarlen: each sequence as flashAttention gives it alone, and as the CPU backend', () => {
  it('bf16 d128, GQA 8/2, causal self-attention, lengths 5, 0, 130, 1, 300', () =>
    check({ dtype: 'bfloat16', headsQ: 8, headsKV: 2, headDim: 128, lensQ: [5, 0, 130, 1, 300], lensK: [5, 0, 130, 1, 300], causal: true }));
  it('fp16 d64, cross lengths with an empty key side, window [17, 5]', () =>
    check({ dtype: 'float16', headsQ: 4, headsKV: 4, headDim: 64, lensQ: [3, 77, 40, 0], lensK: [10, 0, 200, 64], windowSize: [17, 5] }));
  it('bf16 d256, MQA, no mask, 16 sequences 1 … 600', () =>
    check({ dtype: 'bfloat16', headsQ: 4, headsKV: 1, headDim: 256,
      lensQ: Array.from({ length: 16 }, (_, i) => 1 + ((i * 37) % 600)), lensK: Array.from({ length: 16 }, (_, i) => 1 + ((i * 53) % 600)) }));

  it("host tensors with device: 'cuda' run on the GPU with the DeviceTensor call's results", async () => {
    gpu.report();
    const rng = makeRng();
    const q = randomTensor([9, 2, 64], 'bfloat16', rng);
    const k = randomTensor([12, 2, 64], 'bfloat16', rng);
    const v = randomTensor([12, 2, 64], 'bfloat16', rng);
    const seqs = { cuSeqlensQ: new Int32Array([0, 4, 9]), cuSeqlensK: new Int32Array([0, 7, 12]), causal: true };
    const h = await flashAttentionVarlen(q, k, v, { ...seqs, device: 'cuda' });
    const d = await onDevice([q, k, v], async ([a, b, c]) => {
      const r = await flashAttentionVarlen(a, b, c, seqs);
      const o = { out: await r.out.toHost(), lse: await r.lse.toHost() };
      r.out.dispose();
      r.lse.dispose();
      return o;
    });
    sameBits('out', values(h.out), values(d.out), 'host vs device');
    sameBits('lse', values(h.lse), values(d.lse), 'host vs device');
  });

  it('refuses offsets given as a DeviceTensor (E_UNSUPPORTED: they plan the launches on the host)', async () => {
    gpu.report();
    const rng = makeRng();
    const q = randomTensor([7, 2, 64], 'bfloat16', rng);
    await onDevice([q, tensor(new Int32Array([0, 3, 7]), [3])], async ([dq_, cu]) => {
      const e = await rejectsWith(
        flashAttentionVarlen(dq_, dq_, dq_, { cuSeqlensQ: cu as never, cuSeqlensK: new Int32Array([0, 3, 7]) }),
        'E_UNSUPPORTED',
      );
      expect(e.message).toMatch(/cuSeqlensQ is a DeviceTensor: the offsets must be a host int32 tensor/);
    });
  });
});
