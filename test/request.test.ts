// request.test.ts — the one request type at the boundary: element strides and offsets, int32
// tensors, the serving slots, and layout 'bhsd' (PyTorch SDPA order) through strides.
import { binding } from '../src-ts/binding';
import type { NativeForwardRequest, NativeTensorArg } from '../src-ts/binding';
import { FlashAttentionError } from '../src-ts/errors';
import { FLAT_HEADER_LENGTH, forwardFlat } from '../src-ts/flat';
import { flashAttention, flashAttentionBackward, tensor } from '../src-ts/index';
import type { HostTensor } from '../src-ts/tensor';
import { makeRng, randomTensor } from './helpers';

const cpu = { device: 'cpu' as const };

/** [b, s, h, d] -> [b, h, s, d], copied. */
function toBhsd(t: HostTensor): HostTensor {
  const [b, s, h, d] = t.shape;
  const src = t.data as Float32Array;
  const dst = new Float32Array(src.length);
  for (let bi = 0; bi < b; bi++)
    for (let si = 0; si < s; si++)
      for (let hi = 0; hi < h; hi++)
        for (let c = 0; c < d; c++) dst[((bi * h + hi) * s + si) * d + c] = src[((bi * s + si) * h + hi) * d + c];
  return tensor(dst, [b, h, s, d]);
}

function base(sq = 12, sk = 20, h = 4, hk = 2, d = 16, seed = 1) {
  const rng = makeRng(seed);
  return {
    q: randomTensor([2, sq, h, d], 'float32', rng),
    k: randomTensor([2, sk, hk, d], 'float32', rng),
    v: randomTensor([2, sk, hk, d], 'float32', rng),
  };
}

async function rejection(p: Promise<unknown>): Promise<FlashAttentionError> {
  try {
    await p;
  } catch (e) {
    return e as FlashAttentionError;
  }
  throw new Error('expected a rejection');
}

describe('int32 tensors', () => {
  it("tensor(Int32Array, shape) infers 'int32'", () => {
    const t = tensor(new Int32Array([0, 5, 9]), [3]);
    expect(t.dtype).toBe('int32');
    expect(() => tensor(new Int32Array(3), [3], 'float32')).toThrow(/float32 data must be a Float32Array/);
  });

  it('int32 is refused as an attention operand, with E_DTYPE', async () => {
    const i = tensor(new Int32Array(2 * 8 * 2 * 8), [2, 8, 2, 8]);
    const e = await rejection(flashAttention(i, i, i, cpu));
    expect(e.code).toBe('E_DTYPE');
  });

  it('the addon reads int32 slots and refuses the ones no op implements yet', async () => {
    const { q, k, v } = base();
    const arg = (t: HostTensor): NativeTensorArg => ({ data: t.data as Float32Array, shape: [...t.shape], dtype: 'float32' });
    const req = { backend: 'cpu' as const, device: 0, scale: 0.25, windowLeft: -1, windowRight: -1, threads: 0, q: arg(q), k: arg(k), v: arg(v), naive: false };
    const seqlensK = { data: new Int32Array([3, 7]), shape: [2], dtype: 'int32' as const };
    await expect(binding().forward({ ...req, seqlensK } as NativeForwardRequest)).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
      message: expect.stringMatching(/seqlensK is not supported by forward yet/),
    });
    const bad = { data: new Float32Array(2), shape: [2], dtype: 'int32' as const };
    await expect(binding().forward({ ...req, seqlensK: bad } as unknown as NativeForwardRequest)).rejects.toMatchObject({ code: 'E_DTYPE' });
  });
});

describe('element strides at the boundary', () => {
  const arg = (data: Float32Array, shape: number[], strides?: number[]): NativeTensorArg =>
    strides ? { data, shape, dtype: 'float32', strides } : { data, shape, dtype: 'float32' };
  const common = { backend: 'cpu' as const, device: 0, scale: 0.25, windowLeft: -1, windowRight: 0, threads: 0, naive: false };

  it('reads q, k, v out of one packed [b, s, 3, h, d] array through strides, like separate arrays', async () => {
    const [b, s, h, d] = [2, 10, 2, 16];
    const rng = makeRng(3);
    const packed = new Float32Array(b * s * 3 * h * d).map(() => rng.normal());
    const part = (j: number) => {
      const t = new Float32Array(b * s * h * d);
      for (let bi = 0; bi < b; bi++)
        for (let si = 0; si < s; si++) t.set(packed.subarray(((bi * s + si) * 3 + j) * h * d, ((bi * s + si) * 3 + j + 1) * h * d), (bi * s + si) * h * d);
      return t;
    };
    const strides = [s * 3 * h * d, 3 * h * d, d, 1];
    const shape = [b, s, h, d];
    const strided = await binding().forward({
      ...common,
      q: arg(packed, shape, strides),
      k: arg(packed.subarray(h * d), shape.slice(), strides),
      v: arg(packed.subarray(2 * h * d), shape.slice(), strides),
    } as NativeForwardRequest);
    void strided;
    const outA = new Float32Array(b * s * h * d);
    const outB = new Float32Array(b * s * h * d);
    await binding().forward({
      ...common,
      q: arg(packed, shape, strides),
      k: arg(packed.subarray(h * d), shape, strides),
      v: arg(packed.subarray(2 * h * d), shape, strides),
      out: arg(outA, shape),
    });
    await binding().forward({ ...common, q: arg(part(0), shape), k: arg(part(1), shape), v: arg(part(2), shape), out: arg(outB, shape) });
    expect(outA).toEqual(outB);
    expect(outA.some((x) => x !== 0)).toBe(true);
  });

  it('refuses a non-unit last stride, an output that overlaps itself, and a view past the array', async () => {
    const d = new Float32Array(2 * 4 * 2 * 8);
    const shape = [2, 4, 2, 8];
    const ok = arg(d, shape);
    await expect(binding().forward({ ...common, q: arg(d, shape, [64, 16, 8, 2]), k: ok, v: ok })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    const out = new Float32Array(2 * 4 * 2 * 8);
    await expect(binding().forward({ ...common, q: ok, k: ok, v: ok, out: arg(out, shape, [64, 0, 8, 1]) })).rejects.toMatchObject({
      code: 'E_ARG',
      message: expect.stringMatching(/overlap itself/),
    });
    await expect(binding().forward({ ...common, q: arg(d, shape, [128, 16, 8, 1]), k: ok, v: ok })).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(binding().forward({ ...common, q: { ...ok, offset: 4 }, k: ok, v: ok })).rejects.toMatchObject({
      code: 'E_ARG',
      message: expect.stringMatching(/offset applies to DeviceBuffers only/),
    });
  });
});

describe("layout 'bhsd' (PyTorch SDPA order)", () => {
  it('gives the transposed answer of the default layout, forward and backward', async () => {
    const { q, k, v } = base(12, 20, 4, 2, 16, 5);
    const ref = await flashAttention(q, k, v, { ...cpu, causal: true });
    const got = await flashAttention(toBhsd(q), toBhsd(k), toBhsd(v), { ...cpu, causal: true, layout: 'bhsd' });
    expect(got.out.shape).toEqual([2, 4, 12, 16]);
    expect(got.out.data).toEqual(toBhsd(ref.out as HostTensor).data);
    expect(got.lse.data).toEqual(ref.lse.data);

    const dout = randomTensor([...q.shape], 'float32', makeRng(6));
    const g = await flashAttentionBackward(dout, q, k, v, ref.out, ref.lse, cpu);
    const gb = await flashAttentionBackward(toBhsd(dout), toBhsd(q), toBhsd(k), toBhsd(v), got.out, got.lse, { ...cpu, layout: 'bhsd' });
    expect(gb.dq.shape).toEqual([2, 4, 12, 16]);
    expect(gb.dq.data).toEqual(toBhsd(g.dq as HostTensor).data);
    expect(gb.dk.data).toEqual(toBhsd(g.dk as HostTensor).data);
    expect(gb.dv.data).toEqual(toBhsd(g.dv as HostTensor).data);
  });

  it('writes a caller-provided out in bhsd order', async () => {
    const { q, k, v } = base(8, 8, 2, 2, 16, 7);
    const out = tensor(new Float32Array(q.data.length), [2, 2, 8, 16]);
    const r = await flashAttention(toBhsd(q), toBhsd(k), toBhsd(v), { ...cpu, layout: 'bhsd', out });
    expect(r.out).toBe(out);
    expect(out.data).toEqual(toBhsd((await flashAttention(q, k, v, cpu)).out as HostTensor).data);
  });

  it('names the other layout when only it fits the shapes', async () => {
    const { q, k, v } = base(12, 20, 4, 2, 16, 8);
    const e = await rejection(flashAttention(toBhsd(q), toBhsd(k), toBhsd(v), cpu));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/fit layout 'bhsd'.*pass layout: 'bhsd'/);
    const e2 = await rejection(flashAttention(q, k, v, { ...cpu, layout: 'bhsd' }));
    expect(e2.message).toMatch(/fit layout 'bshd'/);
    await expect(flashAttention(q, k, v, { ...cpu, layout: 'sbhd' as 'bshd' })).rejects.toMatchObject({ code: 'E_ARG' });
  });
});

describe('the flat forward request (forwardFlat, the public forward)', () => {
  const arg = (data: Float32Array, shape: number[], strides?: number[]): NativeTensorArg =>
    strides ? { data, shape, dtype: 'float32', strides } : { data, shape, dtype: 'float32' };
  const common = { backend: 'cpu' as const, device: 0, scale: 0.25, windowLeft: -1, windowRight: 0, threads: 1, naive: false };
  const message = async (p: Promise<unknown>) => {
    const e = await rejection(p);
    return { code: e.code, message: e.message };
  };

  it('gives what forward(req) gives, strided inputs and given outputs included', async () => {
    const { q, k, v } = base(9, 13, 4, 2, 16, 7);
    const [b, s, h, d] = [2, 9, 4, 16];
    const packed = new Float32Array(b * h * s * d).map((_, i) => (q.data as Float32Array)[i]);
    const bhsd = arg(packed, [b, s, h, d], [h * s * d, d, s * d, 1]); // q read as [b, h, s, d] memory
    const req = (out: Float32Array): NativeForwardRequest => ({
      ...common,
      q: bhsd,
      k: arg(k.data as Float32Array, [...k.shape]),
      v: arg(v.data as Float32Array, [...v.shape]),
      out: arg(out, [b, s, h, d]),
    });
    const viaObject = new Float32Array(b * s * h * d);
    const viaFlat = new Float32Array(b * s * h * d);
    const a = await binding().forward(req(viaObject));
    const r = req(viaFlat);
    const f = await forwardFlat(binding(), r);
    expect(viaFlat).toEqual(viaObject);
    expect(viaFlat.some((x) => x !== 0)).toBe(true);
    expect(f.lse).toEqual(a.lse);
  });

  it('refuses what forward(req) refuses, with the same code and message', async () => {
    const d = new Float32Array(2 * 4 * 2 * 8);
    const shape = [2, 4, 2, 8];
    const ok = arg(d, shape);
    const cases: NativeForwardRequest[] = [
      { ...common, q: arg(d, shape, [64, 16, 8, 2]), k: ok, v: ok },
      { ...common, q: ok, k: ok, v: ok, out: arg(new Float32Array(128), shape, [64, 0, 8, 1]) },
      { ...common, q: arg(d, shape, [128, 16, 8, 1]), k: ok, v: ok },
      { ...common, q: { ...ok, offset: 4 }, k: ok, v: ok },
      { ...common, q: arg(d.subarray(1), shape), k: ok, v: ok },
      { ...common, q: ok, k: { data: new Uint16Array(128), shape, dtype: 'float32' } as unknown as NativeTensorArg, v: ok },
      { ...common, q: ok, k: ok, v: ok, out: ok },
      { ...common, q: ok, k: arg(d, [2, 4, 3, 8].slice(0, 4)), v: ok },
      { ...common, q: ok, k: ok, v: ok, qDescale: arg(new Float32Array(4), [2, 2]) },
      { ...common, q: ok, k: ok, v: ok, outDtype: 'bfloat16' },
    ];
    for (const c of cases) {
      const want = await message(binding().forward(c));
      expect(await message(forwardFlat(binding(), c))).toEqual(want);
    }
  });

  it('reads only own optional fields, like forward(req)', async () => {
    const d = new Float32Array(2 * 4 * 2 * 8);
    const ok = arg(d, [2, 4, 2, 8]);
    const proto = Object.prototype as unknown as { stream?: unknown; out?: unknown; strides?: unknown };
    proto.stream = { not: 'a stream' };
    proto.out = 42;
    proto.strides = [1, 1, 1, 1];
    try {
      await expect(forwardFlat(binding(), { ...common, q: ok, k: ok, v: ok })).resolves.toBeDefined();
    } finally {
      delete proto.stream;
      delete proto.out;
      delete proto.strides;
    }
  });

  it('refuses a malformed header with E_INTERNAL (a bug, never user input)', async () => {
    const d = new Float32Array(2 * 4 * 2 * 8);
    const b = binding();
    await expect(b.forwardFlat(new Float64Array(3), undefined, d, d, d)).rejects.toMatchObject({ code: 'E_INTERNAL' });
    await expect(b.forwardFlat(new Float64Array(FLAT_HEADER_LENGTH).fill(NaN), undefined, d, d, d)).rejects.toMatchObject({
      code: 'E_INTERNAL',
    });
  });
});
