// latency.ts — per-call cost of the execution core through the public API with DeviceTensors,
// against the kernel time the addon's bench() measures with CUDA events for the same shapes.
//   node dist/scripts/latency.js [--json FILE]
// A benchmark, not a test: it prints what it saw and the ratios against the bars of the
// execution-core issue, and asserts nothing.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';

import { binding } from '../src-ts/binding';
import { forwardFlat } from '../src-ts/flat';
import { DeviceTensor, Stream, flashAttention, probe, tensor, toBfloat16 } from '../src-ts/index';

interface Shape {
  batch: number;
  seqlenQ: number;
  seqlenK: number;
  heads: number;
  headDim: number;
  causal: boolean;
}

const TINY: Shape = { batch: 1, seqlenQ: 1, seqlenK: 128, heads: 8, headDim: 128, causal: false };
const MID: Shape = { batch: 1, seqlenQ: 2048, seqlenK: 2048, heads: 16, headDim: 128, causal: true };
const BIG: Shape = { batch: 2, seqlenQ: 8192, seqlenK: 8192, heads: 16, headDim: 128, causal: true };

/** 'forwardFlat' when the addon has it (what flashAttention() calls), else 'forward'. */
const apiForward = (): string => ('forwardFlat' in binding() ? 'forwardFlat' : 'forward');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const now = (): number => Number(process.hrtime.bigint()) / 1e6; // ms
const flops = (s: Shape): number => (4 * s.batch * s.heads * s.seqlenQ * s.seqlenK * s.headDim) / (s.causal ? 2 : 1);

async function inputs(s: Shape) {
  const mk = async (seq: number) => {
    const n = s.batch * seq * s.heads * s.headDim;
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = Math.random() * 2 - 1;
    return DeviceTensor.from(tensor(toBfloat16(f), [s.batch, seq, s.heads, s.headDim], 'bfloat16'));
  };
  return { q: await mk(s.seqlenQ), k: await mk(s.seqlenK), v: await mk(s.seqlenK) };
}

/** Median kernel time (ms) of the sm80 forward for `s`, from the addon's CUDA-event bench. */
async function kernelMs(s: Shape): Promise<number> {
  const r = await binding().bench({
    op: 'forward', naive: false, device: 0, dtype: 'bfloat16', batch: s.batch, seqlenQ: s.seqlenQ, seqlenK: s.seqlenK,
    headsQ: s.heads, headsKV: s.heads, headDim: s.headDim, scale: 1 / Math.sqrt(s.headDim), windowLeft: -1,
    windowRight: s.causal ? 0 : -1, deterministic: false, warmup: 10, iters: 50,
  });
  return median(r.ms);
}

/** Median ms of one awaited call: outputs allocated by the call and disposed after it, or
 * (given) written into the same two tensors every time. */
async function awaited(s: Shape, n: number, warm: number, given = false, gc?: GcCount): Promise<number> {
  const { q, k, v } = await inputs(s);
  if (gc) await gc.start(); // the inputs' host arrays are made and collected before counting
  const opts = given
    ? {
        causal: s.causal,
        out: DeviceTensor.empty([s.batch, s.seqlenQ, s.heads, s.headDim], 'bfloat16'),
        lse: DeviceTensor.empty([s.batch, s.heads, s.seqlenQ], 'float32'),
      }
    : { causal: s.causal };
  const times: number[] = [];
  for (let i = 0; i < warm + n; i++) {
    const t0 = now();
    const r = await flashAttention(q, k, v, opts);
    const t1 = now();
    if (!given) {
      r.out.dispose();
      r.lse.dispose();
    }
    if (i >= warm) times.push(t1 - t0);
  }
  if (gc) await gc.stop();
  for (const t of [q, k, v]) t.dispose();
  return median(times);
}

/** Garbage collections (count, ms) between start() and stop(). */
class GcCount {
  count = 0;
  ms = 0;
  #obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.count++;
      this.ms += e.duration;
    }
  });

  async start(): Promise<void> {
    await new Promise((r) => setImmediate(r)); // GC entries from before are delivered first
    this.#obs.observe({ entryTypes: ['gc'] });
  }

  async stop(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.#obs.disconnect();
  }
}

/** ms per call with `inflight` calls issued at once on `streams` Streams (median of rounds). */
async function inFlight(s: Shape, inflight: number, streamCount: number, rounds: number): Promise<number> {
  const { q, k, v } = await inputs(s);
  const streams = Array.from({ length: streamCount }, () => new Stream(0));
  const per: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    const t0 = now();
    const res = await Promise.all(
      Array.from({ length: inflight }, (_, i) => flashAttention(q, k, v, { causal: s.causal, stream: streams[i % streamCount] })),
    );
    const t1 = now();
    for (const x of res) {
      x.out.dispose();
      x.lse.dispose();
    }
    if (r > 0) per.push((t1 - t0) / inflight);
  }
  for (const t of [q, k, v]) t.dispose();
  for (const st of streams) st.dispose();
  return median(per);
}

type Trace = { parseUs: number; planUs: number; launchUs: number; enqueueUs: number; doneUs: number; settleUs: number };
const TRACE_KEYS = ['parseUs', 'planUs', 'launchUs', 'enqueueUs', 'doneUs', 'settleUs'] as const;

/** The addon called directly (no TypeScript layer): median ms per call, and the medians of the
 * addon's own trace (FLASHATTN_TRACE, each from the call's start). Outputs given (written into
 * the same two tensors every time), or (allocate) made by the addon and disposed after the call;
 * through forwardFlat (the public forward's request) when `flat`. */
async function raw(s: Shape, n: number, warm: number, inflight = 1, allocate = false, flat = false) {
  const { q, k, v } = await inputs(s);
  const out = DeviceTensor.empty([s.batch, s.seqlenQ, s.heads, s.headDim], 'bfloat16');
  const lse = DeviceTensor.empty([s.batch, s.heads, s.seqlenQ], 'float32');
  const arg = (t: DeviceTensor) => ({ data: t.acquire('latency'), shape: [...t.shape], dtype: t.dtype });
  const req = {
    backend: 'cuda' as const, device: 0, scale: 1 / Math.sqrt(s.headDim), windowLeft: -1, windowRight: s.causal ? 0 : -1,
    threads: 0, naive: false, q: arg(q), k: arg(k), v: arg(v), ...(allocate ? {} : { out: arg(out), lse: arg(lse) }),
  };
  const b = binding();
  const ms: number[] = [];
  const disposeUs: number[] = [];
  const tr: Record<string, number[]> = Object.fromEntries(TRACE_KEYS.map((key) => [key, []]));
  for (let i = 0; i < warm + n; i++) {
    const t0 = now();
    const rs = (await Promise.all(Array.from({ length: inflight }, () => (flat ? forwardFlat(b, req) : b.forward(req))))) as unknown as Array<{
      out?: { dispose(): void };
      lse?: { dispose(): void };
      trace?: Trace;
    }>;
    const t1 = now();
    if (allocate) {
      for (const r of rs) {
        r.out?.dispose();
        r.lse?.dispose();
      }
    }
    const t2 = now();
    if (i < warm) continue;
    ms.push((t1 - t0) / inflight);
    disposeUs.push(((t2 - t1) * 1000) / inflight);
    const last = rs[rs.length - 1].trace;
    if (last) for (const key of TRACE_KEYS) tr[key].push(last[key]);
  }
  const med = Object.fromEntries(TRACE_KEYS.map((key) => [key, tr[key].length ? median(tr[key]) : NaN])) as Trace;
  return { ms: median(ms), disposeUs: median(disposeUs), ...med };
}

/** One awaited public-API call, split: the TypeScript layer before the addon (t0 to the addon's
 * forward), the addon's synchronous part, until the promise resumes the caller, and dispose. */
async function apiSplit(s: Shape, n: number, warm: number) {
  const { q, k, v } = await inputs(s);
  // The addon function the public forward calls: forwardFlat where the addon has it.
  const b = binding() as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const name = apiForward();
  const orig = b[name];
  let tIn = 0;
  let tOut = 0;
  b[name] = function (this: unknown, ...args: unknown[]) {
    tIn = now();
    const pr = orig.apply(this, args);
    tOut = now();
    return pr;
  };
  const pre: number[] = [];
  const sync: number[] = [];
  const rest: number[] = [];
  const disp: number[] = [];
  try {
    for (let i = 0; i < warm + n; i++) {
      const t0 = now();
      const r = await flashAttention(q, k, v, { causal: s.causal });
      const t1 = now();
      r.out.dispose();
      r.lse.dispose();
      const t2 = now();
      if (i < warm) continue;
      pre.push((tIn - t0) * 1000);
      sync.push((tOut - tIn) * 1000);
      rest.push((t1 - tOut) * 1000);
      disp.push((t2 - t1) * 1000);
    }
  } finally {
    b[name] = orig;
  }
  for (const t of [q, k, v]) t.dispose();
  return { preUs: median(pre), syncUs: median(sync), restUs: median(rest), disposeUs: median(disp) };
}

async function main(): Promise<void> {
  // The addon reads FLASHATTN_TRACE at its first settle, and a traced call pays for its trace
  // object (a few µs): the bar rows run untraced, the addon's own milestones in a child process.
  const traced = process.argv.includes('--traced');
  if (traced) process.env.FLASHATTN_TRACE = '1';
  const jsonAt = process.argv.indexOf('--json');
  const report = probe();
  const dev = report.devices[0];
  if (!dev || dev.paths.length === 0) throw new Error(`latency: no usable CUDA device (${report.cudaError || 'none'})`);
  console.log(`device: ${dev.name} (sm_${dev.capability.join('')}), addon ${report.addonPath}`);
  const print = (rows: Array<[string, string, string, string]>) => {
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padStart(w[2])}  ${r[3]}`);
  };
  if (traced) {
    const rawTiny = await raw(TINY, 3000, 300);
    const rawTinyAlloc = await raw(TINY, 3000, 300, 1, true);
    const rawTinyFlat = await raw(TINY, 3000, 300, 1, true, true);
    const rawMid64 = await raw(MID, 5, 1, 64);
    const rawBig = await raw(BIG, 20, 3);
    const rawBigAlloc = await raw(BIG, 20, 3, 1, true);
    const splitTiny = await apiSplit(TINY, 3000, 300);
    const splitBig = await apiSplit(BIG, 20, 3);
    const traceRow = (name: string, r: Awaited<ReturnType<typeof raw>>): [string, string, string, string] => [
      name, `${(r.ms * 1000).toFixed(1)} us`, `sync ${r.enqueueUs.toFixed(1)} us`,
      `parse ${r.parseUs.toFixed(1)}, outputs+plan ${r.planUs.toFixed(1)}, launched ${r.launchUs.toFixed(1)}, ` +
        `done seen ${r.doneUs.toFixed(1)}, settled ${r.settleUs.toFixed(1)} us (from call start); dispose ${r.disposeUs.toFixed(1)} us`,
    ];
    const splitRow = (name: string, r: Awaited<ReturnType<typeof apiSplit>>): [string, string, string, string] => [
      name, `TS before addon ${r.preUs.toFixed(1)} us`, `addon sync ${r.syncUs.toFixed(1)} us`,
      `then until resumed ${r.restUs.toFixed(1)} us; dispose ${r.disposeUs.toFixed(1)} us`,
    ];
    print([
      traceRow('addon directly, tiny, outputs given', rawTiny),
      traceRow('addon directly, tiny, outputs allocated', rawTinyAlloc),
      traceRow('addon directly, flat request, tiny, outputs allocated', rawTinyFlat),
      traceRow('addon directly, b1 s2048 causal, 64 in flight', rawMid64),
      traceRow('addon directly, b2 s8192 causal', rawBig),
      traceRow('addon directly, b2 s8192 causal, outputs allocated', rawBigAlloc),
      splitRow('API, tiny, outputs allocated', splitTiny),
      splitRow('API, b2 s8192 causal, outputs allocated', splitBig),
    ]);
    if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ device: dev.name, rawTiny, rawTinyAlloc, rawTinyFlat, rawMid64, rawBig, rawBigAlloc, splitTiny, splitBig }, null, 2));
    return;
  }

  const tinyUs = (await awaited(TINY, 5000, 500)) * 1000;
  // Kernel time and call time alternate (three times each, medians of each): the GPU's clock
  // moves with its load and temperature, and a ratio is only fair between neighbours.
  const alternate = async (measure: () => Promise<number>, s: Shape) => {
    const k: number[] = [];
    const m: number[] = [];
    for (let i = 0; i < 3; i++) {
      k.push(await kernelMs(s));
      m.push(await measure());
    }
    return { kernel: median(k), call: median(m) };
  };
  const midA = await alternate(() => awaited(MID, 100, 10), MID);
  const flightGc = new GcCount();
  await flightGc.start();
  const mid64A = await alternate(() => inFlight(MID, 64, 1, 5), MID);
  await flightGc.stop();
  const mid64x4 = await inFlight(MID, 64, 4, 5);
  const midKernel = median([midA.kernel, mid64A.kernel]);
  const midAwaited = midA.call;
  const mid64 = mid64A.call;
  const gc = new GcCount();
  const usedBefore = probe().devices[0];
  const bigA = await alternate(() => awaited(BIG, 30, 5, false, gc), BIG);
  const bigKernel = bigA.kernel;
  const bigAwaited = bigA.call;
  const usedAfter = probe().devices[0];
  const tinyGc = new GcCount();
  const tinyAgain = (await awaited(TINY, 5000, 500, false, tinyGc)) * 1000;
  const bigGiven = await awaited(BIG, 30, 5, true);
  const tinyGiven = (await awaited(TINY, 3000, 300, true)) * 1000;
  const tf = (s: Shape, ms: number) => flops(s) / (ms * 1e-3) / 1e12;
  const rows: Array<[string, string, string, string]> = [
    ['awaited tiny call (b1 sq1 sk128 h8 d128)', `${tinyUs.toFixed(1)} us`, '<= 30 us', (30 / tinyUs).toFixed(2) + 'x of budget'],
    ['b1 s2048 h16 d128 causal: kernel', `${midKernel.toFixed(3)} ms`, `${tf(MID, midKernel).toFixed(0)} TFLOP/s`, '1.00'],
    ['  awaited one at a time', `${midAwaited.toFixed(3)} ms`, `${tf(MID, midAwaited).toFixed(0)} TFLOP/s`, (midA.kernel / midAwaited).toFixed(2) + ' (bar 0.70)'],
    ['  64 in flight, one Stream', `${mid64.toFixed(3)} ms`, `${tf(MID, mid64).toFixed(0)} TFLOP/s`, (mid64A.kernel / mid64).toFixed(2) + ' (bar 0.90)'],
    ['  64 in flight, four Streams', `${mid64x4.toFixed(3)} ms`, `${tf(MID, mid64x4).toFixed(0)} TFLOP/s`, (midKernel / mid64x4).toFixed(2)],
    ['b2 s8192 h16 d128 causal: kernel', `${bigKernel.toFixed(3)} ms`, `${tf(BIG, bigKernel).toFixed(0)} TFLOP/s`, '1.00'],
    ['  awaited one at a time', `${bigAwaited.toFixed(3)} ms`, `${tf(BIG, bigAwaited).toFixed(0)} TFLOP/s`, (bigKernel / bigAwaited).toFixed(2) + ' (bar 0.95)'],
    ['  awaited, out/lse given', `${bigGiven.toFixed(3)} ms`, `${tf(BIG, bigGiven).toFixed(0)} TFLOP/s`, (bigKernel / bigGiven).toFixed(2)],
    ['tiny awaited, out/lse given', `${tinyGiven.toFixed(1)} us`, '', ''],
    ['device memory used across the b2 s8192 awaited run', `${((usedBefore.totalMemory - usedBefore.freeMemory) / 2 ** 20).toFixed(0)} MiB`, `${((usedAfter.totalMemory - usedAfter.freeMemory) / 2 ** 20).toFixed(0)} MiB`, ''],
    ['GCs during the b2 s8192 awaited runs (3 x 35 calls)', `${gc.count}`, `${gc.ms.toFixed(1)} ms`, ''],
    ['GCs during the b1 s2048 in-flight runs (3 x 6 x 64 calls)', `${flightGc.count}`, `${flightGc.ms.toFixed(1)} ms`, ''],
    ['GCs during 5500 awaited tiny calls', `${tinyGc.count}`, `${tinyGc.ms.toFixed(1)} ms`, `(that run: ${tinyAgain.toFixed(1)} us a call)`],
  ];
  print(rows);
  if (jsonAt > 0) {
    writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ device: dev.name, tinyUs, midKernel, midAwaited, mid64, mid64x4, bigKernel, bigAwaited, bigGiven, tinyGiven }, null, 2));
  }
  console.log('the addon\'s own milestones (FLASHATTN_TRACE=1, a child process):');
  const child = spawnSync(process.execPath, [__filename, '--traced', ...(jsonAt > 0 ? ['--json', `${process.argv[jsonAt + 1]}.traced.json`] : [])], {
    stdio: 'inherit',
  });
  if (child.status !== 0) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
