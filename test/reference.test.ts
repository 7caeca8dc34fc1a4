// The float64 reference itself is checked against facts that do not depend on it: closed forms,
// and finite differences of the forward for the backward.
import { makeRng } from './helpers';
import { type RefDims, referenceBackward, referenceForward, visible } from './reference';

const dims = (sq: number, sk: number, hq = 1, hkv = 1, d = 4, batch = 1): RefDims => ({
  batch, seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hkv, headDim: d,
});

function random(n: number, rng = makeRng()): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

describe('float64 reference', () => {
  it('with identical keys averages the values and lse = s·q·k + log(n)', () => {
    const d = 4;
    const q = Float64Array.from([1, 2, 3, 4]);
    const k = new Float64Array(3 * d).fill(0.5);
    const v = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const { out, lse } = referenceForward(q, k, v, dims(1, 3), { scale: 1 });
    expect(Array.from(out)).toEqual([5, 6, 7, 8].map((x) => expect.closeTo(x, 12)));
    expect(lse[0]).toBeCloseTo(5 + Math.log(3), 12);
  });

  it('implements the window rule i + sk − sq − left ≤ j ≤ i + sk − sq + right, causal bottom-right', () => {
    expect(visible(0, 2, 3, 5, { causal: true })).toBe(true); // diag = 2
    expect(visible(0, 3, 3, 5, { causal: true })).toBe(false);
    expect(visible(4, 0, 5, 3, { causal: true })).toBe(true); // diag = 2
    expect(visible(1, 0, 5, 3, { causal: true })).toBe(false); // diag = -1
    expect(visible(5, 2, 10, 10, { windowSize: [3, 1] })).toBe(true);
    expect(visible(5, 1, 10, 10, { windowSize: [3, 1] })).toBe(false);
    expect(visible(5, 6, 10, 10, { windowSize: [3, 1] })).toBe(true);
    expect(visible(5, 7, 10, 10, { windowSize: [3, 1] })).toBe(false);
  });

  it('gives zeros and -Infinity for a row with no visible key', () => {
    const { out, lse } = referenceForward(random(8), random(4), random(4), dims(2, 1), { causal: true });
    expect(lse[0]).toBe(-Infinity);
    expect(Array.from(out.slice(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Number.isFinite(lse[1])).toBe(true);
  });

  it('backward matches finite differences of <dout, out(q, k, v)>', () => {
    const rng = makeRng();
    const dm = dims(3, 5, 2, 1, 4);
    const opts = { causal: true, windowSize: [2, -1] as [number, number], scale: 0.7 };
    const q = random(3 * 2 * 4, rng);
    const k = random(5 * 4, rng);
    const v = random(5 * 4, rng);
    const dout = random(3 * 2 * 4, rng);
    const loss = () => {
      const { out } = referenceForward(q, k, v, dm, opts);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * dout[i];
      return s;
    };
    const g = referenceBackward(dout, q, k, v, dm, opts);
    const h = 1e-6;
    for (const [x, grad] of [[q, g.dq], [k, g.dk], [v, g.dv]] as const) {
      for (let i = 0; i < x.length; i++) {
        const keep = x[i];
        x[i] = keep + h;
        const up = loss();
        x[i] = keep - h;
        const down = loss();
        x[i] = keep;
        expect(grad[i]).toBeCloseTo((up - down) / (2 * h), 6);
      }
    }
  });
});
