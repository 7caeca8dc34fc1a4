// lifecycle.test.ts — what a user can do to a call while it runs (DESIGN.md, Safety): detach,
// transfer or resize an input's buffer mid-call and collect it, or terminate a worker that has
// calls in flight. None of it may crash the process or change the answer: host inputs are copied
// (or staged) when the call starts, and a completion into a terminating worker is a no-op that
// still frees the work's memory. Every case runs in its own process (a crash fails the test).
import { expectClean, runChild } from './child';

// A CPU call that runs long enough (~0.2-1 s on two cores) for the mischief to land mid-call (the
// child reports whether it did), on inputs big enough (8 MiB per K/V) that a freed buffer is
// returned to the system.
const SETUP = `
const dims = { b: 1, sq: 2048, sk: 4096, h: 8, d: 64 };
const n = (s) => dims.b * s * dims.h * dims.d;
const shapeQ = [dims.b, dims.sq, dims.h, dims.d], shapeK = [dims.b, dims.sk, dims.h, dims.d];
const rand = (len, seed) => { const a = new Float32Array(len); let x = seed; for (let i = 0; i < len; i++) { x = (x * 1103515245 + 12345) >>> 0; a[i] = (x / 2 ** 32) * 2 - 1; } return a; };
const fill = (dst, seed) => { dst.set(rand(dst.length, seed)); return dst; };
const opts = { device: 'cpu', threads: 2 };
const same = (a, b) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
async function expected(op) {
  const q = fa.tensor(rand(n(dims.sq), 1), shapeQ), k = fa.tensor(rand(n(dims.sk), 2), shapeK), v = fa.tensor(rand(n(dims.sk), 3), shapeK);
  const f = await fa.flashAttention(q, k, v, opts);
  if (op === 'forward') return f;
  const dout = fa.tensor(rand(n(dims.sq), 4), shapeQ);
  return { f, g: await fa.flashAttentionBackward(dout, q, k, v, f.out, f.lse, opts) };
}
`;

async function detachCase(mischief: string, op: 'forward' | 'backward' = 'forward'): Promise<void> {
  const r = await runChild(
    `${SETUP}
const want = await expected('${op}');
// The inputs, in buffers the mischief below takes away.
const bufs = {
  q: new ArrayBuffer(n(dims.sq) * 4), k: new ArrayBuffer(n(dims.sk) * 4), v: new ArrayBuffer(n(dims.sk) * 4),
  dout: new ArrayBuffer(n(dims.sq) * 4),
};
const q = fa.tensor(fill(new Float32Array(bufs.q), 1), shapeQ);
const k = fa.tensor(fill(new Float32Array(bufs.k), 2), shapeK);
const v = fa.tensor(fill(new Float32Array(bufs.v), 3), shapeK);
const dout = fa.tensor(fill(new Float32Array(bufs.dout), 4), shapeQ);
const call = '${op}' === 'forward'
  ? fa.flashAttention(q, k, v, opts)
  : fa.flashAttentionBackward(dout, q, k, v, want.f.out, want.f.lse, opts);
let settled = false;
call.then(() => (settled = true), () => (settled = true));
await sleep(5);
const pending = !settled;
${mischief}
for (let i = 0; i < 5; i++) { gc(); await sleep(5); }
let got;
try { got = await call; } catch (e) { report({ error: errorInfo(e) }); return; }
for (let i = 0; i < 3; i++) gc();
if ('${op}' === 'forward') report({ pending, same: same(got.out.data, want.out.data) && same(got.lse.data, want.lse.data) });
else report({ pending, same: ['dq', 'dk', 'dv'].every((t) => same(got[t].data, want.g[t].data)) });
`,
    { args: ['--expose-gc'], timeoutMs: 120_000 },
  );
  // The call must resolve with the answer it would have given untouched (its inputs were copied at
  // the start), and the process must survive the collection of the taken-away buffers.
  // pending: the mischief did land while the call ran (else the case proves nothing).
  expect(expectClean(r)).toEqual({ pending: true, same: true });
}

describe('hostile lifecycle: an input buffer taken away mid-call', () => {
  jest.setTimeout(180_000);

  it('k and v detached by structuredClone(…, { transfer }) mid-forward: same result, no crash', async () => {
    await detachCase(`
const moved = structuredClone([bufs.k, bufs.v], { transfer: [bufs.k, bufs.v] });
moved.length = 0;`);
  });

  it('q transferred to a MessagePort mid-forward, then both ports closed: same result, no crash', async () => {
    await detachCase(`
const { MessageChannel } = require('worker_threads');
const ch = new MessageChannel();
ch.port1.postMessage(bufs.q, [bufs.q]);
ch.port1.close(); ch.port2.close();`);
  });

  it('a resizable ArrayBuffer under k resized to 0 mid-forward: same result, no crash', async () => {
    const r = await runChild(
      `${SETUP}
const want = await expected('forward');
const rab = new ArrayBuffer(n(dims.sk) * 4, { maxByteLength: n(dims.sk) * 4 });
const q = fa.tensor(rand(n(dims.sq), 1), shapeQ);
const k = fa.tensor(fill(new Float32Array(rab, 0, n(dims.sk)), 2), shapeK);
const v = fa.tensor(rand(n(dims.sk), 3), shapeK);
const call = fa.flashAttention(q, k, v, opts);
let settled = false;
call.then(() => (settled = true), () => (settled = true));
await sleep(5);
const pending = !settled;
rab.resize(0);
for (let i = 0; i < 5; i++) { gc(); await sleep(5); }
let got;
try { got = await call; } catch (e) { report({ error: errorInfo(e) }); return; }
report({ pending, same: same(got.out.data, want.out.data) && same(got.lse.data, want.lse.data) });
`,
      { args: ['--expose-gc'], timeoutMs: 120_000 },
    );
    expect(expectClean(r)).toEqual({ pending: true, same: true });
  });

  it('dout, q and k detached mid-backward: same gradients, no crash', async () => {
    await detachCase(
      `
structuredClone([bufs.dout, bufs.q, bufs.k], { transfer: [bufs.dout, bufs.q, bufs.k] });`,
      'backward',
    );
  });

  it('v overwritten mid-forward does not change the result (inputs are copied at the call)', async () => {
    await detachCase(`new Float32Array(bufs.v).fill(1e30);`);
  });
});

// A worker that runs flashAttention calls; `mode` 'loop' awaits each, 'burst' starts many at once.
const workerBody = (mode: 'loop' | 'burst', op: 'forward' | 'backward'): string => `
const { parentPort } = require('worker_threads');
(async () => {
  const t = (s) => fa.tensor(new Float32Array(s.reduce((a, b) => a * b, 1)).fill(0.25), s);
  const q = t([1, 256, 4, 64]), k = t([1, 512, 4, 64]), v = t([1, 512, 4, 64]);
  const run = async () => {
    const f = await fa.flashAttention(q, k, v, { device: 'cpu', threads: 2 });
    if ('${op}' === 'backward') await fa.flashAttentionBackward(q, q, k, v, f.out, f.lse, { device: 'cpu', threads: 2 });
  };
  parentPort.postMessage('started');
  if ('${mode}' === 'loop') for (;;) await run();
  else await Promise.all(Array.from({ length: 64 }, run));
})();
`;

async function terminateCase(mode: 'loop' | 'burst', op: 'forward' | 'backward', rounds: number): Promise<void> {
  const r = await runChild(
    `
const { Worker } = require('worker_threads');
const code = require('fs').readFileSync(process.env.FLASHATTN_HOSTILE_PRELUDE, 'utf8') + ${JSON.stringify(workerBody(mode, op))};
const before = process.memoryUsage().rss;
for (let i = 0; i < ${rounds}; i++) {
  const w = new Worker(code, { eval: true });
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await sleep(${mode === 'loop' ? '20 + (i % 5) * 15' : 'i % 3'});
  await w.terminate();
}
// The main thread's own calls still work after all that.
const t = (s) => fa.tensor(new Float32Array(s.reduce((a, b) => a * b, 1)).fill(0.5), s);
const { out } = await fa.flashAttention(t([1, 4, 1, 8]), t([1, 4, 1, 8]), t([1, 4, 1, 8]), { device: 'cpu' });
report({ ok: out.data.every((x) => x === 0.5), rssGrowthMiB: (process.memoryUsage().rss - before) / 2 ** 20 });
`,
    { timeoutMs: 170_000 },
  );
  const result = expectClean(r) as { ok: boolean; rssGrowthMiB: number };
  expect(result.ok).toBe(true);
}

describe('hostile lifecycle: worker_threads terminated with calls in flight', () => {
  jest.setTimeout(180_000);
  const prelude = require('path').join(require('os').tmpdir(), `flashattn-hostile-prelude-${process.pid}.js`);
  beforeAll(() => {
    // Workers get the same loader as the child (minus report()), through a file named in the env.
    require('fs').writeFileSync(prelude, require('./child').PRELUDE);
    process.env.FLASHATTN_HOSTILE_PRELUDE = prelude;
  });
  afterAll(() => {
    require('fs').rmSync(prelude, { force: true });
  });

  it('a worker calling flashAttention in a loop, terminated 20 times: the process survives', async () => {
    await terminateCase('loop', 'forward', 20);
  });

  it('a worker with 64 calls queued on the thread pool, terminated 20 times: the process survives', async () => {
    await terminateCase('burst', 'forward', 20);
  });

  it('a worker running backward passes, terminated 10 times: the process survives', async () => {
    await terminateCase('loop', 'backward', 10);
  });
});
