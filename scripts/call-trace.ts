// call-trace.ts — where the time of a call goes, on the GPU's clock and the host's, through the
// public API with DeviceTensors. Run with FLASHATTN_TRACE=gpu (the addon then records two timing
// events around each kernel): per scenario, the wall time per call, and the medians of the addon's
// trace: the kernel's GPU time, the GPU's idle time before it (from the previous traced kernel's
// end on the same stream), and the host milestones from the call's start.
//   FLASHATTN_TRACE=gpu node dist/scripts/call-trace.js [--json FILE]
// A diagnostic, not a test: it prints what it saw and asserts nothing.
import { writeFileSync } from 'node:fs';

import { binding } from '../src-ts/binding';
import { type Trace, captureTraces } from './trace-capture';
import { DeviceTensor, Stream, flashAttention, flashAttentionVarlen, tensor, toBfloat16 } from '../src-ts/index';

const KEYS = ['kernelUs', 'gapUs', 'parseUs', 'planUs', 'launchUs', 'enqueueUs', 'doneUs', 'settleUs'];

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

let traces: Trace[] = [];

async function random(shape: number[]): Promise<DeviceTensor> {
  const f = new Float32Array(shape.reduce((a, x) => a * x, 1));
  for (let i = 0; i < f.length; i++) f[i] = Math.random() * 2 - 1;
  return DeviceTensor.from(tensor(toBfloat16(f), shape, 'bfloat16'));
}

type Call = () => Promise<{ out: unknown; lse: unknown }>;
const asAny = <T>(x: T) => x as unknown as DeviceTensor;
const dispose = (r: { out: unknown; lse: unknown }) => {
  (r.out as DeviceTensor).dispose();
  (r.lse as DeviceTensor).dispose();
};

/** Rounds of `inflight` calls at once (1: awaited one at a time); wall ms per call and trace medians. */
async function scenario(call: Call, inflight: number, rounds: number, warm: number) {
  for (let i = 0; i < warm; i++) dispose(await call());
  traces.length = 0;
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = nowMs();
    const rs = await Promise.all(Array.from({ length: inflight }, call));
    per.push((nowMs() - t0) / inflight);
    rs.forEach(dispose);
  }
  const med: Trace = {};
  for (const k of KEYS) med[k] = median(traces.map((t) => t[k]).filter((x) => typeof x === 'number'));
  return { msPerCall: median(per), ...med } as Trace & { msPerCall: number };
}

/** Median kernel µs of the addon's CUDA-event bench for a bf16 d128 forward (what the bench reports),
 * with what ran and the host time of its enqueue. */
async function benchUs(batch: number, s: number, heads: number, causal: boolean, seqlenQ = s, env?: string): Promise<string> {
  const r = await binding().bench({
    op: 'forward', naive: false, device: 0, dtype: 'bfloat16', batch, seqlenQ, seqlenK: s, headsQ: heads, headsKV: heads,
    headDim: 128, scale: 1 / Math.sqrt(128), windowLeft: -1, windowRight: causal ? 0 : -1, deterministic: false, warmup: 10, iters: 50,
  });
  return `${(median(r.ms) * 1000).toFixed(1)} us (${r.kernel}; host enqueue ${r.hostLaunchUs?.toFixed(1)} us)${env ?? ''}`;
}

async function main(): Promise<void> {
  if (process.env.FLASHATTN_TRACE !== 'gpu') console.warn('call-trace: set FLASHATTN_TRACE=gpu for the GPU columns');
  traces = captureTraces();
  const jsonAt = process.argv.indexOf('--json');
  const mk = async (b: number, s: number, h: number) => ({ q: await random([b, s, h, 128]), k: await random([b, s, h, 128]), v: await random([b, s, h, 128]) });
  const stream = new Stream(0);
  const tiny = { q: await random([1, 1, 8, 128]), k: await random([1, 128, 8, 128]), v: await random([1, 128, 8, 128]) };
  const mid = await mk(1, 2048, 16);
  const big = await mk(2, 8192, 16);
  const pad = await mk(4, 4096, 16);
  const LENS = [4096, 3072, 2048, 2048, 1024, 1024, 1024, 512, 512, 320, 256, 128, 128, 64, 64, 64];
  const total = LENS.reduce((a, x) => a + x, 0);
  const cu = Int32Array.from([0, ...LENS.map((_, i) => LENS.slice(0, i + 1).reduce((a, x) => a + x, 0))]);
  const packed = { q: await random([total, 16, 128]), k: await random([total, 16, 128]), v: await random([total, 16, 128]) };
  const cuDev = await DeviceTensor.from(tensor(cu, [cu.length], 'int32'));

  const rows: Array<[string, Awaited<ReturnType<typeof scenario>>]> = [];
  const add = async (name: string, call: Call, inflight: number, rounds: number, warm: number) => {
    rows.push([name, await scenario(call, inflight, rounds, warm)]);
  };
  await add('tiny awaited', () => flashAttention(tiny.q, tiny.k, tiny.v), 1, 2000, 200);
  await add('tiny awaited, one Stream', () => flashAttention(tiny.q, tiny.k, tiny.v, { stream }), 1, 2000, 200);
  await add('b1 s2048 causal awaited', () => flashAttention(mid.q, mid.k, mid.v, { causal: true }), 1, 200, 20);
  await add('b1 s2048 causal 64 in flight, one Stream', () => flashAttention(mid.q, mid.k, mid.v, { causal: true, stream }), 64, 5, 5);
  await add('b2 s8192 causal awaited', () => flashAttention(big.q, big.k, big.v, { causal: true }), 1, 30, 5);
  await add('b4 s4096 full 20 in flight, one Stream', () => flashAttention(pad.q, pad.k, pad.v, { stream }), 20, 5, 3);
  await add('b4 s4096 causal 20 in flight, one Stream', () => flashAttention(pad.q, pad.k, pad.v, { causal: true, stream }), 20, 5, 3);
  for (const causal of [false, true]) {
    await add(`varlen 16 seqs ${causal ? 'causal' : 'full'} 20 in flight (host cu)`,
      () => flashAttentionVarlen(packed.q, packed.k, packed.v, { cuSeqlensQ: cu, cuSeqlensK: cu, causal, stream }), 20, 5, 3);
    await add(`varlen 16 seqs ${causal ? 'causal' : 'full'} awaited (host cu)`,
      () => flashAttentionVarlen(packed.q, packed.k, packed.v, { cuSeqlensQ: cu, cuSeqlensK: cu, causal, stream }), 1, 20, 3);
    await add(`varlen 16 seqs ${causal ? 'causal' : 'full'} 20 in flight (device cu)`,
      () => flashAttentionVarlen(packed.q, packed.k, packed.v, { cuSeqlensQ: asAny(cuDev) as never, cuSeqlensK: asAny(cuDev) as never, causal, stream }), 20, 5, 3).catch((e) => {
      console.log(`varlen with device cu: ${(e as Error).message}`);
    });
  }
  const benches: Array<[string, string]> = [
    ['tiny b1 sq1 sk128 h8', await benchUs(1, 128, 8, false, 1)],
    ['b1 s2048 h16 causal', await benchUs(1, 2048, 16, true)],
    ['b2 s8192 h16 causal', await benchUs(2, 8192, 16, true)],
    ['b4 s4096 h16 full', await benchUs(4, 4096, 16, false)],
    ['b4 s4096 h16 causal', await benchUs(4, 4096, 16, true)],
  ];
  for (const [name, us] of benches) console.log(`bench kernel ${name}: ${us}`);
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log(['scenario'.padEnd(52), 'ms/call', 'kernel', 'gap', 'parse', 'plan', 'launch', 'sync', 'done', 'settle'].join(' | '));
  for (const [name, r] of rows) {
    console.log([name.padEnd(52), f(r.msPerCall, 4), f(r.kernelUs), f(r.gapUs), f(r.parseUs), f(r.planUs), f(r.launchUs), f(r.enqueueUs), f(r.doneUs), f(r.settleUs)].join(' | '));
  }
  console.log('(µs medians; kernel and gap on the GPU clock, the rest on the host from the call start)');
  if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify(Object.fromEntries(rows), null, 2));
  stream.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
