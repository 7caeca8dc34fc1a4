// The addon itself, called straight through binding() with no TypeScript validation in front:
// it writes every output element, and it rejects bad requests with a coded error, never a crash.
import type { NativeBackwardRequest, NativeDType, NativeForwardRequest, NativeTensorArg } from '../src-ts/binding';
import { binding } from '../src-ts/binding';
import { ERROR_CODES, toBfloat16, toFloat16 } from '../src-ts/index';
import { countNaN, makeRng, maxAbsDiff } from './helpers';

const b = () => binding();
const rng = makeRng();

function arr(n: number, dtype: NativeDType, fill?: 'nan'): NativeTensorArg['data'] {
  if (fill === 'nan') return dtype === 'float32' ? new Float32Array(n).fill(NaN) : new Uint16Array(n).fill(0xffff);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = rng.normal();
  return dtype === 'float32' ? f : dtype === 'float16' ? toFloat16(f) : toBfloat16(f);
}

interface Dims {
  b: number;
  sq: number;
  sk: number;
  hq: number;
  hkv: number;
  d: number;
}
const D: Dims = { b: 2, sq: 13, sk: 21, hq: 4, hkv: 2, d: 32 };

/** A forward request with its outputs given (written in place). */
type FullForwardRequest = NativeForwardRequest & { out: NativeTensorArg; lse: NativeTensorArg };
type FullBackwardRequest = NativeBackwardRequest & { dq: NativeTensorArg; dk: NativeTensorArg; dv: NativeTensorArg };

function fwdRequest(dims: Dims = D, dtype: NativeDType = 'float32'): FullForwardRequest {
  const { b: B, sq, sk, hq, hkv, d } = dims;
  const t = (shape: number[], fill?: 'nan'): NativeTensorArg => ({
    data: arr(shape.reduce((x, y) => x * y), dtype, fill),
    shape,
    dtype,
  });
  return {
    backend: 'cpu',
    device: 0,
    scale: 1 / Math.sqrt(d),
    windowLeft: -1,
    windowRight: -1,
    threads: 0,
    q: t([B, sq, hq, d]),
    k: t([B, sk, hkv, d]),
    v: t([B, sk, hkv, d]),
    out: t([B, sq, hq, d], 'nan'),
    lse: { data: new Float32Array(B * hq * sq).fill(NaN), shape: [B, hq, sq], dtype: 'float32' },
    naive: false,
  };
}

function bwdRequest(f: FullForwardRequest): FullBackwardRequest {
  const { naive: _naive, ...rest } = f;
  void _naive;
  const like = (t: NativeTensorArg, fill?: 'nan'): NativeTensorArg => ({
    data: arr((t.data as { length: number }).length, t.dtype, fill),
    shape: [...t.shape],
    dtype: t.dtype,
  });
  return { ...rest, dout: like(f.q), dq: like(f.q, 'nan'), dk: like(f.k, 'nan'), dv: like(f.v, 'nan'), deterministic: false };
}

/** NaN elements of a host tensor argument (16-bit NaN: all-ones exponent, non-zero mantissa). */
function nanCount(t: NativeTensorArg): number {
  const data = t.data as Float32Array | Uint16Array;
  if (t.dtype === 'float32') return countNaN(data);
  const [expMask, expShift] = t.dtype === 'float16' ? [0x7c00, 10] : [0x7f80, 7];
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if ((x & expMask) === expMask && (x & ((1 << expShift) - 1)) !== 0) n++;
  }
  return n;
}

/** Calls fn (which may throw or reject) and returns the error, or undefined if it succeeded. */
async function errorOf(fn: () => unknown): Promise<(Error & { code?: string }) | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    return e as Error & { code?: string };
  }
}

async function expectRejected(fn: () => unknown, codes: string[]): Promise<void> {
  const err = await errorOf(fn);
  if (!err) throw new Error(`expected the addon to reject the request with ${codes.join(' or ')}, but it succeeded`);
  // The addon's Errors come from Node's own realm, not jest's sandbox: check the shape, not instanceof.
  expect(Object.prototype.toString.call(err)).toBe('[object Error]');
  expect(ERROR_CODES).toContain(err.code);
  if (!codes.includes(err.code ?? '')) {
    throw new Error(`expected ${codes.join(' or ')}, got ${err.code}: ${err.message}`);
  }
  expect(err.message.length).toBeGreaterThan(10);
}

describe('native forward writes every output element', () => {
  it.each(['float32', 'float16', 'bfloat16'] as const)('%s: no NaN left in NaN-poisoned out and lse', async (dtype) => {
    const req = fwdRequest(D, dtype);
    await b().forward(req);
    expect(nanCount(req.out)).toBe(0);
    expect(nanCount(req.lse)).toBe(0);
  });

  it('writes zeros and -Infinity for rows that see no key', async () => {
    const req = fwdRequest({ b: 1, sq: 10, sk: 4, hq: 1, hkv: 1, d: 8 });
    req.windowRight = 0; // causal, seqlenQ > seqlenK: rows 0..5 see nothing
    await b().forward(req);
    const lse = req.lse.data as Float32Array;
    const out = req.out.data as Float32Array;
    for (let i = 0; i < 10; i++) {
      if (i < 6) {
        expect(lse[i]).toBe(-Infinity);
        for (let x = 0; x < 8; x++) expect(out[i * 8 + x]).toBe(0);
      } else {
        expect(Number.isFinite(lse[i])).toBe(true);
      }
    }
  });

  it('naive: true (the benchmark baseline) gives the same result on the CPU', async () => {
    const req = fwdRequest();
    req.windowLeft = 5;
    req.windowRight = 0;
    const naive: FullForwardRequest = {
      ...req,
      naive: true,
      out: { ...req.out, data: new Float32Array((req.out.data as Float32Array).length).fill(NaN) },
      lse: { ...req.lse, data: new Float32Array((req.lse.data as Float32Array).length).fill(NaN) },
    };
    await b().forward(req);
    await b().forward(naive);
    expect(maxAbsDiff(naive.out.data as Float32Array, req.out.data as Float32Array).max).toBeLessThan(1e-5);
    expect(maxAbsDiff(naive.lse.data as Float32Array, req.lse.data as Float32Array).max).toBeLessThan(1e-5);
  });
});

describe('native backward writes every output element', () => {
  it.each(['float32', 'bfloat16'] as const)('%s: no NaN left in NaN-poisoned dq, dk, dv', async (dtype) => {
    const f = fwdRequest(D, dtype);
    await b().forward(f);
    const req = bwdRequest(f);
    await b().backward(req);
    for (const g of [req.dq, req.dk, req.dv]) expect(nanCount(g)).toBe(0);
  });
});

describe('native validation (requests that bypass the TypeScript layer)', () => {
  it('rejects outputs that share memory with an input', async () => {
    const r = fwdRequest();
    await expectRejected(() => b().forward({ ...r, out: { ...r.out, data: r.q.data } }), ['E_ARG']);
  });

  const bad: Array<[string, (r: NativeForwardRequest) => unknown, string[]]> = [
    ['a missing q', (r) => ({ ...r, q: undefined }), ['E_ARG', 'E_SHAPE', 'E_DTYPE']],
    ['q.data that is a plain array', (r) => ({ ...r, q: { ...r.q, data: [1, 2, 3] } }), ['E_DTYPE', 'E_ARG']],
    ['an unknown dtype', (r) => ({ ...r, q: { ...r.q, dtype: 'float64' } }), ['E_DTYPE', 'E_ARG']],
    ['a Float32Array labelled float16', (r) => ({ ...r, q: { ...r.q, dtype: 'float16' }, k: { ...r.k, dtype: 'float16' }, v: { ...r.v, dtype: 'float16' } }), ['E_DTYPE']],
    ['mixed dtypes', (r) => ({ ...r, k: { ...r.k, data: toFloat16(r.k.data as Float32Array), dtype: 'float16' } }), ['E_DTYPE']],
    ['a rank-3 q', (r) => ({ ...r, q: { ...r.q, shape: [2 * 13, 4, 32] } }), ['E_SHAPE']],
    ['data shorter than the shape', (r) => ({ ...r, q: { ...r.q, data: new Float32Array(10) } }), ['E_SHAPE']],
    ['an out buffer that is too small', (r) => ({ ...r, out: { ...r.out, data: new Float32Array(5), shape: [1, 1, 1, 5] } }), ['E_SHAPE']],
    ['an lse of the wrong length', (r) => ({ ...r, lse: { ...r.lse, data: new Float32Array(3), shape: [3] } }), ['E_SHAPE']],
    ['k and v of different lengths', (r) => ({ ...r, v: { ...r.v, data: new Float32Array(2 * 20 * 2 * 32), shape: [2, 20, 2, 32] } }), ['E_SHAPE']],
    ['headsQ not a multiple of headsKV', (r) => ({ ...r, k: { ...r.k, data: new Float32Array(2 * 21 * 3 * 32), shape: [2, 21, 3, 32] }, v: { ...r.v, data: new Float32Array(2 * 21 * 3 * 32), shape: [2, 21, 3, 32] } }), ['E_SHAPE']],
    ['a NaN scale', (r) => ({ ...r, scale: NaN }), ['E_ARG']],
    ['a window of -2', (r) => ({ ...r, windowLeft: -2 }), ['E_ARG']],
    ['a fractional window', (r) => ({ ...r, windowRight: 1.5 }), ['E_ARG']],
    ['negative threads', (r) => ({ ...r, threads: -1 }), ['E_ARG']],
    ['an unknown backend', (r) => ({ ...r, backend: 'tpu' }), ['E_ARG']],
  ];

  it.each(bad)('rejects %s with a coded error', async (_name, mutate, codes) => {
    await expectRejected(() => b().forward(mutate(fwdRequest()) as NativeForwardRequest), codes);
  });

  it('rejects head dims that are not a multiple of 8 or above 256', async () => {
    await expectRejected(() => b().forward(fwdRequest({ ...D, d: 12 })), ['E_UNSUPPORTED']);
    await expectRejected(() => b().forward(fwdRequest({ ...D, d: 264 })), ['E_UNSUPPORTED']);
  });

  it('rejects a request that is not an object', async () => {
    await expectRejected(() => (b().forward as (x: unknown) => unknown)(undefined), ['E_ARG']);
    await expectRejected(() => (b().forward as (x: unknown) => unknown)(42), ['E_ARG']);
  });

  it('runs float8_e4m3 on the CPU backend, but only with a bf16/fp16 out', async () => {
    const r = fwdRequest();
    const f8 = (t: NativeTensorArg): NativeTensorArg => ({ ...t, data: new Uint8Array((t.data as Float32Array).length), dtype: 'float8_e4m3' });
    await b().forward({ ...r, q: f8(r.q), k: f8(r.k), v: f8(r.v), out: { ...r.out, data: new Uint16Array((r.out.data as Float32Array).length), dtype: 'bfloat16' } });
    await expectRejected(() => b().forward({ ...r, q: f8(r.q), k: f8(r.k), v: f8(r.v) }), ['E_DTYPE']);
  });

  it('rejects a backward with mismatched gradient buffers', async () => {
    const f = fwdRequest();
    await b().forward(f);
    const req = bwdRequest(f);
    await expectRejected(() => b().backward({ ...req, dk: { ...req.dk, data: new Float32Array(7), shape: [7] } }), ['E_SHAPE']);
    await expectRejected(() => b().backward({ ...req, dout: { ...req.dout, shape: [2, 13, 4, 16] } }), ['E_SHAPE']);
  });

  it('still works after all of that', async () => {
    const req = fwdRequest();
    await b().forward(req);
    expect(countNaN(req.out.data as Float32Array)).toBe(0);
  });
});

describe('native CUDA entry points without a usable GPU', () => {
  const noGpu = () => b().probe().devices.length === 0;

  it("rejects backend 'cuda' with E_NO_DEVICE", async () => {
    if (!noGpu()) return expect(b().probe().devices.length).toBeGreaterThan(0);
    await expectRejected(() => b().forward({ ...fwdRequest(D, 'bfloat16'), backend: 'cuda' }), ['E_NO_DEVICE']);
  });

  it('cannot allocate a DeviceBuffer (E_NO_DEVICE)', async () => {
    if (!noGpu()) return expect(b().probe().devices.length).toBeGreaterThan(0);
    await expectRejected(() => new (b().DeviceBuffer)(0, 1024), ['E_NO_DEVICE']);
  });

  it('cannot bench (E_NO_DEVICE)', async () => {
    if (!noGpu()) return expect(b().probe().devices.length).toBeGreaterThan(0);
    await expectRejected(
      () => b().bench({
        op: 'forward', naive: false, device: 0, dtype: 'bfloat16', batch: 1, seqlenQ: 128, seqlenK: 128,
        headsQ: 1, headsKV: 1, headDim: 64, scale: 0.125, windowLeft: -1, windowRight: -1,
        deterministic: false, warmup: 1, iters: 1,
      }),
      ['E_NO_DEVICE'],
    );
  });

  it("select() answers 'none' with a reason", () => {
    if (!noGpu()) return expect(b().probe().devices.length).toBeGreaterThan(0);
    let sel: { path: string; reason: string } | undefined;
    try {
      sel = b().select({
        op: 'forward', device: 0, dtype: 'bfloat16', headDim: 64, seqlenQ: 128, seqlenK: 128,
        headsQ: 1, headsKV: 1, windowLeft: -1, windowRight: -1,
      });
    } catch (e) {
      // Throwing E_NO_DEVICE is an acceptable answer too.
      expect((e as { code?: string }).code).toBe('E_NO_DEVICE');
      return;
    }
    expect(sel.path).toBe('none');
    expect(sel.reason.length).toBeGreaterThan(0);
  });
});
