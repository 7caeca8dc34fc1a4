// sanitize-case.ts — one small forward and one backward launch per head dim through the public
// API on CUDA, for running under compute-sanitizer (memcheck, racecheck) on a GPU host:
//   compute-sanitizer --tool memcheck node dist/scripts/sanitize-case.js
// HEAD_DIMS=64,128 picks head dims; OPS=fwd or OPS=bwd launches only that pass (the backward
// still needs one forward for its out and lse, run on the CPU backend then), so a sanitizer
// report can be pinned on one kernel. SEQLEN_Q=5 (at most 16) sends the forward to the split-KV
// decode kernels (the plan's decode route). OPS=quant quantizes a DeviceTensor to e4m3 on the
// device instead (cuda/quant/), without and with the Hadamard rotation, per head dim 64/128/256.
// Exits non-zero on any error it sees itself.
import { DeviceTensor, flashAttention, flashAttentionBackward, quantizeFp8, tensor, toBfloat16 } from '../src-ts/index';

function random(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

async function main(): Promise<void> {
  const headDims = (process.env.HEAD_DIMS ?? '32,64,96,128,192,256').split(',').map(Number);
  const ops = process.env.OPS ? process.env.OPS.split(',') : ['fwd', 'bwd'];
  // 700 keys: more key blocks than pipeline stages for every tile, so stage reuse is checked too.
  const [b, sq, sk, h, hk] = [1, Number(process.env.SEQLEN_Q ?? 97), 700, 4, 2];
  if (ops.includes('quant')) {
    for (const d of headDims.filter((x) => x === 64 || x === 128 || x === 256)) {
      const t = await DeviceTensor.from(tensor(toBfloat16(random(2 * 300 * 3 * d)), [2, 300, 3, d], 'bfloat16'));
      for (const hadamard of [false, true]) {
        const r = await quantizeFp8(t, { hadamard });
        r.data.dispose();
        r.descale.dispose();
      }
      t.dispose();
      console.log(`sanitize-case: d=${d} quantizeFp8 on the device launched (b=2 s=300 h=3, hadamard off and on)`);
    }
    return;
  }
  for (const d of headDims) {
    const mk = (s: number, heads: number) => tensor(toBfloat16(random(b * s * heads * d)), [b, s, heads, d], 'bfloat16');
    const q = mk(sq, h);
    const k = mk(sk, hk);
    const v = mk(sk, hk);
    const opts = { device: 'cuda' as const, causal: true };
    const { out, lse } = await flashAttention(q, k, v, { ...opts, device: ops.includes('fwd') ? 'cuda' : 'cpu' });
    if (ops.includes('bwd')) await flashAttentionBackward(mk(sq, h), q, k, v, out, lse, opts);
    console.log(`sanitize-case: d=${d} ${ops.join(' + ')} launched (b=${b} sq=${sq} sk=${sk} h=${h} hk=${hk}, causal)`);
  }
}

main().catch((err: Error) => {
  console.error(`sanitize-case: ${err.message}`);
  process.exit(1);
});
