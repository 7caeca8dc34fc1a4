// The `flashattn` command: argument parsing, `inspect`, and a tiny CPU `bench` run (its output's
// structure only: timings are never asserted).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attendedPairs, attentionFlops, median } from '../src-ts/bench';
import { main, parseBenchArgs } from '../src-ts/cli';

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

describe('flashattn bench arguments', () => {
  it('parses lists and flags', () => {
    const o = parseBenchArgs(['--seqlens', '512,1024', '--headdims=64', '--dtype', 'fp16', '--quick', '--no-torch', '--json', 'x.json']);
    expect(o.seqlens).toEqual([512, 1024]);
    expect(o.headdims).toEqual([64]);
    expect(o.dtype).toBe('float16');
    expect(o.quick).toBe(true);
    expect(o.torch).toBe(false);
    expect(o.json).toBe('x.json');
  });
  it('rejects unknown options and bad values', () => {
    expect(() => parseBenchArgs(['--bogus'])).toThrow(/unknown option '--bogus'/);
    expect(() => parseBenchArgs(['--seqlens', '512,abc'])).toThrow(/positive integers/);
    expect(() => parseBenchArgs(['--dtype', 'fp32'])).toThrow(/bf16, fp16 or fp8/);
    expect(() => parseBenchArgs(['--path', 'sm70'])).toThrow(/--path must be sm80 or sm90; got 'sm70'/);
    expect(() => parseBenchArgs(['--dtype', 'fp8', '--decode'])).toThrow(/--dtype fp8 times the forward/);
  });
  it('--dtype fp8 times the e4m3 forward beside our bf16 forward', () => {
    const o = parseBenchArgs(['--dtype', 'fp8']);
    expect(o.fp8).toBe(true);
    expect(o.dtype).toBe('bfloat16');
  });
  it('refuses head dims no kernel takes before running anything', () => {
    expect(() => parseBenchArgs(['--headdims', '63'])).toThrow(/--headdims: head dims must be multiples of 8 up to 256; got 63/);
    expect(() => parseBenchArgs(['--headdims', '64,264'])).toThrow(/got 264/);
    expect(parseBenchArgs(['--headdims', '8,256']).headdims).toEqual([8, 256]);
  });
  it('parses the --decode options', () => {
    const o = parseBenchArgs(['--decode', '--contexts', '4096,131072', '--pages=0,16', '--batch', '16', '--no-api']);
    expect(o.decode).toBe(true);
    expect(o.seqlens).toEqual([4096, 131072]);
    expect(o.pages).toEqual([0, 16]);
    expect(o.batch).toBe(16);
    expect(o.api).toBe(false);
    expect(parseBenchArgs([]).api).toBe(true);
    expect(() => parseBenchArgs(['--decode', '--pages', '16,-1'])).toThrow(/--pages takes a comma-separated list of page sizes/);
    expect(() => parseBenchArgs(['--decode', '--contexts', '0'])).toThrow(/positive integers/);
  });
});

describe('FLOP counting', () => {
  it('is 4·b·h·sq·sk·d forward, halved for causal, 2.5× for backward', () => {
    expect(attentionFlops('fwd', 2, 3, 5, 7, 8, [-1, -1])).toBe(4 * 2 * 3 * 5 * 7 * 8);
    expect(attentionFlops('fwd', 1, 1, 8, 8, 8, [-1, 0])).toBe((4 * 8 * 8 * 8) / 2);
    expect(attentionFlops('bwd', 1, 1, 8, 8, 8, [-1, -1])).toBe(2.5 * 4 * 8 * 8 * 8);
  });
  it('counts the visible pairs of a sliding window exactly', () => {
    // 4×4, window [1, 0]: row 0 sees 1 key, rows 1..3 see 2.
    expect(attendedPairs(4, 4, [1, 0])).toBe(7);
  });
  it('takes the median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('flashattn CLI', () => {
  it('prints usage for --help and fails on an unknown command', async () => {
    expect((await capture(['--help'])).out).toMatch(/Usage: flashattn/);
    const r = await capture(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown command 'frobnicate'/);
    expect(r.err).not.toMatch(/at .*\.ts:\d+/); // no stack trace without FLASHATTN_DEBUG
  });

  it('inspect says which build loaded and what it found', async () => {
    const r = await capture(['inspect']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/(CUDA|CPU-only) build/);
    expect(r.out).toContain(process.env.FLASHATTN_BINARY!);
    expect(r.out).toMatch(/No usable GPU|Device 0/);
  });

  it('inspect --json is machine-readable', async () => {
    const r = await capture(['inspect', '--json']);
    const j = JSON.parse(r.out);
    expect(['cpu', 'cuda']).toContain(j.build);
    expect(Array.isArray(j.devices)).toBe(true);
    expect(Array.isArray(j.selections)).toBe(true);
    // The decode path's plan per device and head dim (none listed without a device).
    expect(Array.isArray(j.decode)).toBe(true);
    expect(j.decode).toHaveLength(j.devices.length * 3);
  });

  it('bench --cpu runs the CPU backend, says so, and writes JSON', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'flashattn-')), 'bench.json');
    const r = await capture(['bench', '--cpu', '--seqlens', '64', '--heads', '2', '--headdims', '16',
      '--iters', '1', '--warmup', '0', '--json', file]);
    if (r.code !== 0) throw new Error(`bench failed (${r.code}): ${r.err}`);
    expect(r.out).toMatch(/CPU backend/);
    expect(r.err).toMatch(/\[1\/\d+\] fwd d16 s64/);
    const j = JSON.parse(readFileSync(file, 'utf8'));
    expect(j.mode).toBe('cpu');
    expect(j.rows.length).toBeGreaterThan(0);
    for (const row of j.rows) {
      expect(row.error).toBeUndefined();
      expect(['flash', 'naive']).toContain(row.impl);
      expect(row.samples).toHaveLength(1);
      expect(row.peakRssBytes).toBeGreaterThan(0);
    }
  });

  it('bench --decode without a usable GPU (or with --cpu) fails with E_NO_DEVICE and says why', async () => {
    const r = await capture(['bench', '--decode', '--cpu']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^flashattn: bench --decode times the CUDA decode kernels and needs a GPU: --cpu was given \[E_NO_DEVICE\]/);
    expect(r.out).toBe('');
  });

  it('bench reports a bad option as an error with exit code 1', async () => {
    const r = await capture(['bench', '--iters', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--iters needs an integer >= 1/);
  });

  it('bench --headdims 63 fails up front, with no benchmark rows', async () => {
    const r = await capture(['bench', '--cpu', '--headdims', '63']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^flashattn: --headdims: head dims must be multiples of 8/);
    expect(r.err).not.toMatch(/\[1\//);
    expect(r.out).toBe('');
  });

  it("bench --masks none labels its rows 'none'", async () => {
    const r = await capture(['bench', '--cpu', '--masks', 'none', '--seqlens', '32', '--heads', '1', '--headdims', '8',
      '--ops', 'fwd', '--no-naive', '--iters', '1', '--warmup', '0']);
    if (r.code !== 0) throw new Error(`bench failed (${r.code}): ${r.err}`);
    expect(r.err).toMatch(/\[1\/1\] fwd d8 s32 none …/);
    expect(r.out).toMatch(/ none /);
    expect(`${r.out}${r.err}`).not.toMatch(/full|causal/);
  });

  it('inspect says how the addon was found and why it is this build', async () => {
    const r = await capture(['inspect']);
    expect(r.out).toMatch(/found as: +FLASHATTN_BINARY/);
    expect(r.out).toMatch(/why: +/);
    const j = JSON.parse((await capture(['inspect', '--json'])).out);
    expect(j.load).toMatchObject({ origin: 'FLASHATTN_BINARY', file: process.env.FLASHATTN_BINARY });
  });

  it('prints a load failure with one flashattn: prefix', async () => {
    const saved = process.env.FLASHATTN_BINARY;
    process.env.FLASHATTN_BINARY = join(tmpdir(), 'no-such-dir', 'flashattn.node');
    try {
      let fresh: typeof import('../src-ts/cli') | undefined;
      // A fresh module registry: the addon this file already loaded is not cached there.
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        fresh = require('../src-ts/cli') as typeof import('../src-ts/cli');
      });
      let err = '';
      const so = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const se = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
        err += String(s);
        return true;
      });
      let code: number;
      try {
        code = await fresh!.main(['inspect']);
      } finally {
        so.mockRestore();
        se.mockRestore();
      }
      const r = { code, err };
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^flashattn: Could not load the native addon of flashattn/);
      expect(r.err).not.toMatch(/flashattn: flashattn:/);
      expect(r.err).toContain('no-such-dir');
    } finally {
      process.env.FLASHATTN_BINARY = saved;
    }
  });
});
