// naive-dtype.ts — "standard attention done naively in a 16-bit dtype", the yardstick of the
// flash-attn error rule: max|ours − ref64| ≤ 2 · max|naive-in-dtype − ref64| + eps.
//
// It mimics what a bf16/fp16 framework computes (flash-attn's attention_ref with upcast=False):
// every tensor an op produces is rounded to the dtype (q·scale, the scores, P, the output, and in
// the backward dP, dS, dV, dK, dQ), while each op accumulates in float32-or-better internally.
import { type Format, formatOf, roundTo } from './numeric';
import { type RefDims, type RefOptions, visible } from './reference';

function at(b: number, s: number, h: number, seqlen: number, heads: number, d: number): number {
  return ((b * seqlen + s) * heads + h) * d;
}

interface Probs {
  /** Row-major (s_q × s_k) P rounded to the dtype, for one (b, h); 0 where masked. */
  p: Float64Array;
  /** q·scale rounded to the dtype, (s_q × d). */
  qs: Float64Array;
}

function probs(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  dims: RefDims,
  opts: RefOptions,
  fmt: Format,
  b: number,
  h: number,
): Probs {
  const { seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hkv, headDim: d } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const hk = Math.floor(h / (hq / hkv));
  const r = (x: number) => roundTo(x, fmt);
  const qs = new Float64Array(sq * d);
  for (let i = 0; i < sq; i++) {
    const qo = at(b, i, h, sq, hq, d);
    for (let x = 0; x < d; x++) qs[i * d + x] = r(q[qo + x] * scale);
  }
  const p = new Float64Array(sq * sk);
  const row = new Float64Array(sk);
  for (let i = 0; i < sq; i++) {
    let max = -Infinity;
    for (let j = 0; j < sk; j++) {
      if (!visible(i, j, sq, sk, opts)) {
        row[j] = -Infinity;
        continue;
      }
      const ko = at(b, j, hk, sk, hkv, d);
      let s = 0;
      for (let x = 0; x < d; x++) s += qs[i * d + x] * k[ko + x];
      row[j] = r(s);
      if (row[j] > max) max = row[j];
    }
    if (max === -Infinity) continue; // fully masked row: P = 0
    let sum = 0;
    for (let j = 0; j < sk; j++) if (row[j] !== -Infinity) sum += Math.fround(Math.exp(row[j] - max));
    for (let j = 0; j < sk; j++) {
      if (row[j] !== -Infinity) p[i * sk + j] = r(Math.fround(Math.exp(row[j] - max)) / sum);
    }
  }
  return { p, qs };
}

/** Forward output computed naively in `dtype` (values of the inputs are dtype values). */
export function naiveForwardInDtype(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: RefDims,
  opts: RefOptions,
  dtype: string,
): Float64Array {
  const fmt = formatOf(dtype);
  const { batch, seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hkv, headDim: d } = dims;
  const out = new Float64Array(batch * sq * hq * d);
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < hq; h++) {
      const hk = Math.floor(h / (hq / hkv));
      const { p } = probs(q, k, dims, opts, fmt, b, h);
      for (let i = 0; i < sq; i++) {
        acc.fill(0);
        for (let j = 0; j < sk; j++) {
          const pij = p[i * sk + j];
          if (pij === 0) continue;
          const vo = at(b, j, hk, sk, hkv, d);
          for (let x = 0; x < d; x++) acc[x] += pij * v[vo + x];
        }
        const oo = at(b, i, h, sq, hq, d);
        for (let x = 0; x < d; x++) out[oo + x] = roundTo(acc[x], fmt);
      }
    }
  }
  return out;
}

/** Backward of naiveForwardInDtype, the way autograd in `dtype` computes it. */
export function naiveBackwardInDtype(
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: RefDims,
  opts: RefOptions,
  dtype: string,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const fmt = formatOf(dtype);
  const r = (x: number) => roundTo(x, fmt);
  const { batch, seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hkv, headDim: d } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const group = hq / hkv;
  const dq = new Float64Array(batch * sq * hq * d);
  const dk = new Float64Array(batch * sk * hkv * d);
  const dv = new Float64Array(batch * sk * hkv * d);
  const dkHead = new Float64Array(sk * d);
  const dvHead = new Float64Array(sk * d);
  const ds = new Float64Array(sk);
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < hq; h++) {
      const hk = Math.floor(h / group);
      const { p, qs } = probs(q, k, dims, opts, fmt, b, h);
      dkHead.fill(0);
      dvHead.fill(0);
      for (let i = 0; i < sq; i++) {
        const oo = at(b, i, h, sq, hq, d);
        // dP = dO·Vᵀ (rounded), then the softmax backward in float32 from P and dP (rounded).
        let rowDot = 0;
        for (let j = 0; j < sk; j++) {
          const pij = p[i * sk + j];
          if (pij === 0) {
            ds[j] = 0;
            continue;
          }
          const vo = at(b, j, hk, sk, hkv, d);
          let s = 0;
          for (let x = 0; x < d; x++) s += dout[oo + x] * v[vo + x];
          ds[j] = r(s); // dP
          rowDot += pij * ds[j];
        }
        for (let j = 0; j < sk; j++) {
          const pij = p[i * sk + j];
          ds[j] = pij === 0 ? 0 : r(pij * (ds[j] - rowDot));
        }
        acc.fill(0);
        for (let j = 0; j < sk; j++) {
          const pij = p[i * sk + j];
          if (pij === 0 && ds[j] === 0) continue;
          const ko = at(b, j, hk, sk, hkv, d);
          for (let x = 0; x < d; x++) {
            dvHead[j * d + x] += pij * dout[oo + x];
            dkHead[j * d + x] += ds[j] * qs[i * d + x];
            acc[x] += ds[j] * k[ko + x];
          }
        }
        for (let x = 0; x < d; x++) dq[oo + x] = r(r(acc[x]) * scale);
      }
      // Per-head gradients are rounded, then the GQA group sum (repeat_interleave backward).
      for (let j = 0; j < sk; j++) {
        const ko = at(b, j, hk, sk, hkv, d);
        for (let x = 0; x < d; x++) {
          dk[ko + x] = r(dk[ko + x] + r(dkHead[j * d + x]));
          dv[ko + x] = r(dv[ko + x] + r(dvHead[j * d + x]));
        }
      }
    }
  }
  return { dq, dk, dv };
}
