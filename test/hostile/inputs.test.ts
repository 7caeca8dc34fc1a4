// inputs.test.ts — what a hostile caller passes: inherited options and tensors, objects from other
// realms, Proxies, throwing getters, look-alike DeviceTensors, sparse / bigint shapes, detached
// buffers, out-of-range threads. Each is read as the user meant it or refused with a
// FlashAttentionError whose code names the user's mistake (never E_INTERNAL, never a TypeError).
import * as vm from 'vm';
import { DeviceTensor, FlashAttentionError, flashAttention, flashAttentionBackward, tensor } from '../../src-ts/index';
import { MAX_THREADS } from '../../src-ts/validate';
import { expectClean, runChild } from './child';

const t = (x = 0.5, shape = [1, 2, 1, 8]) =>
  tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(x), shape);
const qkv = () => [t(), t(), t()] as const;

/** The FlashAttentionError a call is refused with (fails if it resolves or throws anything else). */
async function refusal(call: () => unknown): Promise<FlashAttentionError> {
  let caught: unknown;
  try {
    await call();
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof FlashAttentionError)) {
    throw new Error(`expected a FlashAttentionError, got ${caught === undefined ? 'no error' : String(caught)}`);
  }
  expect(caught.code).not.toBe('E_INTERNAL');
  return caught;
}

describe('hostile inputs: only own properties are read (Object.prototype pollution)', () => {
  it('Object.prototype.causal = true does not make calls causal; inherited options are ignored', async () => {
    const r = await runChild(`
const t = () => fa.tensor(filled(16, 0.5), [1, 2, 1, 8]);
// Two queries, two keys, all equal: non-causal LSE = s + ln 2 in both rows; causal row 0 sees one key.
const plain = (await fa.flashAttention(t(), t(), t())).lse.data;
Object.prototype.causal = true;
Object.prototype.windowSize = [0, 0];
Object.prototype.softmaxScale = 100;
const polluted = (await fa.flashAttention(t(), t(), t())).lse.data;
const polluted2 = (await fa.flashAttention(t(), t(), t(), {})).lse.data;
delete Object.prototype.causal; delete Object.prototype.windowSize; delete Object.prototype.softmaxScale;
const inherited = (await fa.flashAttention(t(), t(), t(), Object.create({ causal: true }))).lse.data;
const viaProto = (await fa.flashAttention(t(), t(), t(), { __proto__: { causal: true } })).lse.data;
report({ plain: [...plain], polluted: [...polluted], polluted2: [...polluted2], inherited: [...inherited], viaProto: [...viaProto] });
`);
    const res = expectClean(r) as Record<string, number[]>;
    expect(res.plain[0]).toBeCloseTo(res.plain[1], 6); // both rows see both keys
    for (const k of ['polluted', 'polluted2', 'inherited', 'viaProto']) expect(res[k]).toEqual(res.plain);
  });

  it('with Object.prototype.data/shape/dtype set, {} is not a tensor (E_ARG)', async () => {
    const r = await runChild(`
Object.prototype.data = filled(16, 0.5); Object.prototype.shape = [1, 2, 1, 8]; Object.prototype.dtype = 'float32';
const t = () => fa.tensor(filled(16, 0.5), [1, 2, 1, 8]);
let res;
try { await fa.flashAttention({}, t(), t()); res = 'accepted'; } catch (e) { res = errorInfo(e); }
let res2;
try { await fa.flashAttention(Object.create(t()), t(), t()); res2 = 'accepted'; } catch (e) { res2 = errorInfo(e); }
report({ res, res2 });
`);
    const res = expectClean(r) as Record<string, { fa: boolean; code: string }>;
    for (const x of [res.res, res.res2]) expect(x).toMatchObject({ fa: true, code: 'E_ARG' });
  });

  it('Array.prototype elements do not fill the holes of a sparse shape (E_SHAPE)', async () => {
    const r = await runChild(`
Array.prototype[1] = 2;
let res;
try { await fa.flashAttention({ data: filled(16, 0.5), shape: [1, , 1, 8], dtype: 'float32' }, fa.tensor(filled(16, 0.5), [1, 2, 1, 8]), fa.tensor(filled(16, 0.5), [1, 2, 1, 8])); res = 'accepted'; } catch (e) { res = errorInfo(e); }
delete Array.prototype[1];
report(res);
`);
    expect(expectClean(r)).toMatchObject({ fa: true, code: 'E_SHAPE' });
  });
});

describe('hostile inputs: typed arrays, Proxies, getters', () => {
  it('accepts a Float32Array from another realm (vm.runInNewContext), in tensor() and as raw data', async () => {
    const foreign = vm.runInNewContext('new Float32Array(16).fill(0.5)') as Float32Array;
    expect(foreign instanceof Float32Array).toBe(false);
    const a = await flashAttention(tensor(foreign, [1, 2, 1, 8]), t(), t());
    const b = await flashAttention({ data: foreign, shape: [1, 2, 1, 8], dtype: 'float32' } as never, t(), t());
    const want = await flashAttention(...qkv());
    expect([...a.out.data]).toEqual([...want.out.data]);
    expect([...b.lse.data]).toEqual([...want.lse.data]);
  });

  it('refuses a Proxy of a typed array with E_DTYPE, saying it is a Proxy', async () => {
    const e = await refusal(() =>
      flashAttention({ data: new Proxy(new Float32Array(16), {}), shape: [1, 2, 1, 8], dtype: 'float32' } as never, t(), t()),
    );
    expect(e.code).toBe('E_DTYPE');
    expect(e.message).toMatch(/Proxy/);
  });

  it('refuses a look-alike typed array (Symbol.toStringTag, length) with E_DTYPE', async () => {
    const fake = { [Symbol.toStringTag]: 'Float32Array', length: 16, buffer: new ArrayBuffer(64) };
    expect((await refusal(() => flashAttention({ data: fake, shape: [1, 2, 1, 8], dtype: 'float32' } as never, t(), t()))).code).toBe('E_DTYPE');
  });

  it('a throwing getter on a tensor, an option or a shape element is E_ARG naming the field', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    const cases: Array<[string, () => unknown]> = [
      ['q.data', () => flashAttention({ get data() { return boom(); }, shape: [1, 2, 1, 8], dtype: 'float32' } as never, t(), t())],
      ['options.causal', () => flashAttention(...qkv(), { get causal() { return boom(); } } as never)],
      ['k.shape[2]', () => flashAttention(t(), { data: new Float32Array(16), shape: Object.defineProperty([1, 2, 1, 8], 2, { get: boom }), dtype: 'float32' } as never, t())],
      ['options', () => flashAttention(...qkv(), new Proxy({}, { ownKeys: boom }) as never)],
      ['v', () => flashAttention(t(), t(), new Proxy(t(), { getOwnPropertyDescriptor: boom }) as never)],
    ];
    for (const [field, call] of cases) {
      const e = await refusal(call);
      expect([field, e.code]).toEqual([field, 'E_ARG']);
      expect(e.message).toContain(field.split('[')[0]);
      expect(e.message).toMatch(/^flashAttention: /);
    }
  });

  it('a throwing getter in a backward argument is E_ARG too', async () => {
    const f = await flashAttention(...qkv());
    const e = await refusal(() =>
      flashAttentionBackward(t(), t(), t(), t(), f.out, { get data() { throw new RangeError('no'); }, shape: [1, 1, 2], dtype: 'float32' } as never),
    );
    expect(e.code).toBe('E_ARG');
    expect(e.message).toMatch(/lse\.data/);
  });

  it('a getter that changes between reads is read once: the validated array is the one used', async () => {
    let reads = 0;
    const q = { get data() { reads++; return reads === 1 ? new Float32Array(16).fill(0.5) : new Float32Array(1); }, shape: [1, 2, 1, 8], dtype: 'float32' };
    // Either the first array is used or the call is refused; never a crash or a read past the end.
    try {
      const r = await flashAttention(q as never, t(), t());
      expect(r.out.data.every((x) => x === 0.5)).toBe(true);
    } catch (e) {
      expect(e).toBeInstanceOf(FlashAttentionError);
      expect((e as FlashAttentionError).code).not.toBe('E_INTERNAL');
    }
  });

  it('Object.create(DeviceTensor.prototype) is E_ARG, not a TypeError', async () => {
    const e = await refusal(() => flashAttention(Object.create(DeviceTensor.prototype), t(), t()));
    expect(e.code).toBe('E_ARG');
    expect(e.message).toMatch(/DeviceTensor/);
  });
});

describe('hostile inputs: shapes, buffers and small options', () => {
  it('a sparse shape [1, , 1, 8] names the missing dimension (E_SHAPE), not "needs NaN"', async () => {
    // eslint-disable-next-line no-sparse-arrays
    const e = await refusal(() => flashAttention({ data: new Float32Array(16), shape: [1, , 2, 8], dtype: 'float32' } as never, t(), t()));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/q\.shape\[1\] is missing/);
    expect(e.message).not.toMatch(/NaN/);
    // eslint-disable-next-line no-sparse-arrays
    expect(() => tensor(new Float32Array(16), [1, , 2, 8] as never)).toThrow(/shape\[1\] is missing/);
  });

  it('a bigint dimension is described as a bigint (E_SHAPE)', async () => {
    const e = await refusal(() => flashAttention({ data: new Float32Array(16), shape: [1, 2n, 1, 8], dtype: 'float32' } as never, t(), t()));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/2n \(a bigint\)/);
    expect(() => tensor(new Float32Array(16), [1, 2n, 1, 8] as never)).toThrow(/bigint/);
  });

  it('a detached input buffer is reported as detached (E_ARG)', async () => {
    const q = t();
    structuredClone(q.data.buffer, { transfer: [q.data.buffer as ArrayBuffer] });
    const e = await refusal(() => flashAttention(q, t(), t()));
    expect(e.code).toBe('E_ARG');
    expect(e.message).toMatch(/q\.data's ArrayBuffer is detached/);
    const raw = new Float32Array(16);
    structuredClone(raw.buffer, { transfer: [raw.buffer] });
    expect(() => tensor(raw, [1, 2, 1, 8])).toThrow(/detached/);
  });

  it(`threads above ${MAX_THREADS} is refused in TypeScript, once prefixed, with the cap`, async () => {
    for (const threads of [1e9, MAX_THREADS + 1]) {
      const e = await refusal(() => flashAttention(...qkv(), { threads }));
      expect(e.code).toBe('E_ARG');
      expect(e.message).toMatch(new RegExp(`^flashAttention: threads must be an integer from 0 to ${MAX_THREADS}`));
    }
    await expect(flashAttention(...qkv(), { threads: MAX_THREADS })).resolves.toBeDefined();
  });

  it('errors from the addon carry one prefix, not "flashAttention: forward: ..."', async () => {
    const big = tensor(new Float32Array(16).fill(1e20), [1, 2, 1, 8]);
    const e = await refusal(() => flashAttention(big, big, t(), { device: 'cpu' }));
    expect(e.message).toMatch(/^flashAttention: /);
    expect(e.message).not.toMatch(/^flashAttention: (forward|backward): /);
  });
});
