// A consumer of the published types (CommonJS-style TypeScript). test/types/types.test.ts compiles
// it with `tsc --strict --noEmit` against the declarations the build emits, under several
// tsconfigs. Every `@ts-expect-error` line must be an error (tsc fails on an unused one), and
// every expectType<Equal<…>>() must hold, so a dtype that stops flowing fails the test.
import {
  type DType,
  DeviceTensor,
  type HostTensor,
  flashAttention,
  flashAttentionBackward,
  flashAttentionVarlen,
  flashAttentionVarlenBackward,
  probe,
  tensor,
  toBfloat16,
  toFloat16,
  type VarlenOptions,
} from 'flashattn';
// @ts-expect-error planAttention is internal: not exported from the package entry
import { planAttention } from 'flashattn';
// @ts-expect-error deep imports are closed by the exports map
import type { Plan } from 'flashattn/dist/src-ts/attention';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

const f32 = tensor(new Float32Array(16), [1, 2, 2, 4]);
expectType<Equal<typeof f32.dtype, 'float32'>>();
expectType<Equal<typeof f32.data, Float32Array>>();
const bf = tensor(toBfloat16(new Float32Array(16)), [1, 2, 2, 4], 'bfloat16');
expectType<Equal<typeof bf.dtype, 'bfloat16'>>();
expectType<Equal<typeof bf.data, Uint16Array>>();
const f16 = tensor(toFloat16([1, 2, 3, 4]), [1, 1, 1, 4], 'float16');
expectType<Equal<typeof f16.dtype, 'float16'>>();
const fp8 = tensor(new Uint8Array(16), [1, 2, 2, 4], 'float8_e4m3');
expectType<Equal<typeof fp8.dtype, 'float8_e4m3'>>();

// A dtype known only at run time still compiles, and stays the DType union.
declare const someDtype: DType;
declare const someData: Float32Array | Uint16Array | Uint8Array;
const dyn = tensor(someData, [16], someDtype);
expectType<Equal<typeof dyn.dtype, DType>>();

// @ts-expect-error a Float64Array holds no dtype flashattn takes
tensor(new Float64Array(16), [16]);
// @ts-expect-error a Float64Array is not float32 data either
tensor(new Float64Array(16), [16], 'float32');
// @ts-expect-error a bare Uint16Array needs 'float16' or 'bfloat16'
tensor(new Uint16Array(16), [16]);
// @ts-expect-error float32 data must be a Float32Array
tensor(new Uint16Array(16), [16], 'float32');
// @ts-expect-error bfloat16 data must be a Uint16Array of bits
tensor(new Float32Array(16), [16], 'bfloat16');
// @ts-expect-error float8_e4m3 data must be a Uint8Array of bits
tensor(new Uint16Array(16), [16], 'float8_e4m3');
// @ts-expect-error 'float64' is no dtype
tensor(new Float32Array(16), [16], 'float64');
// @ts-expect-error a plain number array must be converted first (Float32Array.from, toBfloat16)
tensor([1, 2, 3, 4], [4]);

export async function forward(): Promise<void> {
  const { out, lse } = await flashAttention(bf, bf, bf, { causal: true });
  expectType<Equal<typeof out.dtype, 'bfloat16'>>();
  expectType<Equal<typeof out.data, Uint16Array>>();
  expectType<Equal<typeof lse.dtype, 'float32'>>();
  expectType<Equal<typeof lse.data, Float32Array>>();
  // @ts-expect-error the out of a bfloat16 call is not float16
  const wrong: HostTensor<'float16'> = out;

  const grads = await flashAttentionBackward(out, bf, bf, bf, out, lse, { causal: true });
  expectType<Equal<typeof grads.dq.dtype, 'bfloat16'>>();
  expectType<Equal<typeof grads.dv.data, Uint16Array>>();

  const r32 = await flashAttention(f32, f32, f32, { device: 'cpu' });
  expectType<Equal<typeof r32.out.dtype, 'float32'>>();
  const r8 = await flashAttention(fp8, fp8, fp8, { device: 'cuda' });
  expectType<Equal<typeof r8.out.dtype, 'bfloat16'>>();

  if (probe().devices.length) {
    const dq = await DeviceTensor.from(bf);
    expectType<Equal<typeof dq, DeviceTensor<'bfloat16'>>>();
    const dres = await flashAttention(dq, dq, dq);
    expectType<Equal<typeof dres.out, DeviceTensor<'bfloat16'>>>();
    expectType<Equal<typeof dres.lse, DeviceTensor<'float32'>>>();
    const host = await dres.out.toHost();
    expectType<Equal<typeof host.dtype, 'bfloat16'>>();
    const empty = DeviceTensor.empty([2, 3], 'float16');
    expectType<Equal<typeof empty.dtype, 'float16'>>();
    for (const t of [dq, dres.out, dres.lse, empty]) t[Symbol.dispose]();
  }
  void wrong;
  void planAttention;
  const plan: Plan | undefined = undefined;
  void plan;
}

export async function varlen(): Promise<void> {
  const packed = tensor(toBfloat16(new Float32Array(24)), [3, 2, 4], 'bfloat16');
  const opts: VarlenOptions = { cuSeqlensQ: new Int32Array([0, 1, 3]), cuSeqlensK: tensor(new Int32Array([0, 2, 3]), [3]), causal: true };
  const { out, lse } = await flashAttentionVarlen(packed, packed, packed, opts);
  expectType<Equal<typeof out.dtype, 'bfloat16'>>();
  expectType<Equal<typeof lse.data, Float32Array>>();
  const grads = await flashAttentionVarlenBackward(out, packed, packed, packed, out, lse, { ...opts, deterministic: true });
  expectType<Equal<typeof grads.dk.data, Uint16Array>>();
  // @ts-expect-error the offsets are required
  await flashAttentionVarlen(packed, packed, packed, { causal: true });
  // @ts-expect-error offsets are int32
  await flashAttentionVarlen(packed, packed, packed, { cuSeqlensQ: new Float32Array(3), cuSeqlensK: new Int32Array(3) });
  // @ts-expect-error packed tensors have no layout
  await flashAttentionVarlen(packed, packed, packed, { ...opts, layout: 'bhsd' });
  if (probe().devices.length) {
    const dev = await DeviceTensor.from(packed);
    const r = await flashAttentionVarlen(dev, dev, dev, opts);
    expectType<Equal<typeof r.out, DeviceTensor<'bfloat16'>>>();
    expectType<Equal<typeof r.lse, DeviceTensor<'float32'>>>();
    dev.dispose();
  }
}
