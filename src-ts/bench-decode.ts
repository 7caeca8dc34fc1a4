// bench-decode.ts — `flashattn bench --decode`: the split-KV decode kernels (flashAttentionWithKVCache
// on DeviceTensors) in TB/s of K/V read, contiguous and paged, against PyTorch's SDPA on the same
// shapes in the same run, and the same calls through the public API.
import { writeFileSync } from 'node:fs';
import type { NativeDType } from './binding';
import { DeviceTensor } from './device-tensor';
import { FlashAttentionError, rewrap } from './errors';
import { flashAttentionWithKVCache } from './kvcache';
import { type ProbeReport, cudaVersionString, native, noGpuReason, probe } from './probe';
import { Stream } from './stream';
import { tensor } from './tensor';
import { toBfloat16, toFloat16 } from './dtype';
import { median, runTorchScript, withTorch, type BenchOptions } from './bench';

const BATCHES = [1, 16, 64];
const CONTEXTS = [1024, 4096, 8192, 16384, 32768, 65536, 131072];
const CONTEXTS_QUICK = [4096, 8192, 131072];
const PAGES = [0, 16, 256];
const PAGES_QUICK = [0, 16];
const HEADS_Q = 32;
const HEADS_KV = 8;
const HEAD_DIM = 128;
/** The API rows reuse one cache per shape, so they are timed only where it is this large: four
 * times the L2 of an H100/H200 (50 MiB), so each call reads memory as the kernel rows do. */
const API_MIN_CACHE_BYTES = 4 * 50 * 2 ** 20;
/** Calls issued at once on one Stream for the "in flight" API figure. */
const IN_FLIGHT = 64;

/** One decode shape and what was measured on it. @internal */
export interface DecodeRow {
  batch: number;
  context: number;
  /** 0: contiguous cache; else the page size of a paged cache. */
  pageSize: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  /** K and V bytes one call reads: 2 · batch · context · headsKV · headDim · 2. */
  kvBytes: number;
  kernel?: string;
  /** Kernel time (CUDA events), median ms, and all samples. */
  ms?: number;
  samples?: number[];
  tbps?: number;
  /** Through flashAttentionWithKVCache with DeviceTensors: awaited one at a time, and 64 in flight on one Stream. */
  apiAwaitedMs?: number;
  apiAwaitedTbps?: number;
  apiInFlightMs?: number;
  apiInFlightTbps?: number;
  apiSkipped?: string;
  torchFlashMs?: number;
  torchFlashTbps?: number;
  torchCudnnMs?: number;
  torchCudnnTbps?: number;
  torchErrors?: string[];
  skipped?: string;
  error?: string;
}

/** @internal */
export interface DecodeBenchReport {
  tool: 'flashattn bench --decode';
  version: string;
  date: string;
  config: Record<string, unknown>;
  device: ProbeReport;
  rows: DecodeRow[];
  torch: { available: boolean; reason?: string; info?: Record<string, unknown> };
}

const tbps = (bytes: number, ms: number): number => bytes / (ms * 1e-3) / 1e12;

function layout(pageSize: number): string {
  return pageSize ? `paged ${pageSize}` : 'contiguous';
}

function rowLabel(r: DecodeRow): string {
  return `b${r.batch} ctx ${r.context} ${layout(r.pageSize)}`;
}

/** Values uniform in [-1, 1) on the device, in `dtype`. */
async function randomDevice(shape: number[], dtype: 'bfloat16' | 'float16', deviceIndex: number): Promise<DeviceTensor> {
  const f = new Float32Array(shape.reduce((a, x) => a * x, 1));
  for (let i = 0; i < f.length; i++) f[i] = Math.random() * 2 - 1;
  return DeviceTensor.from(tensor(dtype === 'bfloat16' ? toBfloat16(f) : toFloat16(f), shape, dtype), { deviceIndex });
}

/** The API figures for one shape: caches as DeviceTensors (contents left as allocated: only bytes moved matter). */
async function timeApi(row: DecodeRow, opts: BenchOptions, iters: number, warmup: number): Promise<void> {
  const { batch, context, pageSize, headsQ, headsKV, headDim } = row;
  const dtype = opts.dtype;
  const dev = opts.deviceIndex;
  const blocksPerSeq = pageSize ? Math.ceil(context / pageSize) : 1;
  const cacheShape = pageSize ? [batch * blocksPerSeq, pageSize, headsKV, headDim] : [batch, context, headsKV, headDim];
  const owned: DeviceTensor[] = [];
  const keep = <T extends DeviceTensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  try {
    const q = keep(await randomDevice([batch, 1, headsQ, headDim], dtype, dev));
    const kCache = keep(DeviceTensor.empty(cacheShape, dtype, dev));
    const vCache = keep(DeviceTensor.empty(cacheShape, dtype, dev));
    const cacheSeqlens = keep(await DeviceTensor.from(tensor(new Int32Array(batch).fill(context), [batch]), { deviceIndex: dev }));
    let blockTable: DeviceTensor<'int32'> | undefined;
    if (pageSize) {
      const table = new Int32Array(batch * blocksPerSeq);
      for (let i = 0; i < table.length; i++) table[i] = i;
      for (let i = table.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [table[i], table[j]] = [table[j], table[i]];
      }
      blockTable = keep(await DeviceTensor.from(tensor(table, [batch, blocksPerSeq]), { deviceIndex: dev }));
    }
    using stream = new Stream(dev);
    const call = () => flashAttentionWithKVCache(q, kCache, vCache, { cacheSeqlens, blockTable, stream });
    const settle = async (p: ReturnType<typeof call>) => {
      const r = await p;
      (r.out as DeviceTensor).dispose();
      (r.lse as DeviceTensor).dispose();
    };
    for (let i = 0; i < warmup; i++) await settle(call());
    const awaited: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = process.hrtime.bigint();
      await settle(call());
      awaited.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const inFlight: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const t0 = process.hrtime.bigint();
      const calls: Array<ReturnType<typeof call>> = [];
      for (let i = 0; i < IN_FLIGHT; i++) calls.push(call());
      await Promise.all(calls.map(settle));
      inFlight.push(Number(process.hrtime.bigint() - t0) / 1e6 / IN_FLIGHT);
    }
    row.apiAwaitedMs = median(awaited);
    row.apiAwaitedTbps = tbps(row.kvBytes, row.apiAwaitedMs);
    row.apiInFlightMs = median(inFlight);
    row.apiInFlightTbps = tbps(row.kvBytes, row.apiInFlightMs);
  } finally {
    for (const t of owned) t.dispose();
  }
}

interface TorchDecodeRow {
  batch: number;
  context: number;
  backend: string;
  ms?: number[];
  error?: string;
}

function runTorch(python: string, rows: DecodeRow[], opts: BenchOptions, warmup: number, iters: number) {
  const seen = new Set<string>();
  const configs = [];
  for (const r of rows) {
    const key = `${r.batch}:${r.context}`;
    if (r.skipped || seen.has(key)) continue;
    seen.add(key);
    configs.push({ op: 'decode', batch: r.batch, context: r.context, headsQ: r.headsQ, headsKV: r.headsKV, headDim: r.headDim });
  }
  const input = { dtype: opts.dtype, device: opts.deviceIndex, warmup, iters, backends: ['flash', 'cudnn'], coldL2: !opts.warmL2, configs };
  const parsed = runTorchScript(python, input) as { info: Record<string, unknown>; rows: TorchDecodeRow[] };
  // Torch has no paged SDPA: every layout of a shape is compared with torch's contiguous time.
  for (const row of rows) {
    for (const t of parsed.rows.filter((x) => x.batch === row.batch && x.context === row.context)) {
      if (t.error) {
        (row.torchErrors ??= []).push(`${t.backend}: ${t.error}`);
        continue;
      }
      if (!t.ms?.length) continue;
      const ms = median(t.ms);
      if (t.backend === 'flash') {
        row.torchFlashMs = ms;
        row.torchFlashTbps = tbps(row.kvBytes, ms);
      } else {
        row.torchCudnnMs = ms;
        row.torchCudnnTbps = tbps(row.kvBytes, ms);
      }
    }
  }
  return parsed.info;
}

function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function fmt(x: number | undefined, digits = 2): string {
  return x === undefined ? '-' : x.toFixed(digits);
}

function printTable(report: DecodeBenchReport, print: (l: string) => void): void {
  print('');
  print(
    [
      lpad('batch', 5), lpad('context', 7), lpad('layout', 10), lpad('kernel ms', 10), lpad('TB/s', 6),
      lpad('API TB/s', 9), lpad('64 in flight', 12), lpad('torch-flash', 11), lpad('cuDNN', 6), lpad('vs best', 8), '  kernel',
    ].join(' '),
  );
  for (const r of report.rows) {
    const best = Math.max(r.torchFlashTbps ?? 0, r.torchCudnnTbps ?? 0);
    const status = r.error ? `  ERROR ${r.error}` : r.skipped ? `  skipped: ${r.skipped}` : `  ${r.kernel ?? ''}`;
    print(
      [
        lpad(String(r.batch), 5), lpad(String(r.context), 7), lpad(layout(r.pageSize), 10),
        lpad(r.ms !== undefined ? r.ms.toFixed(4) : '-', 10), lpad(fmt(r.tbps), 6), lpad(fmt(r.apiAwaitedTbps), 9),
        lpad(fmt(r.apiInFlightTbps), 12), lpad(fmt(r.torchFlashTbps), 11), lpad(fmt(r.torchCudnnTbps), 6),
        lpad(best > 0 && r.tbps !== undefined ? `${(r.tbps / best).toFixed(2)}×` : '-', 8),
      ].join(' ') + status,
    );
  }
  print('');
  print(`TB/s = K and V bytes read (2 · batch · context · ${HEADS_KV} · ${HEAD_DIM} · 2) / time; ` +
    `q ${HEADS_Q} heads, one token per row, every row at full length.`);
  const l2 = String(report.config.l2).startsWith('warm')
    ? 'one cache per shape (--warm-l2: L2-resident when it fits)'
    : 'each run reading a cache copy the previous run did not leave in L2';
  print(`Kernel and torch times are CUDA events (median), ${l2}; API times are wall clock per call ` +
    `(awaited, or ${IN_FLIGHT} in flight on one Stream).`);
  print('torch has no paged SDPA: paged rows compare with torch on the contiguous cache; "vs best" = our kernel / ' +
    'the faster torch backend.');
  if (!report.torch.available) print(`PyTorch comparison: not run (${report.torch.reason ?? 'disabled'})`);
  const errs = report.rows.filter((r) => r.torchErrors?.length);
  for (const r of errs) print(`  torch ${rowLabel(r)}: ${r.torchErrors!.join('; ')}`);
}

/** `flashattn bench --decode`. @internal */
export async function runDecodeBench(opts: BenchOptions): Promise<DecodeBenchReport> {
  const report0 = probe();
  const gpuReason = opts.cpu ? '--cpu was given' : noGpuReason(report0, opts.deviceIndex);
  if (gpuReason) {
    throw new FlashAttentionError('E_NO_DEVICE', `bench --decode times the CUDA decode kernels and needs a GPU: ${gpuReason}`);
  }
  const dev = report0.devices.find((d) => d.index === opts.deviceIndex)!;
  const warmup = opts.warmup ?? (opts.quick ? 2 : 5);
  const iters = opts.iters ?? (opts.quick ? 5 : 20);
  const contexts = opts.seqlens ?? (opts.quick ? CONTEXTS_QUICK : CONTEXTS);
  const batches = opts.batch !== undefined ? [opts.batch] : BATCHES;
  const pages = opts.pages ?? (opts.quick ? PAGES_QUICK : PAGES);
  const elem = 2;
  const report: DecodeBenchReport = {
    tool: 'flashattn bench --decode',
    version: report0.version,
    date: new Date().toISOString(),
    config: {
      device: opts.deviceIndex,
      dtype: opts.dtype,
      headsQ: HEADS_Q,
      headsKV: HEADS_KV,
      headDim: HEAD_DIM,
      seqlenQ: 1,
      batches,
      contexts,
      pageSizes: pages,
      warmup,
      iters,
      inFlight: IN_FLIGHT,
      splits: opts.splits ?? 'heuristic (as the API)',
      l2: opts.warmL2 ? 'warm (one cache per shape)' : 'cold (each run reads a cache copy not in L2)',
      timer: 'kernel and torch: CUDA events, median; API: wall clock, median',
    },
    device: report0,
    rows: [],
    torch: { available: false },
  };
  const { log, print } = opts;
  print(
    `flashattn bench --decode: ${dev.name} (sm_${dev.capability.join('')}, ${dev.smCount} SMs), CUDA runtime ` +
      `${cudaVersionString(report0.cudaRuntimeVersion)}, ${opts.dtype === 'bfloat16' ? 'bf16' : 'fp16'}, ` +
      `d${HEAD_DIM}, GQA ${HEADS_Q}/${HEADS_KV}, one query token`,
  );
  for (const batch of batches) {
    for (const context of contexts) {
      for (const pageSize of pages) {
        report.rows.push({
          batch, context, pageSize, headsQ: HEADS_Q, headsKV: HEADS_KV, headDim: HEAD_DIM,
          kvBytes: 2 * batch * context * HEADS_KV * HEAD_DIM * elem,
        });
      }
    }
  }
  const b = native();
  for (let i = 0; i < report.rows.length; i++) {
    const row = report.rows[i];
    log(`[${i + 1}/${report.rows.length}] decode ${rowLabel(row)} …`);
    const free = probe().devices.find((x) => x.index === opts.deviceIndex)?.freeMemory ?? 0;
    // The kernel bench keeps up to 16 copies of a small cache; a large one is a single copy.
    if (row.kvBytes > 0.45 * free) {
      row.skipped = `the cache (${(row.kvBytes / 2 ** 30).toFixed(1)} GiB) needs more than 45% of free device memory`;
      log(`    skipped: ${row.skipped}`);
      continue;
    }
    try {
      const res = await b.benchDecode({
        device: opts.deviceIndex, dtype: opts.dtype as NativeDType, batch: row.batch, seqlenQ: 1,
        headsQ: row.headsQ, headsKV: row.headsKV, headDim: row.headDim, context: row.context,
        pageSize: row.pageSize, coldL2: !opts.warmL2, numSplits: opts.splits ?? 0, warmup, iters,
      });
      row.samples = res.ms;
      row.ms = median(res.ms);
      row.tbps = tbps(row.kvBytes, row.ms);
      row.kernel = res.kernel;
      if (opts.api) {
        if (row.kvBytes < API_MIN_CACHE_BYTES) row.apiSkipped = 'cache under 200 MiB (it would stay in L2)';
        else await timeApi(row, opts, iters, warmup);
      }
    } catch (err) {
      const e = rewrap(err, 'bench');
      row.error = `${e.code}: ${e.message.split('\n')[0]}`;
      log(`    failed: ${row.error}`);
    }
  }
  const t = withTorch(opts, 'SDPA decode, flash and cuDNN, GQA', (python) => runTorch(python, report.rows, opts, warmup, iters));
  report.torch = 'value' in t ? { available: true, info: t.value } : { available: false, reason: t.reason };
  printTable(report, print);
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    print(`wrote ${opts.json}`);
  }
  return report;
}
