// hostile-cuda.test.ts — the lifecycle mischief of test/hostile/ on the CUDA path: host buffers
// transferred and collected while a CUDA call on them is in flight, DeviceTensor inputs disposed
// right after the call starts, and worker_threads terminated with CUDA calls in flight. None of
// it may crash the process or change the answer. Every case runs in its own process.
import { PRELUDE, expectClean, runChild } from '../hostile/child';

// bf16 inputs big enough (64 MiB per K/V) that a freed buffer goes back to the system, and a call
// long enough (a few ms on an H200) for the mischief to land while it runs.
const SETUP = `
const dims = { b: 1, sq: 4096, sk: 16384, h: 16, d: 128 };
const n = (s) => dims.b * s * dims.h * dims.d;
const shapeQ = [dims.b, dims.sq, dims.h, dims.d], shapeK = [dims.b, dims.sk, dims.h, dims.d];
const bits = (len, seed) => { const a = new Uint16Array(len); let x = seed; for (let i = 0; i < len; i++) { x = (x * 1103515245 + 12345) >>> 0; a[i] = 0x3c00 + (x >>> 24); } return a; };
const opts = { device: 'cuda' };
const same = (a, b) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
const host = (len, seed) => { const buf = new ArrayBuffer(len * 2); new Uint16Array(buf).set(bits(len, seed)); return buf; };
`;

describe('hostile lifecycle on CUDA', () => {
  jest.setTimeout(180_000);

  it('host k and v transferred away and collected while the CUDA call runs: same answer, no crash', async () => {
    const r = await runChild(
      `${SETUP}
const mk = () => ({ q: host(n(dims.sq), 1), k: host(n(dims.sk), 2), v: host(n(dims.sk), 3) });
const t = (b, s) => fa.tensor(new Uint16Array(b), s, 'bfloat16');
const a = mk();
const want = await fa.flashAttention(t(a.q, shapeQ), t(a.k, shapeK), t(a.v, shapeK), opts);
let pending = 0;
for (let round = 0; round < 3; round++) {
  const b = mk();
  const call = fa.flashAttention(t(b.q, shapeQ), t(b.k, shapeK), t(b.v, shapeK), opts);
  let settled = false;
  call.then(() => (settled = true), () => (settled = true));
  structuredClone(b.k, { transfer: [b.k] });
  structuredClone(b.v, { transfer: [b.v] });
  pending += settled ? 0 : 1;
  for (let i = 0; i < 3; i++) gc();
  const got = await call;
  if (!same(got.out.data, want.out.data) || !same(got.lse.data, want.lse.data)) { report({ same: false, round }); return; }
}
report({ same: true, pending });
`,
      { args: ['--expose-gc'], timeoutMs: 150_000 },
    );
    const result = expectClean(r) as { same: boolean; pending: number };
    expect(result.same).toBe(true);
    expect(result.pending).toBeGreaterThan(0); // the transfers landed while a call was pending
  });

  it('DeviceTensor inputs disposed right after the call starts: the call still reads them', async () => {
    const r = await runChild(
      `${SETUP}
const up = (seed, s) => fa.DeviceTensor.from(fa.tensor(bits(s.reduce((x, y) => x * y, 1), seed), s, 'bfloat16'));
const q = await up(1, shapeQ), k = await up(2, shapeK), v = await up(3, shapeK);
const want = await fa.flashAttention(q, k, v);
const wantBits = await want.out.toHost();
const q2 = await up(1, shapeQ), k2 = await up(2, shapeK), v2 = await up(3, shapeK);
const call = fa.flashAttention(q2, k2, v2);
for (const x of [q2, k2, v2]) x.dispose();
for (let i = 0; i < 3; i++) gc();
const got = await call;
report({ same: same((await got.out.toHost()).data, wantBits.data) });
`,
      { args: ['--expose-gc'], timeoutMs: 150_000 },
    );
    expect((expectClean(r) as { same: boolean }).same).toBe(true);
  });

  describe('worker_threads terminated with CUDA calls in flight', () => {
    const prelude = require('path').join(require('os').tmpdir(), `flashattn-hostile-cuda-prelude-${process.pid}.js`);
    beforeAll(() => {
      require('fs').writeFileSync(prelude, PRELUDE);
      process.env.FLASHATTN_HOSTILE_PRELUDE = prelude;
    });
    afterAll(() => {
      require('fs').rmSync(prelude, { force: true });
    });

    for (const kind of ['host', 'device'] as const) {
      it(`a worker looping ${kind}-tensor CUDA calls, terminated 12 times: the process survives`, async () => {
        const body = `
const { parentPort } = require('worker_threads');
(async () => {
  const s = [1, 1024, 8, 128], sk = [1, 4096, 8, 128];
  const t = (shape) => fa.tensor(new Uint16Array(shape.reduce((a, b) => a * b, 1)).fill(0x3e80), shape, 'bfloat16');
  let q = t(s), k = t(sk), v = t(sk);
  if ('${kind}' === 'device') [q, k, v] = await Promise.all([q, k, v].map((x) => fa.DeviceTensor.from(x)));
  parentPort.postMessage('started');
  for (;;) {
    const rs = await Promise.all(Array.from({ length: 8 }, () => fa.flashAttention(q, k, v, { device: 'cuda' })));
    if ('${kind}' === 'device') for (const r of rs) { r.out.dispose(); r.lse.dispose(); }
  }
})();
`;
        const r = await runChild(
          `
const { Worker } = require('worker_threads');
const code = require('fs').readFileSync(process.env.FLASHATTN_HOSTILE_PRELUDE, 'utf8') + ${JSON.stringify(body)};
for (let i = 0; i < 12; i++) {
  const w = new Worker(code, { eval: true });
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await sleep(10 + (i % 4) * 10);
  await w.terminate();
}
// The main thread's own CUDA calls still work after all that.
const t = (s) => fa.tensor(new Uint16Array(s.reduce((a, b) => a * b, 1)).fill(0x3f00), s, 'bfloat16');
const { out } = await fa.flashAttention(t([1, 16, 2, 64]), t([1, 16, 2, 64]), t([1, 16, 2, 64]), { device: 'cuda' });
report({ ok: out.data.every((x) => x === 0x3f00) });
`,
          { timeoutMs: 170_000 },
        );
        expect((expectClean(r) as { ok: boolean }).ok).toBe(true);
      });
    }
  });
});
