// decode-splits.ts — the split-KV decode kernel's time against its split count, next to what the
// split heuristic (cuda/plan/decode_plan.cpp) picks, on the bench's decode shapes (d128 bf16,
// GQA 32/8, one query token, cold L2): the data the heuristic is tuned from.
//   node dist/scripts/decode-splits.js [--json FILE]
// A benchmark, not a test: it prints what it saw and asserts nothing.
import { writeFileSync } from 'node:fs';

import { binding } from '../src-ts/binding';

const SPLITS = [1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64];
const ROWS: Array<[number, number, number]> = [
  [1, 8192, 0], [1, 8192, 16], [1, 32768, 0], [1, 131072, 0], [1, 131072, 16], [16, 8192, 0], [16, 8192, 16], [64, 4096, 16],
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const b = binding();
  const out: unknown[] = [];
  for (const [batch, context, pageSize] of ROWS) {
    const bytes = 2 * batch * context * 8 * 128 * 2;
    const run = async (numSplits: number) => {
      const r = await b.benchDecode({
        device: 0, dtype: 'bfloat16', batch, seqlenQ: 1, headsQ: 32, headsKV: 8, headDim: 128, context, pageSize,
        coldL2: true, numSplits, warmup: 10, iters: 60,
      });
      return { ms: median(r.ms), kernel: r.kernel };
    };
    const h = await run(0);
    const sweep: Array<[number, number]> = [];
    for (const s of SPLITS) sweep.push([s, (await run(s)).ms]);
    const best = sweep.reduce((a, x) => (x[1] < a[1] ? x : a));
    const tb = (ms: number) => (bytes / (ms * 1e-3) / 1e12).toFixed(2);
    console.log(`b${batch} ctx ${context} ${pageSize ? `paged ${pageSize}` : 'contiguous'}: heuristic ${tb(h.ms)} TB/s (${h.kernel}); best ${best[0]} splits ${tb(best[1])} TB/s; ` +
      sweep.map(([s, ms]) => `${s}:${tb(ms)}`).join(' '));
    out.push({ batch, context, pageSize, heuristic: h, sweep });
  }
  const j = process.argv.indexOf('--json');
  if (j > 0) writeFileSync(process.argv[j + 1], JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
