// call-loop.ts — one shape's awaited calls in a loop through the public API with DeviceTensors, for
// a profiler to sample (node --cpu-prof, perf): nothing else runs, so every sample is the call path.
//   node [--cpu-prof] dist/scripts/call-loop.js [--calls N] [--seqlen-k N]
// Prints the median µs per call; asserts nothing.
import { DeviceTensor, flashAttention, tensor, toBfloat16 } from '../src-ts/index';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

async function main(): Promise<void> {
  const calls = arg('--calls', 20000);
  const sk = arg('--seqlen-k', 128);
  const mk = (seq: number) => {
    const f = new Float32Array(seq * 8 * 128);
    for (let i = 0; i < f.length; i++) f[i] = Math.random() * 2 - 1;
    return DeviceTensor.from(tensor(toBfloat16(f), [1, seq, 8, 128], 'bfloat16'));
  };
  const [q, k, v] = [await mk(1), await mk(sk), await mk(sk)];
  const us: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    const r = await flashAttention(q, k, v);
    us.push(Number(process.hrtime.bigint() - t0) / 1e3);
    r.out.dispose();
    r.lse.dispose();
  }
  us.sort((a, b) => a - b);
  console.log(`call-loop: ${calls} awaited calls (b1 sq1 sk${sk} h8 d128 bf16): median ${us[us.length >> 1].toFixed(1)} us, p10 ${us[Math.floor(us.length / 10)].toFixed(1)} us`);
  for (const t of [q, k, v]) t.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
