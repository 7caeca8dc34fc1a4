// The GPU side of `flashattn bench`, run against a stand-in addon (a fake device and a fake
// bench() that returns fixed times) and a stand-in python: checks the plan of rows, the naive
// skip rule, the sliding-window rows, the torch join and the JSON, never real timings.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeBenchRequest } from '../src-ts/binding';

const benchCalls: NativeBenchRequest[] = [];
const fakeReport = {
  build: 'cuda' as const,
  addonPath: '/fake/flashattn.node',
  version: '0.0.0-test',
  compiledArchs: ['sm_80'],
  cudaRuntimeVersion: 12080,
  cudaDriverVersion: 12090,
  cudaError: '',
  devices: [{
    index: 0, name: 'Fake GPU', capability: [8, 0] as [number, number], smCount: 108,
    // 8 GiB free: the naive d64 s16384 score matrix (1×32×16384² float32 = 32 GiB) must be skipped.
    totalMemory: 16 * 2 ** 30, freeMemory: 8 * 2 ** 30, paths: ['sm80'],
  }],
  cpuThreads: 2,
};

jest.mock('../src-ts/probe', () => {
  const actual = jest.requireActual('../src-ts/probe');
  return {
    ...actual,
    probe: () => fakeReport,
    cachedProbe: () => fakeReport,
    native: () => ({
      version: '0.0.0-test',
      bench: async (req: NativeBenchRequest) => {
        benchCalls.push(req);
        return { ms: [3, 1, 2], peakExtraBytes: 1024 * 1024, kernel: `fake ${req.op} d${req.headDim}` };
      },
    }),
  };
});

// Imported after the mock is set up (jest hoists jest.mock above imports).
import { runBench } from '../src-ts/bench';
import { parseBenchArgs } from '../src-ts/cli';

describe('flashattn bench on a (stand-in) GPU', () => {
  const lines: string[] = [];
  const progress: string[] = [];
  const file = join(mkdtempSync(join(tmpdir(), 'flashattn-')), 'bench.json');
  let report: Awaited<ReturnType<typeof runBench>>;

  beforeAll(async () => {
    process.env.FLASHATTN_PYTHON = join(__dirname, 'fixtures', 'fake-python.js');
    const opts = parseBenchArgs(['--seqlens', '512,16384', '--headdims', '64', '--json', file]);
    opts.print = (l) => lines.push(l);
    opts.log = (l) => progress.push(l);
    report = await runBench(opts);
  });

  it('uses the papers shapes: batch·seqlen = 16384, heads = 2048 / headDim', () => {
    const fwd = benchCalls.filter((c) => c.op === 'forward' && !c.naive && c.windowLeft < 0);
    expect(fwd.map((c) => [c.batch, c.seqlenQ, c.headsQ, c.headDim])).toEqual([
      [32, 512, 32, 64], [32, 512, 32, 64], [1, 16384, 32, 64], [1, 16384, 32, 64],
    ]);
    expect(fwd.map((c) => c.windowRight)).toEqual([-1, 0, -1, 0]);
  });

  it('prints progress as [i/n] lines on stderr', () => {
    expect(progress[0]).toMatch(/^\[1\/\d+\] fwd d64 s512 none …$/);
    expect(progress.some((l) => /causal/.test(l))).toBe(true);
  });

  it('reports the median and TFLOP/s (4·b·h·s²·d, halved for causal, 2.5× for backward)', () => {
    const row = report.rows.find((r) => r.impl === 'flash' && r.op === 'fwd' && r.seqlen === 512 && !r.causal)!;
    expect(row.ms).toBe(2);
    expect(row.tflops).toBeCloseTo((4 * 32 * 32 * 512 * 512 * 64) / 2e-3 / 1e12, 6);
    const bwd = report.rows.find((r) => r.impl === 'flash' && r.op === 'bwd' && r.seqlen === 512 && r.causal)!;
    expect(bwd.tflops).toBeCloseTo((2.5 * 4 * 32 * 32 * 512 * 512 * 64) / 2 / 2e-3 / 1e12, 6);
    expect(row.peakExtraBytes).toBe(1024 * 1024);
  });

  it('skips a naive row whose score matrix needs more than 40% of free memory, and says why', () => {
    const naive = report.rows.filter((r) => r.impl === 'naive');
    expect(naive.find((r) => r.seqlen === 512)!.ms).toBe(2);
    const big = naive.find((r) => r.seqlen === 16384)!;
    expect(big.skipped).toMatch(/40% of free device memory/);
    expect(lines.join('\n')).toMatch(/naive baseline skipped/);
  });

  it('adds the sliding-window [4096, 0] rows at seqlen 16384 and compares them with causal', () => {
    const w = report.rows.filter((r) => r.window[0] === 4096);
    expect(w.map((r) => r.op)).toEqual(['fwd', 'bwd']);
    expect(lines.join('\n')).toMatch(/sliding window \[4096, 0\] vs causal at seqlen 16384/);
  });

  it('joins the torch rows, prints ratios and geometric means, and keeps torch errors', () => {
    expect(report.torch.available).toBe(true);
    expect(report.ratios['fwd vs torch-flash']).toBeCloseTo(1, 6); // both 2 ms
    expect(report.ratios['bwd vs torch-flash']).toBeCloseTo(2.5, 6); // 5 ms vs 2 ms
    expect(report.ratios['bwd vs torch-cudnn']).toBeUndefined(); // every cudnn bwd failed
    expect(report.torch.rows.some((r) => r.error)).toBe(true);
    expect(lines.join('\n')).toMatch(/Geometric means/);
  });

  it('writes everything to --json', () => {
    const j = JSON.parse(readFileSync(file, 'utf8'));
    expect(j.mode).toBe('cuda');
    expect(j.device.devices[0].name).toBe('Fake GPU');
    expect(j.rows.length).toBe(report.rows.length);
    expect(j.torch.rows.length).toBeGreaterThan(0);
    expect(j.config.tokens).toBe(16384);
  });
});
