// quant-emulate-check.ts — compares src-ts/fp8.ts quantizeHost with cuda/dev/quant_emulate.cpp (the
// device kernels' arithmetic and lane order replayed on the host, from the same cuda/quant/e4m3.h)
// on random outlier data with NaN, ±Inf, huge, tiny and subnormal values, for every head dim the
// rotation takes, hadamard on and off, per head and per tensor. A dev check with no GPU:
//   g++ -O2 -std=c++17 -ffp-contract=off -I. -Icuda cuda/dev/quant_emulate.cpp -o /tmp/quant_emulate
//   node dist/scripts/quant-emulate-check.js /tmp/quant_emulate
import { execFileSync } from 'child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { quantizeHost } from '../src-ts/fp8';

function main(): void {
  const exe = process.argv[2] ?? '/tmp/quant_emulate';
  const dir = mkdtempSync(join(tmpdir(), 'quant-emulate-'));
  let fails = 0, cases = 0;
  for (const d of [64, 128, 256, 40]) {
    for (const hadamard of d === 40 ? [false] : [false, true]) {
      for (const perTensor of [false, true]) {
        const [b, s, h] = [2, 67, 3];
        const n = b * s * h * d;
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const u = Math.random();
          x[i] = (Math.random() * 2 - 1) * (u < 0.002 ? 30 : u < 0.004 ? 1e-6 : u < 0.005 ? 1e-41 : 1);
        }
        const special = [NaN, Infinity, -Infinity, 3e38, -0, 1e-45];
        for (let k = 0; k < special.length; k++) x[Math.floor(Math.random() * n)] = special[k];
        new Uint32Array(x.buffer)[Math.floor(Math.random() * n)] = 0xffc00001;
        // one head of tiny values only (scale capped at 2^127), one all-zero head
        for (let si = 0; si < s; si++) {
          for (let c = 0; c < d; c++) {
            x[((0 * s + si) * h + 1) * d + c] = 1e-39 * (Math.random() - 0.5);
            x[((1 * s + si) * h + 2) * d + c] = 0;
          }
        }
        writeFileSync(join(dir, 'in.f32'), new Uint8Array(x.buffer));
        execFileSync(exe, [join(dir, 'in.f32'), `${b}`, `${s}`, `${h}`, `${d}`, hadamard ? '1' : '0', perTensor ? '1' : '0', join(dir, 'out.e4m3'), join(dir, 'out.ds')]);
        const bits = new Uint8Array(readFileSync(join(dir, 'out.e4m3')));
        const ds = new Uint32Array(new Uint8Array(readFileSync(join(dir, 'out.ds'))).buffer);
        const ref = quantizeHost(x, [b, s, h, d], perTensor ? 'tensor' : 'head', 'bshd', hadamard);
        const refDs = new Uint32Array(ref.descale.buffer);
        let bad = 0;
        for (let i = 0; i < n; i++) if (bits[i] !== ref.bits[i]) bad++;
        for (let i = 0; i < refDs.length; i++) if (ds[i] !== refDs[i]) bad++;
        cases++;
        if (bad) fails++;
        console.log(`d ${d} hadamard ${hadamard} ${perTensor ? 'tensor' : 'head  '}: ${bad === 0 ? 'same bits' : `${bad} differences`}`);
      }
    }
  }
  console.log(`quant-emulate-check: ${cases - fails}/${cases} cases bit-identical`);
  process.exitCode = fails ? 1 : 0;
}

main();
