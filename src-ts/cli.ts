#!/usr/bin/env node
// cli.ts — the `flashattn` command: `inspect` (what the addon found) and `bench` (timings).
import { type BenchOptions, runBench } from './bench';
import { runDecodeBench } from './bench-decode';
import type { NativeDecodePlan, NativeSelection } from './binding';
import { FlashAttentionError } from './errors';
import { INSTALL_RECORD, loadedAddonInfo } from './load';
import { type ProbeReport, cudaVersionString, native, noGpuReason, probe } from './probe';
import { MAX_HEAD_DIM } from './validate';

const USAGE = `Usage: flashattn <command> [options]

Commands:
  inspect [--json]        Which addon build loaded, CUDA runtime/driver, every GPU and the kernel
                          each would run (or why there is no GPU).
  bench [options]         Time forward and backward attention. On a GPU: CUDA events on the
                          FlashAttention papers' shapes (batch·seqlen = 16384, hidden 2048), plus the
                          naive baseline and PyTorch SDPA when python3 with torch+CUDA is found.
                          Without a GPU (or with --cpu): the CPU backend.
  bench --decode [options]
                          Time the KV-cache decode kernels (flashAttentionWithKVCache, one query
                          token, d128, GQA 32/8) in TB/s of K/V read: batch 1/16/64 × context
                          1k..128k, contiguous and paged (16, 256), with PyTorch SDPA and the same
                          calls through the API. Needs a GPU.

bench options:
  --json FILE             Also write everything (config, rows, device, torch) as JSON to FILE
  --cpu                   Benchmark the CPU backend even when a GPU is usable
  --quick                 Fewer shapes and iterations
  --seqlens 512,1024,...  Sequence lengths (GPU default 512..16384; CPU default 512..4096)
  --headdims 64,128,...   Head dims, multiples of 8 up to 256 (GPU default 64,128,256; CPU default 64)
  --dtype bf16|fp16|fp8   GPU dtype (default bf16; the CPU bench uses float32). fp8: the float8_e4m3
                          forward (Hopper) beside our bf16 forward and PyTorch's bf16 on each shape
  --masks none,causal     Which masks (default both)
  --ops fwd,bwd           Which passes (default both)
  --iters N --warmup N    Timed and warm-up iterations per row
  --device N              CUDA device index (default 0)
  --tokens N --hidden N   GPU shapes: batch = tokens / seqlen, heads = hidden / headDim
  --batch N --heads N     CPU shapes (default 1 and 16)
  --threads N             CPU threads (default: one per hardware thread)
  --no-naive              Skip the naive (materialized scores) baseline
  --no-torch              Skip the PyTorch comparison
  --no-window             Skip the sliding-window row (window [4096, 0] at seqlen 16384)
  --path sm80|sm90        Time one kernel path (as FLASHATTN_KERNEL_PATH does); rows it cannot run fail

bench --decode options (with --json, --quick, --dtype, --iters, --warmup, --device, --no-torch):
  --contexts 1024,...     Context lengths (default 1024..131072)
  --batch N               One batch size instead of 1, 16 and 64
  --pages 0,16,256        Cache layouts: 0 = contiguous, else the page size (default 0,16,256)
  --no-api                Skip the timings through the public API
  --warm-l2               Time one cache per shape, L2-resident when it fits (default: L2-cold copies)
  --splits N              Force N context splits in the kernel rows (default: the API's heuristic)

Environment: FLASHATTN_BINARY (addon file), FLASHATTN_BACKEND_BUILD=cpu|cuda (load only that
build), FLASHATTN_PYTHON (python with torch),
FLASHATTN_DEBUG=1 (stack traces).`;

class UsageError extends Error {}

function intList(flag: string, value: string | undefined): number[] {
  if (!value) throw new UsageError(`${flag} needs a comma-separated list of integers`);
  const out = value.split(',').map((x) => Number(x.trim()));
  if (out.some((x) => !Number.isSafeInteger(x) || x <= 0)) {
    throw new UsageError(`${flag} must be a comma-separated list of positive integers; got '${value}'`);
  }
  return out;
}

/** Head dims the kernels and the CPU backend take: multiples of 8 up to MAX_HEAD_DIM. */
function headDims(flag: string, value: string | undefined): number[] {
  const dims = intList(flag, value);
  const bad = dims.filter((d) => d % 8 !== 0 || d > MAX_HEAD_DIM);
  if (bad.length) {
    throw new UsageError(`${flag}: head dims must be multiples of 8 up to ${MAX_HEAD_DIM}; got ${bad.join(', ')}`);
  }
  return dims;
}

/** Page sizes: 0 (contiguous) or positive integers. */
function pageSizes(flag: string, value: string | undefined): number[] {
  const out = (value ?? '').split(',').map((x) => Number(x.trim()));
  if (!value || out.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw new UsageError(`${flag} takes a comma-separated list of page sizes (0 = contiguous); got '${value ?? ''}'`);
  }
  return out;
}

function int(flag: string, value: string | undefined, min = 0): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} needs an integer >= ${min}; got '${value ?? ''}'`);
  }
  return n;
}

function choiceList<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T[] {
  const items = (value ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (!items.length || items.some((x) => !(allowed as readonly string[]).includes(x))) {
    throw new UsageError(`${flag} takes a comma-separated list of ${allowed.join(', ')}; got '${value ?? ''}'`);
  }
  return items as T[];
}

/** Parses `bench` arguments. @internal */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const opts: BenchOptions = {
    cpu: false,
    quick: false,
    dtype: 'bfloat16',
    deviceIndex: 0,
    naive: true,
    torch: true,
    window: true,
    tokens: 16384,
    hidden: 2048,
    threads: 0,
    api: true,
    log: (line) => process.stderr.write(line + '\n'),
    print: (line) => process.stdout.write(line + '\n'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const next = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--json': {
        const file = next();
        if (!file) throw new UsageError('--json needs a file name');
        opts.json = file;
        break;
      }
      case '--cpu': opts.cpu = true; break;
      case '--quick': opts.quick = true; break;
      case '--seqlens': opts.seqlens = intList(flag, next()); break;
      case '--headdims': opts.headdims = headDims(flag, next()); break;
      case '--dtype': {
        const d = next();
        if (d === 'bf16' || d === 'bfloat16') opts.dtype = 'bfloat16';
        else if (d === 'fp16' || d === 'float16') opts.dtype = 'float16';
        else if (d === 'fp8' || d === 'float8_e4m3') opts.fp8 = true;
        else throw new UsageError(`--dtype must be bf16, fp16 or fp8; got '${d ?? ''}'`);
        break;
      }
      case '--masks': opts.masks = choiceList(flag, next(), ['none', 'causal'] as const); break;
      case '--ops': opts.ops = choiceList(flag, next(), ['fwd', 'bwd'] as const); break;
      case '--iters': opts.iters = int(flag, next(), 1); break;
      case '--warmup': opts.warmup = int(flag, next(), 0); break;
      case '--device': opts.deviceIndex = int(flag, next(), 0); break;
      case '--tokens': opts.tokens = int(flag, next(), 1); break;
      case '--hidden': opts.hidden = int(flag, next(), 1); break;
      case '--batch': opts.batch = int(flag, next(), 1); break;
      case '--heads': opts.heads = int(flag, next(), 1); break;
      case '--threads': opts.threads = int(flag, next(), 0); break;
      case '--no-naive': opts.naive = false; break;
      case '--no-torch': opts.torch = false; break;
      case '--no-window': opts.window = false; break;
      case '--path': {
        const v = next();
        if (v !== 'sm80' && v !== 'sm90') throw new UsageError(`--path must be sm80 or sm90; got '${v ?? ''}'`);
        // The plan reads FLASHATTN_KERNEL_PATH once, at the first call that plans; nothing has
        // planned yet while the command line is read.
        process.env.FLASHATTN_KERNEL_PATH = v;
        break;
      }
      case '--decode': opts.decode = true; break;
      case '--contexts': opts.seqlens = intList(flag, next()); break;
      case '--pages': opts.pages = pageSizes(flag, next()); break;
      case '--no-api': opts.api = false; break;
      case '--warm-l2': opts.warmL2 = true; break;
      case '--splits': opts.splits = int(flag, next(), 1); break;
      default:
        throw new UsageError(`unknown option '${a}' for bench (flashattn --help lists them)`);
    }
  }
  if (opts.fp8 && opts.decode) throw new UsageError('--dtype fp8 times the forward; the decode kernels take bf16 or fp16');
  return opts;
}

const PROBE_HEADDIMS = [64, 128, 256];
/** The (op, dtype) rows `inspect` shows per device: fp8 (e4m3, Hopper) is forward only. */
const PROBE_ROWS = [
  ['forward', 'bfloat16'],
  ['forward', 'float8_e4m3'],
  ['backward', 'bfloat16'],
] as const;

interface InspectSelection {
  device: number;
  op: 'forward' | 'backward';
  dtype: 'bfloat16' | 'float8_e4m3';
  headDim: number;
  selection: NativeSelection;
}

function selections(report: ProbeReport): InspectSelection[] {
  const b = native();
  const out: InspectSelection[] = [];
  for (const dev of report.devices) {
    for (const [op, dtype] of PROBE_ROWS) {
      for (const headDim of PROBE_HEADDIMS) {
        let selection: NativeSelection;
        try {
          selection = b.select({
            op, device: dev.index, dtype, headDim, seqlenQ: 4096, seqlenK: 4096,
            headsQ: 16, headsKV: 16, windowLeft: -1, windowRight: -1,
          });
        } catch (err) {
          selection = { path: 'none', kernelHeadDim: 0, reason: (err as Error).message };
        }
        out.push({ device: dev.index, op, dtype, headDim, selection });
      }
    }
  }
  return out;
}

interface InspectDecode {
  device: number;
  headDim: number;
  plan: NativeDecodePlan;
}

/** The decode path's plan per device and head dim, at one query token, batch 1, an 8k cache, GQA 32/8. */
function decodePlans(report: ProbeReport): InspectDecode[] {
  const b = native();
  return report.devices.flatMap((dev) =>
    PROBE_HEADDIMS.map((headDim) => ({
      device: dev.index,
      headDim,
      plan: b.planDecode({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim, capacity: 8192, device: dev.index }),
    })),
  );
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** `flashattn inspect`. @internal */
export function inspect(argv: string[], print: (l: string) => void): number {
  let json = false;
  for (const a of argv) {
    if (a === '--json') json = true;
    else throw new UsageError(`unknown option '${a}' for inspect`);
  }
  const report = probe();
  const sel = selections(report);
  const decode = decodePlans(report);
  const reason = report.devices.length ? '' : noGpuReason(report, 0);
  if (json) {
    print(JSON.stringify({ ...report, noGpuReason: reason, load: loadedAddonInfo(), selections: sel, decode }, null, 2));
    return 0;
  }
  const load = loadedAddonInfo();
  const record = load?.record;
  print(`flashattn ${report.version}: ${report.build === 'cuda' ? 'CUDA build' : 'CPU-only build'}`);
  print(`  addon:        ${report.addonPath}`);
  if (load) {
    print(`  found as:     ${load.origin === 'platform package' ? `platform package ${load.package}` : load.origin}` +
      (load.origin === 'FLASHATTN_BINARY' ? ' (set in the environment)' : ''));
  }
  if (record) {
    print(`  installed:    ${record.source === 'prebuilt' ? `prebuilt ${record.package}` : 'built from source'}, ${record.date}`);
    print(`  why:          ${record.why}`);
    for (const w of record.warnings) print(`  warning:      ${w}`);
  } else {
    print(`  why:          no install record (${INSTALL_RECORD}) next to the addon: the install step did not run for it ` +
      '(--ignore-scripts), or it was built or placed by hand');
  }
  if (report.build === 'cuda') {
    print(`  CUDA runtime: ${cudaVersionString(report.cudaRuntimeVersion)}   driver: ${cudaVersionString(report.cudaDriverVersion)}`);
    print(`  compiled for: ${report.compiledArchs.join(', ') || '(none)'}`);
  }
  print(`  CPU backend:  ${report.cpuThreads} threads`);
  if (!report.devices.length) {
    print('');
    print(`No usable GPU: ${reason}.`);
    print("flashAttention() runs on the CPU backend (device 'auto'/'cpu'); device: 'cuda' fails with E_NO_DEVICE.");
    return 0;
  }
  for (const dev of report.devices) {
    print('');
    print(`Device ${dev.index}: ${dev.name}`);
    print(`  capability ${dev.capability.join('.')}, ${dev.smCount} SMs, ${gib(dev.totalMemory)} total, ${gib(dev.freeMemory)} free`);
    print(`  kernel paths: ${dev.paths.length ? dev.paths.join(', ') : `none (${noGpuReason(report, dev.index)})`}`);
    for (const [op, dtype] of PROBE_ROWS) {
      const cells = sel
        .filter((s) => s.device === dev.index && s.op === op && s.dtype === dtype)
        .map((s) =>
          s.selection.path === 'none'
            ? `d${s.headDim}: none (${s.selection.reason})`
            : `d${s.headDim}: ${s.selection.path}${s.selection.kernelHeadDim !== s.headDim ? ` (d${s.selection.kernelHeadDim} kernel)` : ''}`,
        );
      print(`  ${op === 'forward' ? 'fwd' : 'bwd'} ${dtype === 'bfloat16' ? 'bf16' : 'fp8 '}  ${cells.join('   ')}`);
    }
    const dcells = decode
      .filter((x) => x.device === dev.index)
      .map((x) => `d${x.headDim}: ${x.plan.ok ? `split-KV, ${x.plan.splits} splits` : `none (${x.plan.reason})`}`);
    print(`  decode bf16 (b1, 8k cache, GQA 32/8)  ${dcells.join('   ')}`);
  }
  return 0;
}

/** A message with one 'flashattn: ' in front, never two. */
function prefixed(message: string): string {
  return message.startsWith('flashattn: ') ? message : `flashattn: ${message}`;
}

/** Runs the CLI; returns the exit code. @internal */
export async function main(argv: string[]): Promise<number> {
  const print = (line: string) => process.stdout.write(line + '\n');
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        print(USAGE);
        return command === undefined ? 1 : 0;
      case '-v':
      case '--version':
        print(native().version);
        return 0;
      case 'inspect':
        return inspect(rest, print);
      case 'bench': {
        const opts = parseBenchArgs(rest);
        const rows: Array<{ error?: string }> = opts.decode ? (await runDecodeBench(opts)).rows : (await runBench(opts)).rows;
        const failed = rows.filter((r) => r.error);
        if (failed.length) {
          process.stderr.write(`flashattn: ${failed.length} benchmark row(s) failed (see ERROR above)\n`);
          return 1;
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${command}'; commands: inspect, bench (flashattn --help)`);
    }
  } catch (err) {
    const e = err as Error;
    const code = err instanceof FlashAttentionError ? ` [${err.code}]` : '';
    process.stderr.write(`${prefixed(e.message)}${code}\n`);
    if (err instanceof UsageError) process.stderr.write('Run `flashattn --help` for usage.\n');
    if (process.env.FLASHATTN_DEBUG && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  // `flashattn inspect | head` closes the pipe early: stop quietly.
  process.stdout.on('error', (err: { code?: string }) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`${prefixed(err.message)}\n`);
      if (process.env.FLASHATTN_DEBUG) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    },
  );
}
