// plan.test.ts — the one plan (cuda/plan/), asked about hypothetical devices and builds through
// the addon's planFor(): the answers probe(), dispatch and select() give, with no GPU.
import { binding } from '../src-ts/binding';
import type { NativePlanForRequest } from '../src-ts/binding';

const b = () => binding();
// A CUDA build with sm_90a holds the Hopper forward, whose own rule (sm90_forward_covers) then
// decides for capability 9.0; elsewhere the sm90 slot is closed.
const report = binding().probe();
const HAS_SM90 = report.build === 'cuda' && report.compiledArchs.includes('sm_90a');

function ask(cap: [number, number], archs: string, extra: Partial<NativePlanForRequest> = {}) {
  return b().planFor({
    capability: cap,
    archs,
    op: 'forward',
    device: 0,
    dtype: 'bfloat16',
    headDim: 128,
    seqlenQ: 512,
    seqlenK: 512,
    headsQ: 8,
    headsKV: 8,
    windowLeft: -1,
    windowRight: -1,
    ...extra,
  });
}

const CAPS: Array<[number, number]> = [
  [8, 0],
  [8, 6],
  [8, 9],
  [9, 0],
  [10, 0],
  [12, 0],
];

// What runs the forward (bf16, d128), per build and capability. PTX of a plain entry is
// JIT-compiled for newer devices; sm_86 code does not run on 8.0.
const EXPECTED: Record<string, string[]> = {
  '80': ['sm80', 'sm80', 'sm80', 'sm80', 'sm80', 'sm80'],
  '80;90a': ['sm80', 'sm80', 'sm80', 'sm80', 'sm80', 'sm80'],
  '86': ['none', 'sm80', 'sm80', 'sm80', 'sm80', 'sm80'],
};

describe('the plan for every capability and build', () => {
  for (const [archs, paths] of Object.entries(EXPECTED)) {
    CAPS.forEach((cap, i) => {
      it(`build ${archs}, capability ${cap.join('.')}: forward and backward on ${paths[i]}; probe lists the same`, () => {
        for (const op of ['forward', 'backward'] as const) {
          const fwd = ask(cap, archs, { op });
          // A build with sm_90a code runs the sm90 forward and backward on 9.0 (d128 here).
          const sm90 = HAS_SM90 && archs.includes('90a') && cap[0] === 9 && cap[1] === 0;
          expect(fwd.path).toBe(sm90 ? 'sm90' : paths[i]);
          if (fwd.path === 'none') {
            expect(fwd.reason).toMatch(/compiled for sm_86/);
            expect(fwd.devicePaths).toEqual([]);
            expect(fwd.devicePathsReason).not.toBe('');
          } else {
            expect(fwd.kernelHeadDim).toBe(128);
            expect(fwd.devicePaths).toContain(fwd.path);
          }
        }
      });
    });
  }

  it('the sm90 slot: capability 9.0, sm_90a code and the Hopper rule; FLASHATTN_KERNEL_PATH forces a path', () => {
    const p = ask([9, 0], '80;90a');
    expect(p.path).toBe(HAS_SM90 ? 'sm90' : 'sm80');
    expect(p.devicePaths).toEqual(HAS_SM90 ? ['sm90', 'sm80'] : ['sm80']);
    const forced = ask([9, 0], '80;90a', { forcePath: 'sm90' });
    if (HAS_SM90) {
      expect(forced.path).toBe('sm90');
      expect(forced.kernelHeadDim).toBe(128);
    } else {
      expect(forced.path).toBe('none');
      expect(forced.reason).toMatch(/FLASHATTN_KERNEL_PATH=sm90.*no sm90/);
    }
    expect(ask([9, 0], '80', { forcePath: 'sm90' }).reason).toMatch(/without sm_90a/);
    expect(ask([8, 0], '80;90a', { forcePath: 'sm90' }).reason).toMatch(/only on capability 9\.0/);
    expect(ask([9, 0], '80;90a', { forcePath: 'sm80' }).path).toBe('sm80');
    const bwd = ask([9, 0], '80;90a', { op: 'backward' });
    expect(bwd.path).toBe(HAS_SM90 ? 'sm90' : 'sm80');
    if (!HAS_SM90) expect(ask([9, 0], '80;90a', { op: 'backward', forcePath: 'sm90' }).reason).toMatch(/no sm90 .*backward/);
    // Deterministic gradients and head dims past 128 stay on the sm80 backward.
    expect(ask([9, 0], '80;90a', { op: 'backward', deterministic: true }).path).toBe('sm80');
    expect(ask([9, 0], '80;90a', { op: 'backward', headDim: 256 }).path).toBe('sm80');
  });

  it('float8_e4m3 needs the sm90 forward; float32 is the CPU backend\'s', () => {
    if (HAS_SM90) {
      // The e4m3 forward, with its Vᵀ workspace: b · h_k · d · (s_k rounded up to 64) bytes.
      const p = ask([9, 0], '80;90a', { dtype: 'float8_e4m3', batch: 2 });
      expect(p).toMatchObject({ path: 'sm90', kernelHeadDim: 128, workspaceBytes: 2 * 8 * 128 * 512 });
    } else {
      expect(ask([9, 0], '80;90a', { dtype: 'float8_e4m3' })).toMatchObject({ path: 'none', reason: expect.stringMatching(/float8_e4m3 needs the sm90 forward/) });
    }
    expect(ask([8, 9], '80', { dtype: 'float8_e4m3' }).reason).toMatch(/float8_e4m3 needs the sm90 forward/);
    expect(ask([8, 0], '80', { dtype: 'float32' })).toMatchObject({ path: 'none', reason: expect.stringMatching(/float32 runs on the CPU/) });
  });

  it('sends a forward of a few query rows to the split-KV decode kernels, where they run', () => {
    for (const [cap, archs] of [[[9, 0], '80;90a'], [[8, 0], '80'], [[8, 6], '86']] as Array<[[number, number], string]>) {
      const shape = { seqlenQ: 1, seqlenK: 8192, batch: 1, headsQ: 32, headsKV: 8, smCount: 132 };
      const p = ask(cap, archs, shape);
      // The same answer as the KV-cache plan for that shape on that device: its splits, its workspace.
      const kv = b().planDecode({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, capacity: 8192, capability: cap, smCount: 132, archs });
      expect({ cap, decode: p.decode, ok: p.path !== 'none' }).toEqual({ cap, decode: kv.ok, ok: true });
      if (!kv.ok) continue;
      expect(p.splits).toBe(kv.splits);
      expect(p.workspaceBytes).toBe(kv.workspaceBytes);
      expect(ask(cap, archs, { seqlenQ: 16, batch: 1 }).decode).toBe(true);
      expect(ask(cap, archs, { seqlenQ: 17, batch: 1 }).decode).toBe(false);
      expect(ask(cap, archs, { seqlenQ: 1, batch: 1, headDim: 96 }).decode).toBe(false); // no d96 decode kernel
    }
    expect(ask([9, 0], '80;90a', { seqlenQ: 1, seqlenK: 8192, batch: 1, smCount: 132 }).splits).toBeGreaterThan(1);
    // FLASHATTN_KERNEL_PATH forces a prefill kernel; the backward never takes this route.
    expect(ask([9, 0], '80;90a', { seqlenQ: 1, batch: 1, forcePath: 'sm80' }).decode).toBe(false);
    expect(ask([9, 0], '80;90a', { seqlenQ: 1, batch: 1, op: 'backward' }).decode).toBe(false);
  });

  it('picks the forward tile from the shared memory the device offers', () => {
    expect(ask([8, 0], '80').tile).toBe('full');
    expect(ask([9, 0], '80;90a', { windowRight: 0, forcePath: 'sm80' }).tile).toBe('masked');
    expect(ask([8, 0], '80', { windowRight: 0 }).tile).toBe('full'); // the masked d128 tile needs 224 KB
    expect(ask([8, 6], '80').tile).toBe('compact');
    expect(ask([12, 0], '80').tile).toBe('compact');
  });

  it('refuses a backward whose shared memory the device lacks, and says how much', () => {
    const p = ask([8, 6], '80', { op: 'backward', headDim: 256 });
    expect(p.path).toBe('none');
    expect(p.reason).toMatch(/offers 101376 bytes.*backward at head dim 256 needs \d+/);
    expect(ask([8, 0], '80', { op: 'backward', headDim: 256 }).path).toBe('sm80');
  });

  it('reports the backward workspace, larger without determinism', () => {
    const plain = ask([9, 0], '80;90a', { op: 'backward', batch: 2, forcePath: 'sm80' });
    const det = ask([9, 0], '80;90a', { op: 'backward', batch: 2, deterministic: true });
    expect(plain.path).toBe('sm80');
    expect(det.path).toBe('sm80');
    // LSE and D rows: 2 * b * h * s_q_pad floats; the dq accumulator adds b * h * s_q * d floats.
    expect(det.workspaceBytes).toBe(2 * 2 * 8 * 512 * 4);
    expect(plain.workspaceBytes).toBe(det.workspaceBytes! + 2 * 8 * 512 * 128 * 4);
    // The sm90 backward (a CUDA build with sm_90a): the same rows and accumulator, in its layout.
    const sm90 = ask([9, 0], '80;90a', { op: 'backward', batch: 2 });
    if (HAS_SM90) expect(sm90).toMatchObject({ path: 'sm90', workspaceBytes: 2 * 8 * 512 * (2 + 128) * 4 });
    expect(ask([9, 0], '80;90a', { forcePath: 'sm80' }).workspaceBytes).toBe(0);
  });

  it('checks the request itself: scale, heads, head dim, capability', () => {
    expect(ask([8, 0], '80', { scale: -1 }).reason).toMatch(/positive, finite softmax scale/);
    expect(ask([8, 0], '80', { headDim: 264 }).reason).toMatch(/head dim 264/);
    expect(ask([7, 5], '80').reason).toMatch(/older than compute capability 8\.0/);
  });

  it('reads CMake arch lists in every spelling and refuses what it cannot read', () => {
    expect(ask([9, 0], '80-real').path).toBe('none'); // SASS only: no PTX to JIT for 9.0
    expect(ask([9, 0], '80-virtual').path).toBe('sm80');
    expect(ask([9, 0], 'sm_80, sm_90a').path).toBe(HAS_SM90 ? 'sm90' : 'sm80');
    expect(ask([9, 0], 'sm_80, sm_90a', { forcePath: 'sm80' }).path).toBe('sm80');
    expect(ask([9, 0], 'sm_80, sm_90a', { forcePath: 'sm90' }).path).toBe(HAS_SM90 ? 'sm90' : 'none');
    expect(() => ask([9, 0], 'native')).toThrow(/cannot read CUDA arch "native"/);
  });
});

describe('the decode (KV-cache) plan: splits from the SM count, shared memory, build', () => {
  const H200 = { capability: [9, 0] as [number, number], smCount: 132, archs: '80;90a' };
  const decode = (extra: Record<string, unknown> = {}) =>
    b().planDecode({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, capacity: 8192, ...H200, ...extra });

  it('picks the split counts measured best on the H200 (one CTA per SM for short splits)', () => {
    const cases: Array<[number, number, number]> = [
      [1, 4096, 16], [1, 8192, 16], [1, 16384, 16], [1, 32768, 32], [1, 131072, 32],
      [16, 1024, 2], [16, 8192, 2], [64, 4096, 1],
    ];
    for (const [batch, capacity, splits] of cases) {
      const p = decode({ batch, capacity });
      expect({ batch, capacity, ok: p.ok, splits: p.splits }).toEqual({ batch, capacity, ok: true, splits });
      // Partial O and LSE per split and packed row, then one arrival counter per (batch, KV head)
      // tile for the fused combine, rounded to 256 bytes; none for one split.
      const bytes = splits > 1 ? Math.ceil((splits * batch * 8 * 4 * 129 * 4 + batch * 8 * 4) / 256) * 256 : 0;
      expect(p.workspaceBytes).toBe(bytes);
    }
    // Fewer SMs, fewer splits at the same shape.
    expect(decode({ smCount: 66 }).splits).toBeLessThan(decode().splits);
  });

  it('uses the 64-row tile for speculative decoding and refuses what the device or build cannot run', () => {
    expect(decode({ seqlenQ: 16 }).tileRows).toBe(64);
    expect(decode().tileRows).toBe(16);
    const d256 = decode({ headDim: 256, capability: [8, 6], smCount: 84 });
    expect(d256.ok).toBe(false);
    expect(d256.reason).toMatch(/d256 decode tile needs 140 KB of shared memory per block and this GPU allows 99 KB/);
    const noCode = decode({ capability: [8, 0], smCount: 108, archs: '90a' });
    expect(noCode.ok).toBe(false);
    expect(noCode.reason).toMatch(/compiled for sm_90a, none of which runs on sm_80/);
    expect(decode({ headDim: 96 })).toMatchObject({ ok: false, reason: 'head dim must be 64, 128 or 256' });
    expect(decode({ dtype: 'float32' })).toMatchObject({ ok: false, reason: 'dtype must be bfloat16 or float16' });
    expect(decode({ capability: [8, 0], smCount: 108, archs: '80' }).ok).toBe(true);
  });

  it('answers for this machine\'s devices through the same function (none here, with a reason)', () => {
    const p = b().planDecode({ dtype: 'bfloat16', batch: 1, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, capacity: 8192, device: 0 });
    if (report.devices.length === 0) {
      expect(p.ok).toBe(false);
      expect(p.reason).toMatch(report.build === 'cuda' ? /no CUDA device/ : /built without CUDA/);
    } else {
      expect(p.ok).toBe(true);
    }
  });
});

describe('select() and probe() in this build', () => {
  it('select() answers from the same plan (no device here: none, with a reason)', () => {
    const sel = b().select({ op: 'forward', device: 0, dtype: 'bfloat16', headDim: 128, seqlenQ: 8, seqlenK: 8, headsQ: 2, headsKV: 2, windowLeft: -1, windowRight: -1 });
    const report = b().probe();
    if (report.devices.length === 0) {
      expect(sel.path).toBe('none');
      expect(sel.reason).not.toBe('');
    } else {
      expect(report.devices[0].paths).toContain(sel.path);
    }
  });
});
