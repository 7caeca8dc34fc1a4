// varlen-bench.ts — flashAttentionVarlen against a padded batch with the same number of tokens,
// through the public API with DeviceTensors (16 sequences of mixed lengths 64 … 4096, 16k tokens
// in all, heads 16, head dim 128, bf16), forward and backward, causal and not.
//   node dist/scripts/varlen-bench.js [--json FILE]
// A benchmark, not a test: it prints what it saw and asserts nothing. Time per call is the wall
// clock of 20 calls in flight on one Stream, divided by 20 (median of 7 such rounds, varlen and
// padded rounds alternating), so the per-call host cost is amortized the same way for both.
import { writeFileSync } from 'node:fs';

import { captureTraces } from './trace-capture';
import {
  DeviceTensor,
  Stream,
  flashAttention,
  flashAttentionBackward,
  flashAttentionVarlen,
  flashAttentionVarlenBackward,
  tensor,
  toBfloat16,
} from '../src-ts/index';

const LENS = [4096, 3072, 2048, 2048, 1024, 1024, 1024, 512, 512, 320, 256, 128, 128, 64, 64, 64];
const HEADS = 16;
const D = 128;
const IN_FLIGHT = 20;

const total = LENS.reduce((a, b) => a + b, 0);

// FLASHATTN_TRACE=gpu: the addon's per-call trace (GPU kernel time, the GPU's idle time before each
// kernel, host milestones), collected per timed side and printed as medians after each case.
const traces = process.env.FLASHATTN_TRACE === 'gpu' ? captureTraces() : [];
const traceSummary = (): string => {
  const med = (k: string) => median(traces.map((t) => t[k]).filter((x) => typeof x === 'number'));
  const line = ['kernelUs', 'gapUs', 'launchUs', 'enqueueUs', 'doneUs', 'settleUs'].map((k) => `${k} ${med(k)?.toFixed(1)}`).join(', ');
  traces.length = 0;
  return line;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Useful FLOPs of one sequence of length s: 4·s·s·h·d, halved for causal; backward 2.5×. */
const flops = (s: number, causal: boolean, bwd: boolean) => (4 * s * s * HEADS * D * (causal ? 0.5 : 1)) * (bwd ? 2.5 : 1);

async function random(shape: number[]): Promise<DeviceTensor> {
  const f = new Float32Array(shape.reduce((a, x) => a * x, 1));
  for (let i = 0; i < f.length; i++) f[i] = Math.random() * 2 - 1;
  return DeviceTensor.from(tensor(toBfloat16(f), shape, 'bfloat16'));
}

/** ms per call of `a` and of `b`, IN_FLIGHT calls at once on the Stream, in alternating rounds
 * (medians of 7 each, after 3 warm-up calls of each): the GPU's clock moves with its load, and
 * alternating gives both the same conditions. */
async function timePair(a: () => Promise<DeviceTensor[]>, b: () => Promise<DeviceTensor[]>): Promise<[number, number]> {
  for (let i = 0; i < 3; i++) {
    for (const t of await a()) t.dispose();
    for (const t of await b()) t.dispose();
  }
  const round = async (call: () => Promise<DeviceTensor[]>) => {
    const t0 = process.hrtime.bigint();
    const all = await Promise.all(Array.from({ length: IN_FLIGHT }, call));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / IN_FLIGHT;
    for (const ts of all) for (const t of ts) t.dispose();
    return ms;
  };
  const ra: number[] = [];
  const rb: number[] = [];
  if (process.env.FLASHATTN_TRACE === 'gpu') {
    // Traced: each side's rounds together, so each side's trace medians are its own.
    traceSummary();
    for (let r = 0; r < 7; r++) ra.push(await round(a));
    console.log(`  trace, varlen: ${traceSummary()}`);
    for (let r = 0; r < 7; r++) rb.push(await round(b));
    console.log(`  trace, padded: ${traceSummary()}`);
  } else {
    for (let r = 0; r < 7; r++) {
      ra.push(await round(a));
      rb.push(await round(b));
    }
  }
  return [median(ra), median(rb)];
}

async function main(): Promise<void> {
  const json = process.argv.indexOf('--json');
  const rows: Record<string, unknown>[] = [];
  using stream = new Stream(0);
  const cu = Int32Array.from([0, ...LENS.map((_, i) => LENS.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
  const packed = await Promise.all([0, 1, 2, 3].map(() => random([total, HEADS, D])));
  const [q, k, v, dout] = packed;
  // The padded comparison: the same tokens as batch 4 × 4096.
  const padded = await Promise.all([0, 1, 2, 3].map(() => random([4, 4096, HEADS, D])));
  const [pq, pk, pv, pdo] = padded;
  console.log(`varlen: ${LENS.length} sequences (${LENS.join(', ')}), ${total} tokens; padded: batch 4 × 4096; h ${HEADS} d ${D} bf16`);
  console.log('case               varlen ms  TFLOP/s   padded ms  TFLOP/s   varlen/padded');
  for (const causal of [false, true]) {
    const seqs = { cuSeqlensQ: cu, cuSeqlensK: cu, causal, stream };
    const f = await flashAttentionVarlen(q, k, v, seqs);
    const pf = await flashAttention(pq, pk, pv, { causal, stream });
    for (const bwd of [false, true]) {
      const [vms, pms] = await timePair(
        async () => {
          if (!bwd) {
            const r = await flashAttentionVarlen(q, k, v, seqs);
            return [r.out, r.lse];
          }
          const g = await flashAttentionVarlenBackward(dout, q, k, v, f.out, f.lse, seqs);
          return [g.dq, g.dk, g.dv];
        },
        async () => {
          if (!bwd) {
            const r = await flashAttention(pq, pk, pv, { causal, stream });
            return [r.out as DeviceTensor, r.lse as DeviceTensor];
          }
          const g = await flashAttentionBackward(pdo, pq, pk, pv, pf.out, pf.lse, { causal, stream });
          return [g.dq as DeviceTensor, g.dk as DeviceTensor, g.dv as DeviceTensor];
        },
      );
      const vf = LENS.reduce((a, s) => a + flops(s, causal, bwd), 0);
      const pfl = 4 * flops(4096, causal, bwd);
      const vt = vf / (vms * 1e-3) / 1e12, pt = pfl / (pms * 1e-3) / 1e12;
      const name = `${bwd ? 'bwd' : 'fwd'} ${causal ? 'causal' : 'full'}`;
      console.log(`${name.padEnd(18)} ${vms.toFixed(3).padStart(9)} ${vt.toFixed(1).padStart(8)} ${pms.toFixed(3).padStart(11)} ${pt.toFixed(1).padStart(8)} ${(vt / pt).toFixed(3).padStart(15)}`);
      rows.push({ case: name, varlenMs: vms, varlenTflops: vt, paddedMs: pms, paddedTflops: pt, ratio: vt / pt });
    }
    for (const t of [f.out, f.lse, pf.out, pf.lse] as DeviceTensor[]) t.dispose();
  }
  for (const t of [...packed, ...padded]) t.dispose();
  if (json > 0) writeFileSync(process.argv[json + 1], JSON.stringify({ lens: LENS, heads: HEADS, headDim: D, rows }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
