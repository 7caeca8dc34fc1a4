// cpu-memory.ts — extra host memory of one CPU-backend forward, measured in its own process:
// peak RSS during the call minus the RSS once the inputs and outputs exist.
//   node dist/scripts/cpu-memory.js [flash|naive] [seqlen] [heads] [headDim]
// A benchmark script, not a test: it prints what it saw and asserts nothing.
import { binding } from '../src-ts/binding';
import { flashAttention, tensor } from '../src-ts/index';

async function main(): Promise<void> {
  const [impl = 'flash', s = '4096', h = '16', d = '64'] = process.argv.slice(2);
  const [seqlen, heads, headDim] = [Number(s), Number(h), Number(d)];
  if (impl !== 'flash' && impl !== 'naive') throw new Error(`impl must be flash or naive, got '${impl}'`);
  const n = seqlen * heads * headDim;
  const mk = () => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
    return tensor(a, [1, seqlen, heads, headDim]);
  };
  const [q, k, v] = [mk(), mk(), mk()];
  // One warm call at a tiny size loads the addon and starts its thread pool outside the window.
  await flashAttention(tensor(new Float32Array(8 * 8), [1, 1, 8, 8]), tensor(new Float32Array(64), [1, 1, 8, 8]), tensor(new Float32Array(64), [1, 1, 8, 8]));
  const out = new Float32Array(n).fill(1); // outputs allocated and touched before the window
  const lse = new Float32Array(heads * seqlen).fill(1);
  const base = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  // Both paths call the addon directly with outputs allocated above, so the window holds only
  // what the backend itself allocates (the public API would also allocate out and lse in it).
  await binding().forward({
    backend: 'cpu', device: 0, scale: 1 / Math.sqrt(headDim), windowLeft: -1, windowRight: -1, threads: 0,
    naive: impl === 'naive',
    q: { data: q.data as Float32Array, shape: [...q.shape], dtype: 'float32' },
    k: { data: k.data as Float32Array, shape: [...k.shape], dtype: 'float32' },
    v: { data: v.data as Float32Array, shape: [...v.shape], dtype: 'float32' },
    out: { data: out, shape: [...q.shape], dtype: 'float32' },
    lse: { data: lse, shape: [1, heads, seqlen], dtype: 'float32' },
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const peak = process.resourceUsage().maxRSS * 1024;
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  console.log(
    `${impl} seqlen ${seqlen} heads ${heads} headDim ${headDim}: ${ms.toFixed(0)} ms, ` +
      `RSS before ${mib(base)} MiB, peak ${mib(peak)} MiB, extra ${mib(peak - base)} MiB ` +
      `(one materialized float32 score matrix per head: ${mib(seqlen * seqlen * 4)} MiB)`,
  );
}

main().catch((err: Error) => {
  console.error(`cpu-memory: ${err.message}`);
  process.exit(1);
});
