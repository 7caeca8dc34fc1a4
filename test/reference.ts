// reference.ts — an independent float64 reference for attention, written from the formulas and
// sharing no code with the backends: materialize the scores, mask, softmax, P·V; backward by the
// textbook formulas. Used as ground truth by every numerical test.

export interface RefDims {
  batch: number;
  seqlenQ: number;
  seqlenK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
}

export interface RefOptions {
  scale?: number;
  causal?: boolean;
  /** [left, right], -1 = unbounded. */
  windowSize?: [number, number];
}

/** Whether query i may attend to key j (bottom-right aligned causal; flash-attn windows). */
export function visible(i: number, j: number, sq: number, sk: number, opts: RefOptions): boolean {
  const diag = i + sk - sq; // the key aligned with query i
  if (opts.causal && j > diag) return false;
  const [left, right] = opts.windowSize ?? [-1, -1];
  if (left >= 0 && j < diag - left) return false;
  if (right >= 0 && j > diag + right) return false;
  return true;
}

// Element offset of (b, s, h, 0) in a contiguous (b, s, heads, d) tensor.
function at(b: number, s: number, h: number, seqlen: number, heads: number, d: number): number {
  return ((b * seqlen + s) * heads + h) * d;
}

export interface RefForward {
  out: Float64Array; // (b, s_q, h, d)
  lse: Float64Array; // (b, h, s_q), -Infinity for rows that see no key
}

/** Forward: out = softmax(scale·q kᵀ + mask) v per head; query head h uses KV head h / (h_q/h_kv). */
export function referenceForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: RefDims,
  opts: RefOptions = {},
): RefForward {
  const { batch, seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hkv, headDim: d } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const group = hq / hkv;
  const out = new Float64Array(batch * sq * hq * d);
  const lse = new Float64Array(batch * hq * sq);
  const scores = new Float64Array(sk);
  const mask = new Uint8Array(sk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < hq; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < sq; i++) {
        const qo = at(b, i, h, sq, hq, d);
        let max = -Infinity;
        for (let j = 0; j < sk; j++) {
          mask[j] = visible(i, j, sq, sk, opts) ? 1 : 0;
          if (!mask[j]) continue;
          const ko = at(b, j, hk, sk, hkv, d);
          let s = 0;
          for (let x = 0; x < d; x++) s += q[qo + x] * k[ko + x];
          scores[j] = s * scale;
          if (scores[j] > max) max = scores[j];
        }
        const li = (b * hq + h) * sq + i;
        if (max === -Infinity) {
          lse[li] = -Infinity; // no visible key: zeros out (already), lse -inf
          continue;
        }
        let sum = 0;
        for (let j = 0; j < sk; j++) if (mask[j]) sum += Math.exp(scores[j] - max);
        lse[li] = max + Math.log(sum);
        for (let j = 0; j < sk; j++) {
          if (!mask[j]) continue;
          const p = Math.exp(scores[j] - max) / sum;
          const vo = at(b, j, hk, sk, hkv, d);
          for (let x = 0; x < d; x++) out[qo + x] += p * v[vo + x];
        }
      }
    }
  }
  return { out, lse };
}

export interface RefGrads {
  dq: Float64Array; // like q
  dk: Float64Array; // like k, summed over the query heads of each KV head
  dv: Float64Array; // like v
}

/**
 * Backward by the textbook formulas, recomputing P in float64:
 *   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(P ∘ dP)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
 */
export function referenceBackward(
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: RefDims,
  opts: RefOptions = {},
): RefGrads {
  const { batch, seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hkv, headDim: d } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const group = hq / hkv;
  const dq = new Float64Array(batch * sq * hq * d);
  const dk = new Float64Array(batch * sk * hkv * d);
  const dv = new Float64Array(batch * sk * hkv * d);
  const p = new Float64Array(sk);
  const dp = new Float64Array(sk);
  const mask = new Uint8Array(sk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < hq; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < sq; i++) {
        const qo = at(b, i, h, sq, hq, d);
        let max = -Infinity;
        for (let j = 0; j < sk; j++) {
          mask[j] = visible(i, j, sq, sk, opts) ? 1 : 0;
          if (!mask[j]) continue;
          const ko = at(b, j, hk, sk, hkv, d);
          let s = 0;
          for (let x = 0; x < d; x++) s += q[qo + x] * k[ko + x];
          p[j] = s * scale;
          if (p[j] > max) max = p[j];
        }
        if (max === -Infinity) continue; // a row that sees nothing has zero gradient
        let sum = 0;
        for (let j = 0; j < sk; j++) if (mask[j]) sum += Math.exp(p[j] - max);
        let rowDot = 0;
        for (let j = 0; j < sk; j++) {
          if (!mask[j]) continue;
          p[j] = Math.exp(p[j] - max) / sum;
          const vo = at(b, j, hk, sk, hkv, d);
          let s = 0;
          for (let x = 0; x < d; x++) s += dout[qo + x] * v[vo + x];
          dp[j] = s;
          rowDot += p[j] * s;
          for (let x = 0; x < d; x++) dv[vo + x] += p[j] * dout[qo + x];
        }
        for (let j = 0; j < sk; j++) {
          if (!mask[j]) continue;
          const ds = p[j] * (dp[j] - rowDot) * scale;
          const ko = at(b, j, hk, sk, hkv, d);
          for (let x = 0; x < d; x++) {
            dq[qo + x] += ds * k[ko + x];
            dk[ko + x] += ds * q[qo + x];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
