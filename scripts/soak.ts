// soak.ts — many calls in a row, watching host RSS and device memory: flat after warm-up means
// no leak; growth that stops means a pool filling to its peak.
//   node --expose-gc dist/scripts/soak.js [calls=100000] [device|host] [dispose|gc] [inflight=8]
// device: DeviceTensor inputs and outputs; host: host tensors through pinned staging.
// dispose: outputs are disposed after each call (what a server does); gc: left to the GC.
// A benchmark-style script: it prints what it saw and asserts nothing.
import { DeviceTensor, flashAttention, probe, tensor, toBfloat16 } from '../src-ts/index';

async function main(): Promise<void> {
  const [callsArg = '100000', mode = 'device', release = 'dispose', inflightArg = '8'] = process.argv.slice(2);
  const calls = Number(callsArg);
  const inflight = Number(inflightArg);
  const [b, sq, sk, h, d] = [1, 1, 128, 8, 128];
  const mk = (s: number) => {
    const f = new Float32Array(b * s * h * d);
    for (let i = 0; i < f.length; i++) f[i] = Math.random() * 2 - 1;
    return tensor(toBfloat16(f), [b, s, h, d], 'bfloat16');
  };
  const hq = mk(sq), hk = mk(sk), hv = mk(sk);
  const onDevice = mode === 'device';
  const q = onDevice ? await DeviceTensor.from(hq) : hq;
  const k = onDevice ? await DeviceTensor.from(hk) : hk;
  const v = onDevice ? await DeviceTensor.from(hv) : hv;
  const gc = (globalThis as { gc?: () => void }).gc;
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  const sample = (done: number) => {
    gc?.();
    const m = process.memoryUsage();
    const dev = probe().devices[0];
    const used = dev ? dev.totalMemory - dev.freeMemory : 0;
    console.log(
      `${String(done).padStart(7)} calls  rss ${mib(m.rss)} MiB  heap ${mib(m.heapUsed)} MiB  external ${mib(m.external)} MiB  ` +
        `arrayBuffers ${mib(m.arrayBuffers)} MiB  device used ${mib(used)} MiB`,
    );
    return { rss: m.rss, used };
  };
  console.log(`soak: ${calls} calls, ${mode} tensors, outputs ${release === 'dispose' ? 'disposed' : 'left to the GC'}, ${inflight} in flight`);
  let done = 0;
  let warm: { rss: number; used: number } | undefined;
  let last = sample(0);
  const one = async () => {
    const r = await flashAttention(q, k, v, { device: 'cuda' });
    if (release === 'dispose' && r.out instanceof DeviceTensor) {
      r.out.dispose();
      (r.lse as DeviceTensor).dispose();
    }
  };
  const t0 = Date.now();
  while (done < calls) {
    const n = Math.min(inflight, calls - done);
    await Promise.all(Array.from({ length: n }, one));
    done += n;
    if (done === Math.min(5000, calls)) warm = sample(done);
    else if (done % 10000 === 0) last = sample(done);
  }
  last = sample(done);
  const secs = (Date.now() - t0) / 1000;
  if (warm) {
    console.log(
      `after warm-up: rss ${last.rss >= warm.rss ? '+' : ''}${mib(last.rss - warm.rss)} MiB, device ` +
        `${last.used >= warm.used ? '+' : ''}${mib(last.used - warm.used)} MiB over ${done - 5000} calls; ` +
        `${((secs * 1e6) / done).toFixed(1)} us per call with ${inflight} in flight`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
