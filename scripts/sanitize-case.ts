// sanitize-case.ts — one small forward and one backward launch per head dim through the public
// API on CUDA, for running under compute-sanitizer (memcheck, racecheck) on a GPU host:
//   compute-sanitizer --tool memcheck node dist/scripts/sanitize-case.js
// Exits non-zero on any error it sees itself; the sanitizer reports its own findings.
import { flashAttention, flashAttentionBackward, tensor, toBfloat16 } from '../src-ts/index';

function random(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

async function main(): Promise<void> {
  const headDims = (process.env.HEAD_DIMS ?? '32,64,96,128,192,256').split(',').map(Number);
  const [b, sq, sk, h, hk] = [1, 97, 131, 4, 2];
  for (const d of headDims) {
    const mk = (s: number, heads: number) => tensor(toBfloat16(random(b * s * heads * d)), [b, s, heads, d], 'bfloat16');
    const q = mk(sq, h);
    const k = mk(sk, hk);
    const v = mk(sk, hk);
    const opts = { device: 'cuda' as const, causal: true };
    const { out, lse } = await flashAttention(q, k, v, opts);
    const dout = mk(sq, h);
    await flashAttentionBackward(dout, q, k, v, out, lse, opts);
    console.log(`sanitize-case: d=${d} forward + backward launched (b=${b} sq=${sq} sk=${sk} h=${h} hk=${hk}, causal)`);
  }
}

main().catch((err: Error) => {
  console.error(`sanitize-case: ${err.message}`);
  process.exit(1);
});
