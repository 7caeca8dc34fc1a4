// flat.ts — the forward request as the addon's forwardFlat takes it: one reused Float64Array of
// numbers (options; per tensor role its dtype, shape, strides and offset) and the data as
// arguments, so the addon's synchronous part reads no properties (native/request/flat.h holds the
// layout; the two must match). Built from a NativeForwardRequest this layer made and validated.
import type { NativeBinding, NativeDType, NativeForwardRequest, NativeForwardResult, NativeTensorArg } from './binding';

const DTYPE_CODE: Record<NativeDType, number> = { float32: 0, float16: 1, bfloat16: 2, float8_e4m3: 3, int32: 4 };
/** Options first (flat::Field), then one slot per role (flat::Role) of SLOT numbers (flat::Slot). */
const SLOTS = 10;
const SLOT = 12;
const ROLES = ['q', 'k', 'v', 'out', 'lse', 'qDescale', 'kDescale', 'vDescale'] as const;
/** flat::kHeaderLength. @internal */
export const FLAT_HEADER_LENGTH = SLOTS + ROLES.length * SLOT;

// One per realm, filled and read within one synchronous call.
const header = new Float64Array(FLAT_HEADER_LENGTH);

function slot(role: number, t: NativeTensorArg | undefined): void {
  const at = SLOTS + role * SLOT;
  if (t === undefined) {
    header[at] = 0;
    return;
  }
  header[at] = 1;
  header[at + 1] = DTYPE_CODE[t.dtype];
  const shape = t.shape;
  const strides = Object.hasOwn(t, 'strides') ? t.strides : undefined; // own only, as the addon reads them
  const offset = Object.hasOwn(t, 'offset') ? t.offset : undefined;
  for (let i = 0; i < 4; i++) header[at + 2 + i] = i < shape.length ? shape[i] : 1;
  header[at + 6] = strides === undefined ? 0 : 1;
  if (strides !== undefined) for (let i = 0; i < 4; i++) header[at + 7 + i] = i < strides.length ? strides[i] : 1;
  header[at + 11] = offset === undefined ? -1 : offset;
}

/** r[key] when it is r's own (the optional fields: never one of Object.prototype's). */
function own<K extends keyof NativeForwardRequest>(r: NativeForwardRequest, key: K): NativeForwardRequest[K] | undefined {
  return Object.hasOwn(r, key) ? r[key] : undefined;
}

/** binding.forward(r), through the flat request. @internal */
export function forwardFlat(b: NativeBinding, r: NativeForwardRequest): Promise<NativeForwardResult> {
  const [out, lse, qd, kd, vd] = [own(r, 'out'), own(r, 'lse'), own(r, 'qDescale'), own(r, 'kDescale'), own(r, 'vDescale')];
  const outDtype = own(r, 'outDtype');
  header[0] = r.backend === 'cuda' ? 1 : 0;
  header[1] = r.device;
  header[2] = r.scale;
  header[3] = r.windowLeft;
  header[4] = r.windowRight;
  header[5] = r.threads;
  header[6] = r.poison ? 1 : 0;
  header[7] = r.naive ? 1 : 0;
  header[8] = outDtype === undefined ? -1 : DTYPE_CODE[outDtype];
  slot(0, r.q);
  slot(1, r.k);
  slot(2, r.v);
  slot(3, out);
  slot(4, lse);
  slot(5, qd);
  slot(6, kd);
  slot(7, vd);
  return b.forwardFlat(header, own(r, 'stream'), r.q.data, r.k.data, r.v.data, out?.data, lse?.data, qd?.data, kd?.data, vd?.data);
}
