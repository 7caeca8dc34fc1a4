// exec.test.ts (GPU) — the execution core on CUDA: Streams order calls with no host round trip,
// different Streams run side by side, outputs written in place, views and layout 'bhsd' through
// strides, and an error in the middle of a Stream.
import { DeviceTensor, Stream, flashAttention, flashAttentionBackward, fromFloat16, tensor } from '../../src-ts/index';
import type { HostTensor } from '../../src-ts/tensor';
import { makeRng, randomTensor, rejectsWith } from '../helpers';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();
const SHAPE = [2, 96, 4, 64];

async function bits(t: unknown): Promise<ArrayLike<number>> {
  return ((await (t as DeviceTensor).toHost()) as HostTensor).data;
}

async function deviceQkv(seed: number, shape = SHAPE) {
  const rng = makeRng(seed);
  return {
    q: await DeviceTensor.from(randomTensor(shape, 'bfloat16', rng)),
    k: await DeviceTensor.from(randomTensor(shape, 'bfloat16', rng)),
    v: await DeviceTensor.from(randomTensor(shape, 'bfloat16', rng)),
  };
}

describe('Stream ordering on CUDA', () => {
  it('a chain of calls issued without awaiting, each reading the last one\'s output, equals the awaited chain', async () => {
    gpu.report();
    const { q, k, v } = await deviceQkv(1);
    // Awaited one at a time.
    let x = q;
    const expected: ArrayLike<number>[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await flashAttention(x, k, v, { causal: true });
      expected.push(await bits(r.out));
      x = r.out as DeviceTensor;
    }
    // Issued back to back on one Stream, outputs written in place into preallocated tensors.
    const stream = new Stream(0);
    const outs = Array.from({ length: 6 }, () => DeviceTensor.empty(SHAPE, 'bfloat16'));
    const lse = DeviceTensor.empty([2, 4, 96], 'float32');
    const calls: Promise<unknown>[] = [];
    let input = q;
    for (let i = 0; i < 6; i++) {
      calls.push(flashAttention(input, k, v, { causal: true, stream, out: outs[i], lse }));
      input = outs[i];
    }
    await Promise.all(calls);
    for (let i = 0; i < 6; i++) expect(await bits(outs[i])).toEqual(expected[i]);
    stream.dispose();
  });

  it('calls on several Streams at once give the same answers as one at a time', async () => {
    gpu.report();
    const { q, k, v } = await deviceQkv(2, [1, 512, 8, 128]);
    const ref = await bits((await flashAttention(q, k, v)).out);
    const streams = [new Stream(0), new Stream(0), new Stream(0), new Stream(0)];
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => flashAttention(q, k, v, { stream: streams[i % 4] })),
    );
    for (const r of results) expect(await bits(r.out)).toEqual(ref);
    for (const s of streams) s.dispose();
  });

  it('calls issued before dispose() still complete; the Stream refuses new ones', async () => {
    gpu.report();
    const { q, k, v } = await deviceQkv(3);
    const stream = new Stream(0);
    const pending = Array.from({ length: 8 }, () => flashAttention(q, k, v, { stream }));
    stream.dispose();
    await expect(Promise.all(pending)).resolves.toHaveLength(8);
    await rejectsWith(flashAttention(q, k, v, { stream }), 'E_DISPOSED');
  });

  it('an error in the middle of a Stream rejects that call only; the calls around it resolve', async () => {
    gpu.report();
    const { q, k, v } = await deviceQkv(4);
    const ref = await bits((await flashAttention(q, k, v)).out);
    // A view 4 elements (8 bytes) into a buffer: valid, but the kernels need 16-byte aligned rows.
    // The refusal comes from the plan while the call is being enqueued (its outputs are already
    // allocated on the stream then, and must be freed).
    const buf = DeviceTensor.empty([SHAPE.reduce((a, b) => a * b, 1) + 4], 'bfloat16');
    const shifted = buf.view(4, SHAPE);
    const stream = new Stream(0);
    const before = Array.from({ length: 4 }, () => flashAttention(q, k, v, { stream }));
    const failing = flashAttention(shifted, k, v, { stream });
    const after = Array.from({ length: 4 }, () => flashAttention(q, k, v, { stream }));
    const e = await rejectsWith(failing, 'E_UNSUPPORTED');
    expect(e.message).toMatch(/16-byte aligned/);
    for (const r of [...before, ...after]) expect(await bits((await r).out)).toEqual(ref);
    shifted.dispose();
    buf.dispose();
    stream.dispose();
  });

  it('host tensors on a Stream go through pinned staging and match the DeviceTensor path', async () => {
    gpu.report();
    const rng = makeRng(5);
    const h = { q: randomTensor(SHAPE, 'float16', rng), k: randomTensor(SHAPE, 'float16', rng), v: randomTensor(SHAPE, 'float16', rng) };
    const stream = new Stream(0);
    const host = await Promise.all([0, 1, 2].map(() => flashAttention(h.q, h.k, h.v, { device: 'cuda', stream, causal: true })));
    const d = await flashAttention(await DeviceTensor.from(h.q), await DeviceTensor.from(h.k), await DeviceTensor.from(h.v), { causal: true });
    for (const r of host) expect(r.out.data).toEqual(await bits(d.out));
    stream.dispose();
  });
});

describe('outputs in place, views and layout on CUDA', () => {
  it('writes out, lse, dq, dk and dv into the caller\'s DeviceTensors', async () => {
    gpu.report();
    const { q, k, v } = await deviceQkv(6);
    const ref = await flashAttention(q, k, v, { causal: true });
    const out = DeviceTensor.empty(SHAPE, 'bfloat16');
    const lse = DeviceTensor.empty([2, 4, 96], 'float32');
    const r = await flashAttention(q, k, v, { causal: true, out, lse });
    expect(r.out).toBe(out);
    expect(await bits(out)).toEqual(await bits(ref.out));
    expect(await bits(lse)).toEqual(await bits(ref.lse));
    const dout = await DeviceTensor.from(randomTensor(SHAPE, 'bfloat16', makeRng(7)));
    const g = await flashAttentionBackward(dout, q, k, v, out, lse, { causal: true, deterministic: true });
    const dq = DeviceTensor.empty(SHAPE, 'bfloat16');
    const g2 = await flashAttentionBackward(dout, q, k, v, out, lse, { causal: true, deterministic: true, dq });
    expect(g2.dq).toBe(dq);
    expect(await bits(dq)).toEqual(await bits(g.dq));
    expect(await bits(g2.dk)).toEqual(await bits(g.dk));
  });

  it('reads q, k, v as views of one packed [b, s, 3, h, d] DeviceTensor, with no copy', async () => {
    gpu.report();
    const [b, s, h, d] = SHAPE;
    const packedHost = randomTensor([b, s, 3, h, d], 'bfloat16', makeRng(8));
    const packed = await DeviceTensor.from(packedHost);
    const strides = [s * 3 * h * d, 3 * h * d, d, 1];
    const [qv, kv, vv] = [0, 1, 2].map((j) => packed.view(j * h * d, SHAPE, strides));
    // The same data, unpacked on the host.
    const part = (j: number) => {
      const src = packedHost.data as Uint16Array;
      const dst = new Uint16Array(b * s * h * d);
      for (let r = 0; r < b * s; r++) dst.set(src.subarray((r * 3 + j) * h * d, (r * 3 + j + 1) * h * d), r * h * d);
      return DeviceTensor.from(tensor(dst, SHAPE, 'bfloat16'));
    };
    const ref = await flashAttention(await part(0), await part(1), await part(2), { windowSize: [33, 7] });
    const got = await flashAttention(qv, kv, vv, { windowSize: [33, 7] });
    expect(await bits(got.out)).toEqual(await bits(ref.out));
    expect(Array.from(await bits(qv))).toEqual(Array.from(await bits(await part(0))));
    // Disposing the parent keeps the views' memory alive until they are disposed.
    packed.dispose();
    expect(await bits((await flashAttention(qv, kv, vv, { windowSize: [33, 7] })).out)).toEqual(await bits(ref.out));
    for (const t of [qv, kv, vv]) t.dispose();
  });

  it("layout 'bhsd' on DeviceTensors equals the transposed default layout", async () => {
    gpu.report();
    const rng = makeRng(10);
    const [b, s, h, d] = SHAPE;
    const hq = randomTensor([b, h, s, d], 'float16', rng);
    const hk = randomTensor([b, h, s, d], 'float16', rng);
    const hv = randomTensor([b, h, s, d], 'float16', rng);
    const dq = await DeviceTensor.from(hq);
    const r = await flashAttention(dq, await DeviceTensor.from(hk), await DeviceTensor.from(hv), { layout: 'bhsd', causal: true });
    expect(r.out.shape).toEqual([b, h, s, d]);
    const cpu = await flashAttention(hq, hk, hv, { layout: 'bhsd', causal: true, device: 'cpu' });
    const got = Array.from(await bits(r.out));
    const want = Array.from(cpu.out.data as Uint16Array);
    // bf16/fp16 CUDA vs the CPU backend: compare as values, within a float16 tolerance.
    const g = fromFloat16(Uint16Array.from(got));
    const w = fromFloat16(Uint16Array.from(want));
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]));
    expect(worst).toBeLessThan(1e-2);
  });
});
