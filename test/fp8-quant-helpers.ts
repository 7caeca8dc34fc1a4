// fp8-quant-helpers.ts — what the quantizeFp8 tests (CPU and GPU) share: FlashAttention-3's outlier
// data and an independent float64 reference of the hadamard option's rotation.
import type { Rng } from './helpers';

/** N(0, 1) plus N(0, 100) added to 0.1% of the entries (the FlashAttention-3 outlier protocol). */
export function outlierValues(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() + (rng.next() < 1e-3 ? 10 * rng.normal() : 0));
}

// fmix32 in BigInt arithmetic (written apart from src-ts/fp8.ts's Math.imul version).
function fmix32Big(x: number): bigint {
  const M = (1n << 32n) - 1n;
  let h = BigInt(x) & M;
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M;
  h ^= h >> 16n;
  return h;
}

/** R = H·diag(sign)/sqrt(d) in float64, row-major: R[j·d + i] = sign_i·(-1)^popcount(i & j)/sqrt(d),
 * sign_i = -1 where bit 31 of fmix32(i + 0x2545f491) is set (the documented rule). */
export function rotationMatrix(d: number): Float64Array {
  const sign = Array.from({ length: d }, (_, i) => ((fmix32Big(i + 0x2545f491) >> 31n) & 1n ? -1 : 1));
  const r = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < d; i++) {
      let bits = i & j;
      let parity = 0;
      while (bits) {
        parity ^= bits & 1;
        bits >>= 1;
      }
      r[j * d + i] = (parity ? -1 : 1) * sign[i] / Math.sqrt(d);
    }
  }
  return r;
}

/** Rows of d values times Rᵀ (each row x -> R x), in float64. */
export function rotateRows(x: ArrayLike<number>, d: number, r = rotationMatrix(d)): Float64Array {
  const y = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += d) {
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += r[j * d + i] * x[base + i];
      y[base + j] = acc;
    }
  }
  return y;
}
