// Many calls in flight at once, and calls from worker threads, give the same results as
// sequential calls on the main thread. The event loop stays free while the addon works.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type AttentionResult, type HostTensor, flashAttention, flashAttentionBackward } from '../src-ts/index';
import { type CaseData, makeCase, makeRng, randomTensor } from './helpers';

describe('concurrent calls', () => {
  it('32 forward calls in flight give the same results as sequential calls', async () => {
    const rng = makeRng();
    const cases: CaseData[] = [];
    for (let i = 0; i < 32; i++) {
      cases.push(makeCase({ batch: 1 + (i % 2), seqlenQ: 20 + i, seqlenK: 30 + 2 * i, headsQ: 2, headDim: 32,
        dtype: i % 3 === 0 ? 'bfloat16' : 'float32' }, rng));
    }
    const opts = (i: number) => ({ device: 'cpu' as const, causal: i % 2 === 0 });
    const sequential: Array<AttentionResult<HostTensor>> = [];
    for (let i = 0; i < cases.length; i++) sequential.push(await flashAttention(cases[i].q, cases[i].k, cases[i].v, opts(i)));
    const parallel = await Promise.all(cases.map((c, i) => flashAttention(c.q, c.k, c.v, opts(i))));
    parallel.forEach((r, i) => {
      expect(r.out.data).toEqual(sequential[i].out.data);
      expect(r.lse.data).toEqual(sequential[i].lse.data);
    });
  });

  it('forward and backward calls can overlap', async () => {
    const rng = makeRng();
    const d = makeCase({ seqlenQ: 40, seqlenK: 50, headsQ: 4, headsKV: 2, headDim: 32 }, rng);
    const dout = randomTensor([...d.q.shape], 'float32', rng);
    const f = await flashAttention(d.q, d.k, d.v, { device: 'cpu' });
    const expected = await flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cpu' });
    const jobs = [];
    for (let i = 0; i < 16; i++) {
      jobs.push(i % 2 ? flashAttention(d.q, d.k, d.v, { device: 'cpu' }) : flashAttentionBackward(dout, d.q, d.k, d.v, f.out, f.lse, { device: 'cpu' }));
    }
    const results = await Promise.all(jobs);
    results.forEach((r, i) => {
      if (i % 2) expect((r as typeof f).out.data).toEqual(f.out.data);
      else expect((r as typeof expected).dq.data).toEqual(expected.dq.data);
    });
  });

  it('returns before the work is done: the event loop keeps turning while the backend runs', async () => {
    const d = makeCase({ seqlenQ: 600, seqlenK: 600, headsQ: 4, headDim: 64 });
    let settled = false;
    const pending = flashAttention(d.q, d.k, d.v, { device: 'cpu', threads: 1 }).then((r) => {
      settled = true;
      return r;
    });
    // A blocking implementation would have finished inside the call; an async one has not yet
    // after one turn of the event loop (the work is ~0.4 GFLOP on one thread).
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    await pending;
    expect(settled).toBe(true);
  });
});

describe('worker threads', () => {
  it('runs in several worker threads at once with the same results as the main thread', async () => {
    const rng = makeRng();
    const d = makeCase({ batch: 2, seqlenQ: 33, seqlenK: 47, headsQ: 4, headsKV: 2, headDim: 32, dtype: 'bfloat16' }, rng);
    const main = await flashAttention(d.q, d.k, d.v, { device: 'cpu', causal: true });
    const script = join(__dirname, 'fixtures', 'attention-worker.js');
    const run = () =>
      new Promise<{ out: Uint16Array; lse: Float32Array }>((resolve, reject) => {
        const w = new Worker(script, {
          env: { ...process.env },
          workerData: {
            q: { data: d.q.data, shape: d.q.shape, dtype: d.q.dtype },
            k: { data: d.k.data, shape: d.k.shape, dtype: d.k.dtype },
            v: { data: d.v.data, shape: d.v.shape, dtype: d.v.dtype },
            options: { device: 'cpu', causal: true },
          },
        });
        w.once('message', (m: { error?: string; out: Uint16Array; lse: Float32Array }) => {
          if (m.error) reject(new Error(m.error));
          else resolve(m);
        });
        w.once('error', reject);
        w.once('exit', (code) => {
          if (code !== 0) reject(new Error(`worker exited with code ${code}`));
        });
      });
    const results = await Promise.all([run(), run(), run()]);
    // Arrays that come back from a worker belong to another realm: compare their bytes.
    const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const r of results) {
      expect(r.out.length).toBe(main.out.data.length);
      expect(bytes(r.out).equals(bytes(main.out.data))).toBe(true);
      expect(bytes(r.lse).equals(bytes(main.lse.data))).toBe(true);
    }
  });
});
