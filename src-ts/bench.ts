// bench.ts — `flashattn bench`: times our kernels (and the naive baseline, and PyTorch's SDPA when
// it is installed) on the FlashAttention papers' shapes, or the CPU backend when there is no GPU.
// Timing lives here and in the addon's bench(), never in tests.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NativeBenchResult, NativeDType } from './binding';
import { type DType, allocHost } from './dtype';
import { FlashAttentionError, rewrap } from './errors';
import { type ProbeReport, cudaVersionString, native, noGpuReason, probe } from './probe';

/** @internal */
export interface BenchOptions {
  /** Write everything as JSON to this file. */
  json?: string;
  /** Run the CPU backend even when a GPU is usable. */
  cpu: boolean;
  quick: boolean;
  seqlens?: number[];
  headdims?: number[];
  dtype: 'bfloat16' | 'float16';
  /** `--dtype fp8`: forward only, each config timed in float8_e4m3 (bf16 out, descales 1) beside
   * our `dtype` forward and PyTorch's (in `dtype`). */
  fp8?: boolean;
  /** Which masks: 'none', 'causal' (default both). */
  masks?: Array<'none' | 'causal'>;
  /** Ops to time (default both). */
  ops?: Array<'fwd' | 'bwd'>;
  iters?: number;
  warmup?: number;
  deviceIndex: number;
  naive: boolean;
  torch: boolean;
  window: boolean;
  /** batch · seqlen (GPU). */
  tokens: number;
  /** heads · headDim (GPU). */
  hidden: number;
  /** CPU shapes. */
  batch?: number;
  heads?: number;
  threads: number;
  /** `bench --decode`: the KV-cache decode kernels instead of forward/backward. */
  decode?: boolean;
  /** --decode: page sizes to time (0 = contiguous; default 0, 16, 256). */
  pages?: number[];
  /** --decode: also time the calls through the public API (default true). */
  api?: boolean;
  /** --decode --warm-l2: time one cache per shape (L2-resident when it fits) instead of L2-cold copies. */
  warmL2?: boolean;
  /** --decode --splits N: force N splits of the context in the kernel rows (default: the heuristic's). */
  splits?: number;
  /** Where progress goes (stderr). */
  log: (line: string) => void;
  /** Where the table goes (stdout). */
  print: (line: string) => void;
}

/** One timed (or skipped) configuration. @internal */
export interface BenchRow {
  impl: 'flash' | 'naive' | 'torch-flash' | 'torch-cudnn';
  op: 'fwd' | 'bwd';
  dtype: DType;
  batch: number;
  seqlen: number;
  heads: number;
  headDim: number;
  causal: boolean;
  /** [left, right], -1 unbounded. */
  window: [number, number];
  /** Median milliseconds. */
  ms?: number;
  /** All timed iterations. */
  samples?: number[];
  tflops?: number;
  /** GPU: device memory beyond inputs/outputs at its peak. */
  peakExtraBytes?: number;
  /** CPU: process peak RSS after this row (monotonic over the run). */
  peakRssBytes?: number;
  kernel?: string;
  skipped?: string;
  error?: string;
}

/** @internal */
export interface BenchReport {
  tool: 'flashattn bench';
  version: string;
  date: string;
  mode: 'cuda' | 'cpu';
  why: string;
  config: Record<string, unknown>;
  device: ProbeReport;
  rows: BenchRow[];
  torch: { available: boolean; reason?: string; info?: Record<string, unknown>; rows: BenchRow[] };
  /** Geometric means of (torch ms / our ms) per op and torch backend. */
  ratios: Record<string, number>;
}

const GPU_SEQLENS = [512, 1024, 2048, 4096, 8192, 16384];
const GPU_SEQLENS_QUICK = [1024, 4096, 16384];
const GPU_HEADDIMS = [64, 128, 256];
const GPU_HEADDIMS_QUICK = [64, 128];
const CPU_SEQLENS = [512, 1024, 2048, 4096];
const CPU_SEQLENS_QUICK = [512, 1024];
const WINDOW: [number, number] = [4096, 0];
const WINDOW_SEQLEN = 16384;

/** Visible (query, key) pairs, the papers' way: all, or half for causal; exact for other windows. @internal */
export function attendedPairs(sq: number, sk: number, window: [number, number]): number {
  const [left, right] = window;
  if (left < 0 && right < 0) return sq * sk;
  if (left < 0 && right === 0) return (sq * sk) / 2;
  let pairs = 0;
  for (let i = 0; i < sq; i++) {
    const diag = i + sk - sq;
    const lo = Math.max(0, left < 0 ? 0 : diag - left);
    const hi = Math.min(sk - 1, right < 0 ? sk - 1 : diag + right);
    if (hi >= lo) pairs += hi - lo + 1;
  }
  return pairs;
}

/** FLOPs: forward 4·b·h·pairs·d (two matmuls), backward 2.5× forward. @internal */
export function attentionFlops(
  op: 'fwd' | 'bwd',
  b: number,
  h: number,
  sq: number,
  sk: number,
  d: number,
  window: [number, number],
): number {
  const fwd = 4 * b * h * d * attendedPairs(sq, sk, window);
  return op === 'fwd' ? fwd : 2.5 * fwd;
}

/** Median of a list. @internal */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes >= 2 ** 30 ? 1 : 2)} GiB`;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function windowLabel(row: { causal: boolean; window: [number, number] }): string {
  if (row.window[0] >= 0) return `window[${row.window[0]},${row.window[1]}]`;
  return row.causal ? 'causal' : 'none';
}

function label(row: BenchRow): string {
  return `${row.op} d${row.headDim} s${row.seqlen} ${windowLabel(row)}${row.impl === 'flash' ? '' : ` (${row.impl})`}`;
}

function shortDtype(d: DType): string {
  return d === 'bfloat16' ? 'bf16' : d === 'float16' ? 'fp16' : d;
}

interface Step {
  row: BenchRow;
  run: () => Promise<void>;
}

async function runSteps(steps: Step[], log: (l: string) => void): Promise<void> {
  for (let i = 0; i < steps.length; i++) {
    const { row, run } = steps[i];
    log(`[${i + 1}/${steps.length}] ${label(row)} …`);
    try {
      await run();
    } catch (err) {
      const e = rewrap(err, 'bench');
      row.error = `${e.code}: ${e.message.split('\n')[0]}`;
      log(`    failed: ${row.error}`);
    }
  }
}

// ---- GPU ----------------------------------------------------------------------------------

function gpuSteps(opts: BenchOptions): Step[] {
  const seqlens = opts.seqlens ?? (opts.quick ? GPU_SEQLENS_QUICK : GPU_SEQLENS);
  const headdims = opts.headdims ?? (opts.quick ? GPU_HEADDIMS_QUICK : GPU_HEADDIMS);
  const masks = opts.masks ?? ['none', 'causal'];
  const ops = opts.fp8 ? ['fwd' as const] : (opts.ops ?? ['fwd', 'bwd']);
  const warmup = opts.warmup ?? (opts.quick ? 2 : 5);
  const iters = opts.iters ?? (opts.quick ? 5 : 20);
  const b = native();
  const steps: Step[] = [];

  const add = (
    impl: 'flash' | 'naive',
    op: 'fwd' | 'bwd',
    d: number,
    s: number,
    causal: boolean,
    window: [number, number],
    dtype: DType = opts.dtype,
  ) => {
    const heads = Math.max(1, Math.round(opts.hidden / d));
    const batch = Math.max(1, Math.round(opts.tokens / s));
    const row: BenchRow = { impl, op, dtype, batch, seqlen: s, heads, headDim: d, causal, window };
    steps.push({
      row,
      run: async () => {
        if (impl === 'naive') {
          const free = probe().devices.find((x) => x.index === opts.deviceIndex)?.freeMemory ?? 0;
          const scoreBytes = batch * heads * s * s * 4;
          if (scoreBytes > 0.4 * free) {
            row.skipped = `the naive score matrix (${batch}×${heads}×${s}×${s} float32 = ${gib(scoreBytes)}) ` +
              `would need more than 40% of free device memory (${gib(free)})`;
            opts.log(`    skipped: ${row.skipped}`);
            return;
          }
        }
        let res: NativeBenchResult;
        try {
          res = await b.bench({
            op: op === 'fwd' ? 'forward' : 'backward',
            naive: impl === 'naive',
            device: opts.deviceIndex,
            dtype: dtype as NativeDType,
            batch,
            seqlenQ: s,
            seqlenK: s,
            headsQ: heads,
            headsKV: heads,
            headDim: d,
            scale: 1 / Math.sqrt(d),
            windowLeft: window[0],
            windowRight: window[1],
            deterministic: false,
            warmup,
            iters,
          });
        } catch (err) {
          throw rewrap(err, 'bench');
        }
        row.samples = res.ms;
        row.ms = median(res.ms);
        row.peakExtraBytes = res.peakExtraBytes;
        row.kernel = res.kernel;
        row.tflops = attentionFlops(op, batch, heads, s, s, d, window) / (row.ms * 1e-3) / 1e12;
      },
    });
  };

  for (const d of headdims) {
    for (const s of seqlens) {
      for (const mask of masks) {
        const causal = mask === 'causal';
        const window: [number, number] = causal ? [-1, 0] : [-1, -1];
        if (opts.fp8) add('flash', 'fwd', d, s, causal, window, 'float8_e4m3');
        for (const op of ops) add('flash', op, d, s, causal, window);
        if (opts.naive && ops.includes('fwd')) add('naive', 'fwd', d, s, causal, window);
      }
    }
  }
  if (opts.window) {
    for (const d of headdims) {
      // The causal row at the same length is the comparison; add it when the grid lacks it.
      const haveCausal = seqlens.includes(WINDOW_SEQLEN) && masks.includes('causal');
      for (const op of ops) {
        if (!haveCausal) add('flash', op, d, WINDOW_SEQLEN, true, [-1, 0]);
        if (opts.fp8) add('flash', op, d, WINDOW_SEQLEN, true, WINDOW, 'float8_e4m3');
        add('flash', op, d, WINDOW_SEQLEN, true, WINDOW);
      }
    }
  }
  return steps;
}

/** Runs scripts/torch_bench.py with `input` on stdin (its progress on our stderr); returns its JSON. @internal */
export function runTorchScript(python: string, input: unknown): unknown {
  const script = resolve(__dirname, '..', '..', 'scripts', 'torch_bench.py');
  const r = spawnSync(python, [script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error || r.status !== 0) {
    throw new FlashAttentionError(
      'E_INTERNAL',
      `scripts/torch_bench.py failed (${r.error ? r.error.message : `exit code ${r.status}`}); see its output above`,
    );
  }
  return JSON.parse(r.stdout);
}

/** Runs `run` with the python that has torch and CUDA: its value, or why it did not run (--no-torch,
 * no such python, or the script failed). `what` says what the script times, in the progress line. @internal */
export function withTorch<T>(opts: BenchOptions, what: string, run: (python: string) => T): { value: T } | { reason: string } {
  if (!opts.torch) return { reason: '--no-torch' };
  const avail = torchAvailable();
  if (!avail.ok) return { reason: avail.reason };
  opts.log(`running scripts/torch_bench.py (${what}) …`);
  try {
    return { value: run(avail.python) };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

/** Finds python3 with torch and CUDA, or says why not. */
function torchAvailable(): { ok: true; python: string } | { ok: false; reason: string } {
  const python = process.env.FLASHATTN_PYTHON || 'python3';
  const r = spawnSync(
    python,
    ['-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (r.error) return { ok: false, reason: `${python} not found (${r.error.message})` };
  if (r.status === 3) return { ok: false, reason: 'PyTorch is installed but torch.cuda.is_available() is False' };
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() ?? '';
    return { ok: false, reason: `\`${python} -c 'import torch'\` failed: ${last}` };
  }
  return { ok: true, python };
}

interface TorchOutput {
  info: Record<string, unknown>;
  rows: Array<{
    backend: 'flash' | 'cudnn';
    op: 'fwd' | 'bwd';
    batch: number;
    seqlen: number;
    heads: number;
    headDim: number;
    causal: boolean;
    ms?: number[];
    error?: string;
  }>;
}

function runTorch(
  python: string,
  rows: BenchRow[],
  opts: BenchOptions,
): { rows: BenchRow[]; info: Record<string, unknown> } {
  const configs = rows
    .filter((r) => r.impl === 'flash' && r.window[0] < 0 && r.dtype === opts.dtype)
    .map((r) => ({ op: r.op, batch: r.batch, seqlen: r.seqlen, heads: r.heads, headDim: r.headDim, causal: r.causal }));
  const input = {
    dtype: opts.dtype,
    device: opts.deviceIndex,
    warmup: opts.warmup ?? (opts.quick ? 2 : 5),
    iters: opts.iters ?? (opts.quick ? 5 : 20),
    backends: ['flash', 'cudnn'],
    configs,
  };
  const parsed = runTorchScript(python, input) as TorchOutput;
  return {
    info: parsed.info,
    rows: parsed.rows.map((t) => {
      const row: BenchRow = {
        impl: t.backend === 'flash' ? 'torch-flash' : 'torch-cudnn',
        op: t.op,
        dtype: opts.dtype,
        batch: t.batch,
        seqlen: t.seqlen,
        heads: t.heads,
        headDim: t.headDim,
        causal: t.causal,
        window: t.causal ? [-1, 0] : [-1, -1],
      };
      if (t.error) row.error = t.error;
      if (t.ms && t.ms.length) {
        row.samples = t.ms;
        row.ms = median(t.ms);
        row.tflops = attentionFlops(t.op, t.batch, t.heads, t.seqlen, t.seqlen, t.headDim, row.window) / (row.ms * 1e-3) / 1e12;
      }
      return row;
    }),
  };
}

function sameConfig(a: BenchRow, b: BenchRow): boolean {
  return a.op === b.op && a.headDim === b.headDim && a.seqlen === b.seqlen && a.causal === b.causal &&
    a.window[0] === b.window[0] && a.window[1] === b.window[1];
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function printGpuTable(report: BenchReport, print: (l: string) => void): void {
  const ours = report.rows.filter((r) => r.impl === 'flash');
  const naive = report.rows.filter((r) => r.impl === 'naive');
  const tf = report.torch.rows.filter((r) => r.impl === 'torch-flash');
  const tc = report.torch.rows.filter((r) => r.impl === 'torch-cudnn');
  const haveTorch = report.torch.rows.length > 0;
  const head = [
    pad('op', 4), lpad('d', 4), lpad('seqlen', 7), lpad('batch', 6), lpad('heads', 6), pad(' mask', 18),
    lpad('ms', 9), lpad('TFLOP/s', 8), lpad('extra mem', 11), lpad('naive TF/s', 11),
    ...(haveTorch ? [lpad('torch-flash TF/s', 16), lpad('ratio', 7), lpad('cuDNN TF/s', 11), lpad('ratio', 7)] : []),
    '  kernel',
  ].join(' ');
  print(head);
  print('-'.repeat(head.length));
  for (const r of ours) {
    const n = r.op === 'fwd' ? naive.find((x) => sameConfig(x, r)) : undefined;
    const t1 = tf.find((x) => sameConfig(x, r));
    const t2 = tc.find((x) => sameConfig(x, r));
    const fmt = (x?: number, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));
    const status = r.error ? `  ERROR ${r.error}` : '';
    const naiveCell = !n ? '' : n.tflops !== undefined ? fmt(n.tflops) : n.skipped ? 'skipped' : 'error';
    const ratio = (t?: BenchRow) => (t?.ms !== undefined && r.ms !== undefined ? `${(t.ms / r.ms).toFixed(2)}x` : '-');
    print([
      pad(r.op, 4), lpad(String(r.headDim), 4), lpad(String(r.seqlen), 7), lpad(String(r.batch), 6), lpad(String(r.heads), 6),
      pad(` ${windowLabel(r)}`, 18), lpad(fmt(r.ms, 3), 9), lpad(fmt(r.tflops), 8),
      lpad(r.peakExtraBytes !== undefined ? mib(r.peakExtraBytes) : '-', 11), lpad(naiveCell, 11),
      ...(haveTorch ? [lpad(fmt(t1?.tflops), 16), lpad(ratio(t1), 7), lpad(fmt(t2?.tflops), 11), lpad(ratio(t2), 7)] : []),
      `  ${r.kernel ?? ''}${status}`,
    ].join(' '));
  }
  const skipped = naive.filter((x) => x.skipped);
  if (skipped.length) {
    print('');
    print('naive baseline skipped:');
    for (const s of skipped) print(`  ${label(s)}: ${s.skipped}`);
  }
  const windowed = ours.filter((r) => r.window[0] >= 0);
  if (windowed.length) {
    print('');
    print(`sliding window [${WINDOW[0]}, ${WINDOW[1]}] vs causal at seqlen ${WINDOW_SEQLEN}:`);
    for (const w of windowed) {
      const c = ours.find(
        (x) => x.op === w.op && x.dtype === w.dtype && x.headDim === w.headDim && x.seqlen === w.seqlen && x.causal && x.window[0] < 0,
      );
      const speed = w.ms !== undefined && c?.ms !== undefined ? `${(c.ms / w.ms).toFixed(2)}x faster than causal` : '-';
      print(`  ${w.op} d${w.headDim}: ${w.ms?.toFixed(3) ?? '-'} ms vs causal ${c?.ms?.toFixed(3) ?? '-'} ms (${speed})`);
    }
  }
  const torchErrors = report.torch.rows.filter((r) => r.error);
  if (torchErrors.length) {
    print('');
    print('PyTorch rows that did not run:');
    for (const t of torchErrors) print(`  ${t.impl} ${label({ ...t, impl: 'flash' })}: ${t.error}`);
  }
  print('');
  if (!haveTorch) {
    print(`PyTorch comparison: not run (${report.torch.reason ?? 'disabled'})`);
  } else {
    print('ratio = torch ms / our ms (> 1: flashattn is faster). Geometric means:');
    for (const [k, v] of Object.entries(report.ratios)) print(`  ${k}: ${v.toFixed(3)}x`);
  }
  const fp8 = ours.filter((r) => r.dtype === 'float8_e4m3' && r.ms !== undefined);
  if (fp8.length) {
    const rs = fp8.flatMap((r) => {
      const b = ours.find((x) => x.dtype !== 'float8_e4m3' && sameConfig(x, r));
      return b?.ms !== undefined ? [b.ms / r.ms!] : [];
    });
    if (rs.length) print(`fp8 fwd vs our ${shortDtype(report.config.dtype as DType)} fwd, geometric mean of ms ratios: ${geomean(rs).toFixed(3)}x`);
  }
}

function ratios(ours: BenchRow[], torch: BenchRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const impl of ['torch-flash', 'torch-cudnn'] as const) {
    for (const op of ['fwd', 'bwd'] as const) {
      const rs: number[] = [];
      for (const r of ours.filter((x) => x.impl === 'flash' && x.op === op && x.ms !== undefined && x.dtype !== 'float8_e4m3')) {
        const t = torch.find((x) => x.impl === impl && sameConfig(x, r));
        if (t?.ms !== undefined && r.ms) rs.push(t.ms / r.ms);
      }
      if (rs.length) out[`${op} vs ${impl}`] = geomean(rs);
    }
  }
  return out;
}

// ---- CPU ----------------------------------------------------------------------------------

function cpuSteps(opts: BenchOptions): Step[] {
  const seqlens = opts.seqlens ?? (opts.quick ? CPU_SEQLENS_QUICK : CPU_SEQLENS);
  const headdims = opts.headdims ?? [64];
  const masks = opts.masks ?? ['none', 'causal'];
  const ops = opts.ops ?? ['fwd', 'bwd'];
  const batch = opts.batch ?? 1;
  const heads = opts.heads ?? 16;
  const warmup = opts.warmup ?? (opts.quick ? 0 : 1);
  const iters = opts.iters ?? (opts.quick ? 1 : 3);
  const dtype: DType = 'float32';
  const b = native();
  const steps: Step[] = [];

  const random = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
    return a;
  };

  const add = (impl: 'flash' | 'naive', op: 'fwd' | 'bwd', d: number, s: number, causal: boolean) => {
    const window: [number, number] = causal ? [-1, 0] : [-1, -1];
    const row: BenchRow = { impl, op, dtype, batch, seqlen: s, heads, headDim: d, causal, window };
    steps.push({
      row,
      run: async () => {
        if (impl === 'naive') {
          const threads = opts.threads || native().probe().cpuThreads;
          const scoreBytes = Math.min(threads, batch * heads) * s * s * 4;
          if (scoreBytes > 0.4 * freemem()) {
            row.skipped = `the naive score matrices (${threads} threads × ${s}×${s} float32 = ${gib(scoreBytes)}) ` +
              `would need more than 40% of free memory (${gib(freemem())})`;
            opts.log(`    skipped: ${row.skipped}`);
            return;
          }
        }
        const n = batch * s * heads * d;
        const shape = [batch, s, heads, d];
        const t = (data: Float32Array) => ({ data, shape, dtype });
        const q = t(random(n));
        const k = t(random(n));
        const v = t(random(n));
        const out = t(allocHost(dtype, n) as Float32Array);
        const lse = { data: new Float32Array(batch * heads * s), shape: [batch, heads, s], dtype };
        const common = {
          backend: 'cpu' as const,
          device: 0,
          scale: 1 / Math.sqrt(d),
          windowLeft: window[0],
          windowRight: window[1],
          threads: opts.threads,
        };
        const fwd = () => b.forward({ ...common, q, k, v, out, lse, naive: impl === 'naive' });
        let run: () => Promise<unknown> = fwd;
        if (op === 'bwd') {
          await fwd();
          const dout = t(random(n));
          const dq = t(new Float32Array(n));
          const dk = t(new Float32Array(n));
          const dv = t(new Float32Array(n));
          run = () => b.backward({ ...common, dout, q, k, v, out, lse, dq, dk, dv, deterministic: false });
        }
        const samples: number[] = [];
        for (let i = 0; i < warmup + iters; i++) {
          const t0 = performance.now();
          try {
            await run();
          } catch (err) {
            throw rewrap(err, 'bench');
          }
          if (i >= warmup) samples.push(performance.now() - t0);
        }
        row.samples = samples;
        row.ms = median(samples);
        row.tflops = attentionFlops(op, batch, heads, s, s, d, window) / (row.ms * 1e-3) / 1e12;
        row.peakRssBytes = process.resourceUsage().maxRSS * 1024;
        row.kernel = impl === 'naive' ? 'cpu naive' : 'cpu flash';
      },
    });
  };
  for (const d of headdims) {
    for (const s of seqlens) {
      for (const mask of masks) {
        for (const op of ops) add('flash', op, d, s, mask === 'causal');
        if (opts.naive && ops.includes('fwd')) add('naive', 'fwd', d, s, mask === 'causal');
      }
    }
  }
  return steps;
}

function printCpuTable(report: BenchReport, print: (l: string) => void): void {
  const head = [
    pad('impl', 6), pad('op', 4), lpad('d', 4), lpad('seqlen', 7), lpad('batch', 6), lpad('heads', 6), pad(' mask', 8),
    lpad('ms', 10), lpad('GFLOP/s', 9), lpad('peak RSS', 11),
  ].join(' ');
  print(head);
  print('-'.repeat(head.length));
  for (const r of report.rows) {
    const status = r.skipped ? `  skipped: ${r.skipped}` : r.error ? `  ERROR ${r.error}` : '';
    print([
      pad(r.impl, 6), pad(r.op, 4), lpad(String(r.headDim), 4), lpad(String(r.seqlen), 7), lpad(String(r.batch), 6),
      lpad(String(r.heads), 6), pad(` ${windowLabel(r)}`, 8), lpad(r.ms?.toFixed(2) ?? '-', 10),
      lpad(r.tflops !== undefined ? (r.tflops * 1e3).toFixed(1) : '-', 9),
      lpad(r.peakRssBytes !== undefined ? mib(r.peakRssBytes) : '-', 11),
    ].join(' ') + status);
  }
  print('');
  print('peak RSS is the process-wide maximum so far (process.resourceUsage().maxRSS); it never goes down.');
}

// ---- entry --------------------------------------------------------------------------------

/** Runs the benchmark; returns the report (and writes JSON when asked). @internal */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const report0 = probe();
  const gpuReason = noGpuReason(report0, opts.deviceIndex);
  const mode: 'cuda' | 'cpu' = opts.cpu || gpuReason ? 'cpu' : 'cuda';
  const why = opts.cpu ? '--cpu was given' : gpuReason ? `no usable GPU: ${gpuReason}` : '';
  const report: BenchReport = {
    tool: 'flashattn bench',
    version: report0.version,
    date: new Date().toISOString(),
    mode,
    why,
    config: {},
    device: report0,
    rows: [],
    torch: { available: false, rows: [] },
    ratios: {},
  };
  const { log, print } = opts;
  if (mode === 'cpu') {
    print(`flashattn bench: CPU backend (${why}); float32, ${opts.threads || report0.cpuThreads} threads`);
    const steps = cpuSteps(opts);
    report.config = {
      backend: 'cpu',
      dtype: 'float32',
      threads: opts.threads || report0.cpuThreads,
      batch: opts.batch ?? 1,
      heads: opts.heads ?? 16,
      seqlens: [...new Set(steps.map((s) => s.row.seqlen))],
      headdims: [...new Set(steps.map((s) => s.row.headDim))],
      timer: 'performance.now, median',
    };
    await runSteps(steps, log);
    report.rows = steps.map((s) => s.row);
    report.torch.reason = 'CPU mode';
    printCpuTable(report, print);
  } else {
    const dev = report0.devices.find((d) => d.index === opts.deviceIndex)!;
    print(
      `flashattn bench: ${dev.name} (sm_${dev.capability.join('')}, ${dev.smCount} SMs, ${gib(dev.totalMemory)}), ` +
        `CUDA runtime ${cudaVersionString(report0.cudaRuntimeVersion)}, ${shortDtype(opts.dtype)}, ` +
        `batch·seqlen = ${opts.tokens}, hidden ${opts.hidden}`,
    );
    const steps = gpuSteps(opts);
    report.config = {
      backend: 'cuda',
      device: opts.deviceIndex,
      dtype: opts.dtype,
      fp8: opts.fp8 ?? false,
      tokens: opts.tokens,
      hidden: opts.hidden,
      seqlens: opts.seqlens ?? (opts.quick ? GPU_SEQLENS_QUICK : GPU_SEQLENS),
      headdims: opts.headdims ?? (opts.quick ? GPU_HEADDIMS_QUICK : GPU_HEADDIMS),
      warmup: opts.warmup ?? (opts.quick ? 2 : 5),
      iters: opts.iters ?? (opts.quick ? 5 : 20),
      timer: 'CUDA events, median',
      flops: 'fwd 4·b·h·sq·sk·d (halved for causal; exact visible pairs for sliding windows), bwd 2.5× fwd',
    };
    await runSteps(steps, log);
    report.rows = steps.map((s) => s.row);
    const t = withTorch(opts, 'torch.nn.functional.scaled_dot_product_attention, flash and cuDNN', (python) =>
      runTorch(python, report.rows, opts));
    if ('value' in t) {
      report.torch = { available: true, info: t.value.info, rows: t.value.rows };
      report.ratios = ratios(report.rows, t.value.rows);
    } else {
      report.torch.reason = t.reason;
    }
    printGpuTable(report, print);
  }
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    print(`wrote ${opts.json}`);
  }
  return report;
}

