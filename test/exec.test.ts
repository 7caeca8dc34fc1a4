// exec.test.ts — the execution core on the CPU backend: Streams order calls, outputs can be the
// caller's, the addon reads only own properties, and nothing the user does to an array after a
// call starts can crash it or change its inputs.
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';

import { binding } from '../src-ts/binding';
import { FlashAttentionError } from '../src-ts/errors';
import { flashAttention, flashAttentionBackward, Stream } from '../src-ts/index';
import { type HostTensor, tensor } from '../src-ts/tensor';
import { makeRng, randomTensor } from './helpers';

const cpu = { device: 'cpu' as const };

function qkv(s: number, seed = 1, d = 32, h = 2) {
  const rng = makeRng(seed);
  const shape = [1, s, h, d];
  return { q: randomTensor(shape, 'float32', rng), k: randomTensor(shape, 'float32', rng), v: randomTensor(shape, 'float32', rng) };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FlashAttentionError);
    return (e as FlashAttentionError).code;
  }
  throw new Error('expected a rejection');
}

describe('Stream on the CPU backend', () => {
  it('calls on one Stream complete in issue order, a long one first', async () => {
    using stream = new Stream(0);
    const big = qkv(512, 2, 64, 8);
    const small = qkv(8, 3);
    const order: number[] = [];
    const calls = [flashAttention(big.q, big.k, big.v, { ...cpu, stream }).then(() => order.push(0))];
    for (let i = 1; i <= 6; i++) calls.push(flashAttention(small.q, small.k, small.v, { ...cpu, stream }).then(() => order.push(i)));
    await Promise.all(calls);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('gives the same answers as calls without a stream', async () => {
    const { q, k, v } = qkv(40, 4);
    const stream = new Stream();
    const a = await flashAttention(q, k, v, { ...cpu, stream, causal: true });
    const b = await flashAttention(q, k, v, { ...cpu, causal: true });
    expect(a.out.data).toEqual(b.out.data);
    expect(a.lse.data).toEqual(b.lse.data);
    stream.dispose();
  });

  it('a refused call leaves the Stream usable; a disposed Stream refuses new calls', async () => {
    const stream = new Stream(0);
    const { q, k, v } = qkv(16, 5);
    const bad = tensor(new Float32Array(16 * 2 * 24), [1, 16, 2, 24], 'float32');
    expect(await code(flashAttention(q, bad, v, { ...cpu, stream }))).toBe('E_SHAPE');
    const pending = flashAttention(q, k, v, { ...cpu, stream });
    stream.dispose();
    stream.dispose(); // idempotent
    expect(stream.disposed).toBe(true);
    await expect(pending).resolves.toBeDefined(); // issued before dispose(): still runs
    expect(await code(flashAttention(q, k, v, { ...cpu, stream }))).toBe('E_DISPOSED');
  });

  it('refuses what is not a Stream, and bad device indices', async () => {
    const { q, k, v } = qkv(8);
    expect(await code(flashAttention(q, k, v, { ...cpu, stream: {} as unknown as Stream }))).toBe('E_ARG');
    expect(() => new Stream(-1)).toThrow(FlashAttentionError);
    expect(() => new Stream(1.5)).toThrow(FlashAttentionError);
  });
});

describe('caller-provided outputs', () => {
  it('writes out and lse in place and returns the same tensors', async () => {
    const { q, k, v } = qkv(24, 6);
    const out = tensor(new Float32Array(q.data.length).fill(NaN), [...q.shape], 'float32');
    const lse = tensor(new Float32Array(2 * 24).fill(NaN), [1, 2, 24], 'float32');
    const r = await flashAttention(q, k, v, { ...cpu, out, lse });
    expect(r.out).toBe(out);
    expect(r.lse).toBe(lse);
    const ref = await flashAttention(q, k, v, cpu);
    expect(out.data).toEqual(ref.out.data);
    expect(lse.data).toEqual(ref.lse.data);
  });

  it('writes dq, dk, dv in place', async () => {
    const { q, k, v } = qkv(16, 7);
    const f = await flashAttention(q, k, v, cpu);
    const dout = randomTensor([...q.shape], 'float32', makeRng(8));
    const dq = tensor(new Float32Array(q.data.length), [...q.shape], 'float32');
    const g = await flashAttentionBackward(dout, q, k, v, f.out, f.lse, { ...cpu, dq });
    expect(g.dq).toBe(dq);
    const ref = await flashAttentionBackward(dout, q, k, v, f.out, f.lse, cpu);
    expect(dq.data).toEqual(ref.dq.data);
    expect(g.dk.data).toEqual(ref.dk.data);
  });

  it('checks their shape and dtype', async () => {
    const { q, k, v } = qkv(8);
    const wrong = tensor(new Float32Array(8 * 2 * 16), [1, 8, 2, 16], 'float32');
    expect(await code(flashAttention(q, k, v, { ...cpu, out: wrong }))).toBe('E_SHAPE');
    const lse16 = tensor(new Uint16Array(16), [1, 2, 8], 'float16');
    expect(await code(flashAttention(q, k, v, { ...cpu, lse: lse16 }))).toBe('E_DTYPE');
    expect(await code(flashAttention(q, k, v, { ...cpu, out: q }))).toBe('E_ARG'); // overlaps an input
    expect(await code(flashAttention(q, k, v, { ...cpu, out: 5 as unknown as HostTensor }))).toBe('E_ARG');
  });
});

describe('user memory during a call', () => {
  it('copies host inputs when the call starts: detaching them afterwards changes nothing', async () => {
    const { q, k, v } = qkv(256, 9, 64, 4);
    const ref = await flashAttention(q, k, v, cpu);
    const copy = (t: HostTensor) => tensor(new Float32Array(t.data as Float32Array), [...t.shape], 'float32');
    const q2 = copy(q), k2 = copy(k), v2 = copy(v);
    const p = flashAttention(q2, k2, v2, cpu);
    structuredClone(k2.data.buffer, { transfer: [k2.data.buffer as ArrayBuffer] });
    structuredClone(v2.data.buffer, { transfer: [v2.data.buffer as ArrayBuffer] });
    expect(k2.data.length).toBe(0);
    const r = await p;
    expect(r.out.data).toEqual(ref.out.data);
  });

  it('an output detached while the call runs is an E_ARG rejection, not a crash', async () => {
    const { q, k, v } = qkv(256, 10, 64, 4);
    const out = tensor(new Float32Array(q.data.length), [...q.shape], 'float32');
    const p = flashAttention(q, k, v, { ...cpu, out });
    structuredClone(out.data.buffer, { transfer: [out.data.buffer as ArrayBuffer] });
    expect(await code(p)).toBe('E_ARG');
    await expect(p).rejects.toThrow(/out\.data was detached/);
  });
});

describe('the addon reads own properties only', () => {
  const req = () => {
    const { q, k, v } = qkv(8, 11);
    const arg = (t: HostTensor) => ({ data: t.data as Float32Array, shape: [...t.shape], dtype: 'float32' as const });
    return { backend: 'cpu' as const, device: 0, scale: 0.25, windowLeft: -1, windowRight: -1, threads: 0, q: arg(q), k: arg(k), v: arg(v), naive: false };
  };

  it('ignores options inherited from a prototype', async () => {
    const base = req();
    const { windowRight, ...rest } = base;
    const inherited = Object.assign(Object.create({ windowRight }), rest);
    await expect(binding().forward(inherited)).rejects.toThrow(/windowRight must be an integer/);
  });

  it('does not take an object whose tensor fields are inherited for a tensor', async () => {
    const base = req();
    const fake = Object.create(base.q);
    await expect(binding().forward({ ...base, q: fake })).rejects.toThrow(/q\.dtype/);
  });

  it('Object.prototype.stream and .out change nothing', async () => {
    const proto = Object.prototype as unknown as { stream?: unknown; out?: unknown };
    proto.stream = { not: 'a stream' };
    proto.out = 42;
    try {
      await expect(binding().forward(req())).resolves.toBeDefined();
      const { q, k, v } = qkv(8, 12);
      await expect(flashAttention(q, k, v, cpu)).resolves.toBeDefined();
    } finally {
      delete proto.stream;
      delete proto.out;
    }
  });

  it('reads own getters and non-enumerable own fields; a getter or trap that throws rejects the call', async () => {
    const hidden = req();
    Object.defineProperty(hidden, 'windowRight', { get: () => -1, enumerable: false });
    await expect(binding().forward(hidden)).resolves.toBeDefined();
    const throwing = req();
    Object.defineProperty(throwing, 'scale', {
      get() {
        throw new TypeError('no scale');
      },
    });
    await expect(binding().forward(throwing)).rejects.toThrow(/no scale/);
    const trap = new Proxy(req(), {
      ownKeys() {
        throw new RangeError('no keys');
      },
    });
    await expect(binding().forward(trap)).rejects.toThrow(/no keys/);
  });
});

describe('worker teardown', () => {
  it('terminating a worker with calls in flight leaves the process running', async () => {
    const script = `
      const { parentPort, workerData } = require('node:worker_threads');
      process.env.FLASHATTN_BINARY = workerData.binary;
      const api = require(workerData.entry);
      const n = 96 * 4 * 64;
      const t = () => api.tensor(new Float32Array(n).fill(0.5), [1, 96, 4, 64], 'float32');
      const q = t(), k = t(), v = t();
      let started = 0;
      (function loop() {
        for (let i = 0; i < 8; i++) { started++; api.flashAttention(q, k, v, { device: 'cpu' }).catch(() => {}); }
        if (started === 64) parentPort.postMessage('busy');
        setImmediate(loop);
      })();
    `;
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(script, {
        eval: true,
        workerData: { binary: process.env.FLASHATTN_BINARY, entry: join(__dirname, '..', 'dist', 'src-ts', 'index.js') },
      });
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      await worker.terminate();
    }
    const { q, k, v } = qkv(8, 13);
    await expect(flashAttention(q, k, v, cpu)).resolves.toBeDefined();
  });
});
