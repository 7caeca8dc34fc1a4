// call-cost.ts — the host cost of one call through the public API, on the CPU backend with host
// tensors (no GPU needed): the whole awaited call, and its synchronous part (until the call has
// returned its Promise), split into the TypeScript layer and the addon's request read + enqueue.
//   node dist/scripts/call-cost.js [--iters N] [--json FILE]
// A benchmark, not a test: medians after warm-up, plain process.hrtime.bigint() timing.
import { writeFileSync } from 'node:fs';

import { binding } from '../src-ts/binding';
import { forwardFlat } from '../src-ts/flat';
import type { NativeDeviceBuffer } from '../src-ts/binding';
import { DeviceTensor, flashAttention, tensor, toBfloat16 } from '../src-ts/index';
import type { HostTensor } from '../src-ts/tensor';

const TINY = { batch: 1, seqlenQ: 1, seqlenK: 128, heads: 8, headDim: 128 };

/** 'forwardFlat' when the addon has it (what flashAttention() calls), else 'forward'. */
const apiForward = (): string => ('forwardFlat' in binding() ? 'forwardFlat' : 'forward');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const nowUs = (): number => Number(process.hrtime.bigint()) / 1e3;

function inputs(dtype: 'float32' | 'bfloat16'): { q: HostTensor; k: HostTensor; v: HostTensor } {
  const mk = (seq: number): HostTensor => {
    const n = TINY.batch * seq * TINY.heads * TINY.headDim;
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = Math.random() * 2 - 1;
    const shape = [TINY.batch, seq, TINY.heads, TINY.headDim];
    return dtype === 'float32' ? tensor(f, shape) : tensor(toBfloat16(f), shape, 'bfloat16');
  };
  return { q: mk(TINY.seqlenQ), k: mk(TINY.seqlenK), v: mk(TINY.seqlenK) };
}

/** The addon's own trace (FLASHATTN_TRACE=1), microseconds from the call's start: the request
 * read, and the end of the synchronous part (inputs copied, outputs bound, the work queued). */
interface Trace {
  parseUs: number;
  enqueueUs: number;
}

interface Split extends Trace {
  awaitedUs: number;
  syncUs: number;
  tsUs: number;
  addonSyncUs: number;
  syncP10Us: number;
  parseP10Us: number;
}

const p10 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 10)];

/** The public API: awaited call, its synchronous part, and within that the TypeScript layer before
 * the addon and the addon's own synchronous part (binding().forward wrapped to time it). */
async function api(dtype: 'float32' | 'bfloat16', given: boolean, iters: number, warm: number): Promise<Split> {
  const { q, k, v } = inputs(dtype);
  const out: HostTensor =
    dtype === 'float32' ? tensor(new Float32Array(q.data.length), [...q.shape]) : tensor(new Uint16Array(q.data.length), [...q.shape], dtype);
  const lse = tensor(new Float32Array(TINY.batch * TINY.heads * TINY.seqlenQ), [TINY.batch, TINY.heads, TINY.seqlenQ]);
  const opts = given ? { device: 'cpu' as const, threads: 1, out, lse } : { device: 'cpu' as const, threads: 1 };
  // The addon function the public forward calls: forwardFlat where the addon has it.
  const b = binding() as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const name = apiForward();
  const orig = b[name];
  let tIn = 0;
  let tOut = 0;
  let trace: Trace | undefined;
  b[name] = function (this: unknown, ...args: unknown[]) {
    tIn = nowUs();
    const pr = orig.apply(this, args);
    tOut = nowUs();
    return pr.then((res) => {
      trace = (res as { trace?: Trace }).trace;
      return res;
    });
  };
  const awaited: number[] = [];
  const sync: number[] = [];
  const ts: number[] = [];
  const addon: number[] = [];
  const parse: number[] = [];
  const enqueue: number[] = [];
  try {
    for (let i = 0; i < warm + iters; i++) {
      const t0 = nowUs();
      const p = flashAttention(q, k, v, opts);
      const t1 = nowUs();
      await p;
      const t2 = nowUs();
      if (i < warm) continue;
      awaited.push(t2 - t0);
      sync.push(t1 - t0);
      ts.push(tIn - t0);
      addon.push(tOut - tIn);
      if (trace) {
        parse.push(trace.parseUs);
        enqueue.push(trace.enqueueUs);
      }
    }
  } finally {
    b[name] = orig;
  }
  return {
    awaitedUs: median(awaited),
    syncUs: median(sync),
    tsUs: median(ts),
    addonSyncUs: median(addon),
    parseUs: median(parse),
    enqueueUs: median(enqueue),
    syncP10Us: p10(sync),
    parseP10Us: p10(parse),
  };
}

/** The addon called directly with a request built once (no TypeScript layer): forward(req), or
 * forwardFlat with the same request when `flat`. */
async function direct(dtype: 'float32' | 'bfloat16', iters: number, warm: number, flat = false) {
  const { q, k, v } = inputs(dtype);
  const arg = (t: HostTensor) => ({ data: t.data, shape: [...t.shape], dtype: t.dtype });
  const req = {
    backend: 'cpu' as const, device: 0, scale: 1 / Math.sqrt(TINY.headDim), windowLeft: -1, windowRight: -1,
    threads: 1, poison: false, naive: false, q: arg(q), k: arg(k), v: arg(v),
  };
  const b = binding();
  const awaited: number[] = [];
  const sync: number[] = [];
  const parse: number[] = [];
  for (let i = 0; i < warm + iters; i++) {
    const t0 = nowUs();
    const p = flat ? forwardFlat(b, req) : b.forward(req);
    const t1 = nowUs();
    const res = (await p) as { trace?: Trace };
    const t2 = nowUs();
    if (i < warm) continue;
    awaited.push(t2 - t0);
    sync.push(t1 - t0);
    if (res.trace) parse.push(res.trace.parseUs);
  }
  return { awaitedUs: median(awaited), syncUs: median(sync), parseUs: median(parse), parseP10Us: p10(parse) };
}

/** A DeviceBuffer look-alike: the TypeScript layer's DeviceTensor path runs on it with the addon's
 * probe, select and forward stubbed (no GPU here), so this times that layer alone. */
function fakeBuffer(bytes: number): NativeDeviceBuffer {
  return {
    device: 0,
    bytes,
    disposed: false,
    dispose() {
      (this as { disposed: boolean }).disposed = true;
    },
    upload: () => Promise.resolve(),
    download: () => Promise.resolve(),
  };
}

/** The TypeScript layer of a DeviceTensor call (bf16), the addon stubbed: the synchronous part
 * and the awaited call (outputs wrapped into DeviceTensors and disposed). Run last: it replaces
 * the binding's probe, select and forward for the rest of the process. */
async function tsDevice(iters: number, warm: number) {
  const b = binding() as unknown as Record<string, unknown>;
  const real = b.probe as () => Record<string, unknown>;
  b.probe = () => ({
    ...real(),
    build: 'cuda',
    devices: [{ index: 0, name: 'stub', capability: [9, 0], smCount: 132, totalMemory: 1, freeMemory: 1, paths: ['sm90'] }],
  });
  b.select = () => ({ path: 'sm90', kernelHeadDim: 128, reason: '' });
  const { batch, seqlenQ, seqlenK, heads, headDim } = TINY;
  b[apiForward()] = () =>
    Promise.resolve({ out: fakeBuffer(batch * seqlenQ * heads * headDim * 2), lse: fakeBuffer(batch * heads * seqlenQ * 4) });
  const dev = (seq: number) => DeviceTensor.fromBuffer(fakeBuffer(batch * seq * heads * headDim * 2), [batch, seq, heads, headDim], 'bfloat16');
  const [q, k, v] = [dev(seqlenQ), dev(seqlenK), dev(seqlenK)];
  const awaited: number[] = [];
  const sync: number[] = [];
  for (let i = 0; i < warm + iters; i++) {
    const t0 = nowUs();
    const p = flashAttention(q, k, v);
    const t1 = nowUs();
    const r = await p;
    r.out.dispose();
    r.lse.dispose();
    const t2 = nowUs();
    if (i < warm) continue;
    awaited.push(t2 - t0);
    sync.push(t1 - t0);
  }
  return { awaitedUs: median(awaited), syncUs: median(sync), syncP10Us: p10(sync) };
}

async function main(): Promise<void> {
  process.env.FLASHATTN_TRACE = '1'; // read by the addon at its first settle
  const at = (flag: string) => process.argv.indexOf(flag);
  const iters = at('--iters') > 0 ? Number(process.argv[at('--iters') + 1]) : 20000;
  const warm = Math.max(500, iters / 10);
  const rows: Array<[string, string]> = [];
  const results: Record<string, unknown> = {};
  for (const dtype of ['float32', 'bfloat16'] as const) {
    for (const given of [false, true]) {
      const r = await api(dtype, given, iters, warm);
      const name = `API ${dtype}${given ? ', out/lse given' : ''}`;
      results[name] = r;
      rows.push([
        name,
        `awaited ${r.awaitedUs.toFixed(1)} us, sync ${r.syncUs.toFixed(1)} us ` +
          `(TS ${r.tsUs.toFixed(1)} + addon ${r.addonSyncUs.toFixed(1)}: request read ${r.parseUs.toFixed(1)}, ` +
          `enqueued at ${r.enqueueUs.toFixed(1)})`,
      ]);
    }
    for (const flat of [false, true]) {
      const d = await direct(dtype, iters, warm, flat);
      const name = `addon directly ${dtype}${flat ? ', flat request' : ''}`;
      results[name] = d;
      rows.push([
        name,
        `awaited ${d.awaitedUs.toFixed(1)} us, sync ${d.syncUs.toFixed(1)} us (request read ${d.parseUs.toFixed(1)}, ` +
          `p10 ${d.parseP10Us.toFixed(1)})`,
      ]);
    }
  }
  const td = await tsDevice(iters, warm);
  results['TS layer, DeviceTensors, addon stubbed'] = td;
  rows.push([
    'TS layer, DeviceTensors bf16, addon stubbed',
    `awaited ${td.awaitedUs.toFixed(1)} us, sync ${td.syncUs.toFixed(1)} us (p10 ${td.syncP10Us.toFixed(1)})`,
  ]);
  console.log(`tiny shape b${TINY.batch} sq${TINY.seqlenQ} sk${TINY.seqlenK} h${TINY.heads} d${TINY.headDim}, ` +
    `CPU backend, host tensors, threads 1; medians of ${iters} calls after ${warm} warm-up`);
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [a, b] of rows) console.log(`${a.padEnd(w)}  ${b}`);
  if (at('--json') > 0) writeFileSync(process.argv[at('--json') + 1], JSON.stringify({ shape: TINY, iters, results }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
