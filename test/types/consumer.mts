// The ES module side of the published types: named and default imports resolve through the
// exports map's "import" condition to dist/src-ts/index.d.mts.
import flashattn, { type HostTensor, flashAttention, tensor } from 'flashattn';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

const q = tensor(new Float32Array(8), [1, 2, 1, 4]);
expectType<Equal<typeof q, HostTensor<'float32'>>>();
const viaDefault = flashattn.tensor(new Float32Array(8), [1, 2, 1, 4]);
expectType<Equal<typeof viaDefault.dtype, 'float32'>>();
// @ts-expect-error a Float64Array holds no dtype flashattn takes
flashattn.tensor(new Float64Array(8), [8]);

export const result = flashAttention(q, q, q);
