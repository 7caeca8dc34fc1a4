// Bad input never reaches the backend: every class of mistake is a FlashAttentionError with a
// stable code and a message that names the field, the expectation and what was given.
import {
  FlashAttentionError,
  flashAttention,
  flashAttentionBackward,
  tensor,
  toBfloat16,
} from '../src-ts/index';
import { normalizeBackward, normalizeForward } from '../src-ts/validate';
import { makeRng, randomTensor, rejectsWith } from './helpers';

const rng = makeRng();
const t = (shape: number[], dtype: 'float32' | 'float16' | 'bfloat16' = 'float32') => randomTensor(shape, dtype, rng);
const q = t([1, 4, 2, 8]);
const k = t([1, 5, 2, 8]);
const v = t([1, 5, 2, 8]);

async function forwardError(args: unknown[], code: string, pattern?: RegExp): Promise<void> {
  const err = await rejectsWith(
    () => (flashAttention as (...a: unknown[]) => Promise<unknown>)(...args),
    code,
  );
  if (pattern) expect(err.message).toMatch(pattern);
}

describe('tensor()', () => {
  it('infers float32 from a Float32Array', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(x.dtype).toBe('float32');
    expect(x.shape).toEqual([2, 3]);
  });
  it('requires the dtype for a Uint16Array', () => {
    expect(() => tensor(new Uint16Array(4), [4])).toThrow(FlashAttentionError);
    try {
      tensor(new Uint16Array(4), [4]);
    } catch (e) {
      expect((e as FlashAttentionError).code).toBe('E_DTYPE');
      expect((e as Error).message).toMatch(/float16.*bfloat16/);
    }
    expect(tensor(new Uint16Array(4), [4], 'bfloat16').dtype).toBe('bfloat16');
  });
  it('takes float8_e4m3 for a Uint8Array', () => {
    expect(tensor(new Uint8Array(4), [2, 2], 'float8_e4m3').dtype).toBe('float8_e4m3');
  });
  it('rejects a typed array that does not match the dtype (E_DTYPE)', () => {
    expect(() => tensor(new Float32Array(4), [4], 'float16')).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
    expect(() => tensor(new Float64Array(4) as never, [4])).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
    expect(() => tensor([1, 2, 3] as never, [3])).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
    expect(() => tensor(new Float32Array(4), [4], 'float64' as never)).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
  });
  it('rejects data whose length is not the product of the shape (E_SHAPE)', () => {
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    expect(() => tensor(new Float32Array(6), [2, -3] as never)).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
    expect(() => tensor(new Float32Array(6), [2, 1.5, 2])).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
  });
  it('accepts a Float16Array as float16 bits', () => {
    const g = globalThis as { Float16Array?: new (n: number) => ArrayBufferView };
    const builtin = g.Float16Array;
    // Node 20 has no Float16Array; a stand-in of that name is all tensor() looks for (instanceof).
    const F16 = builtin ?? class Float16Array extends Uint16Array {};
    g.Float16Array = F16;
    try {
      const x = tensor(new F16(4) as never, [4]);
      expect(x.dtype).toBe('float16');
      expect(x.data).toBeInstanceOf(Uint16Array);
      expect(() => tensor(new F16(4) as never, [4], 'bfloat16')).toThrow(expect.objectContaining({ code: 'E_DTYPE' }));
    } finally {
      if (!builtin) delete g.Float16Array;
    }
  });
});

describe('argument validation: shapes (E_SHAPE)', () => {
  it('rejects a tensor that is not rank 4, naming the field', async () => {
    await forwardError([t([4, 2, 8]), k, v], 'E_SHAPE', /q must have 4 dims.*\[4, 2, 8\]/);
    await forwardError([q, t([1, 5, 2, 8, 1]), v], 'E_SHAPE', /k must have 4 dims/);
  });
  it('rejects mismatched batch, k/v shapes and head dims', async () => {
    await forwardError([t([2, 4, 2, 8]), k, v], 'E_SHAPE', /batch/);
    await forwardError([q, k, t([1, 6, 2, 8])], 'E_SHAPE', /v\.shape\[1\] \(seqlen\) must equal k\.shape\[1\] = 5; got 6/);
    await forwardError([q, t([1, 5, 2, 16]), t([1, 5, 2, 16])], 'E_SHAPE', /headDim/);
  });
  it('rejects headsQ not divisible by headsKV', async () => {
    await forwardError([t([1, 4, 3, 8]), k, v], 'E_SHAPE', /headsQ \(q\.shape\[2\] = 3\) must be a multiple of headsKV/);
  });
  it('rejects empty dimensions', async () => {
    await forwardError([t([1, 0, 2, 8]), k, v], 'E_SHAPE', /seqlenQ/);
    await forwardError([q, t([1, 0, 2, 8]), t([1, 0, 2, 8])], 'E_SHAPE', /seqlenK/);
  });
  it('rejects a tensor whose data length does not match its shape', async () => {
    const bad = { data: new Float32Array(10), shape: [1, 4, 2, 8], dtype: 'float32' };
    await forwardError([bad, k, v], 'E_SHAPE', /q\.data has 10 elements/);
  });
});

describe('argument validation: unsupported head dims (E_UNSUPPORTED)', () => {
  it('rejects head dims that are not a multiple of 8 or above 256, and says how to pad', async () => {
    await forwardError([t([1, 4, 2, 12]), t([1, 5, 2, 12]), t([1, 5, 2, 12])], 'E_UNSUPPORTED', /multiple of 8.*got 12.*Pad/);
    await forwardError([t([1, 2, 1, 264]), t([1, 2, 1, 264]), t([1, 2, 1, 264])], 'E_UNSUPPORTED', /at most 256; got 264/);
  });
});

describe('argument validation: dtypes (E_DTYPE)', () => {
  it('rejects a typed array of the wrong kind', async () => {
    const bad = { data: new Float64Array(64), shape: [1, 4, 2, 8], dtype: 'float32' };
    await forwardError([bad, k, v], 'E_DTYPE', /q\.data must be a Float32Array.*Float64Array/);
  });
  it('rejects a missing dtype (a bare Uint16Array)', async () => {
    const bare = { data: toBfloat16(new Float32Array(64)), shape: [1, 4, 2, 8] };
    await forwardError([bare, k, v], 'E_DTYPE', /q\.dtype is missing/);
  });
  it('rejects mixed dtypes', async () => {
    await forwardError([t([1, 4, 2, 8], 'bfloat16'), k, v], 'E_DTYPE', /one dtype/);
  });
  it('rejects an unknown dtype', async () => {
    const bad = { data: new Float32Array(64), shape: [1, 4, 2, 8], dtype: 'float64' };
    await forwardError([bad, k, v], 'E_DTYPE');
  });
});

describe('argument validation: options (E_ARG)', () => {
  it('rejects a NaN or infinite softmaxScale', async () => {
    await forwardError([q, k, v, { softmaxScale: NaN }], 'E_ARG', /softmaxScale must be a finite number; got NaN/);
    await forwardError([q, k, v, { softmaxScale: Infinity }], 'E_ARG', /softmaxScale/);
    await forwardError([q, k, v, { softmaxScale: '0.5' }], 'E_ARG', /softmaxScale/);
  });
  it('rejects negative windows other than -1, and non-integer windows', async () => {
    await forwardError([q, k, v, { windowSize: [-2, 0] }], 'E_ARG', /windowSize\[0\] must be an integer >= 0, or -1/);
    await forwardError([q, k, v, { windowSize: [1.5, 0] }], 'E_ARG', /windowSize\[0\]/);
    await forwardError([q, k, v, { windowSize: [0, NaN] }], 'E_ARG', /windowSize\[1\]/);
    await forwardError([q, k, v, { windowSize: [3] }], 'E_ARG', /\[left, right\]/);
  });
  it('rejects causal with a right window other than 0 or -1', async () => {
    await forwardError([q, k, v, { causal: true, windowSize: [2, 3] }], 'E_ARG', /causal: true means windowSize\[1\] = 0/);
  });
  it('rejects non-boolean causal / deterministic, bad device, deviceIndex and threads', async () => {
    await forwardError([q, k, v, { causal: 1 }], 'E_ARG', /causal must be a boolean/);
    await forwardError([q, k, v, { device: 'gpu' }], 'E_ARG', /device must be 'auto', 'cpu' or 'cuda'/);
    await forwardError([q, k, v, { deviceIndex: -1 }], 'E_ARG', /deviceIndex/);
    await forwardError([q, k, v, { threads: 1.5 }], 'E_ARG', /threads/);
  });
  it('rejects unknown option names (typos)', async () => {
    await forwardError([q, k, v, { windowsize: [1, 1] }], 'E_ARG', /unknown option 'windowsize'/);
    await forwardError([q, k, v, { deterministic: true }], 'E_ARG', /unknown option 'deterministic'/);
  });
  it('rejects things that are not tensors', async () => {
    await forwardError([null, k, v], 'E_ARG', /q must be a tensor/);
    await forwardError([q, new Float32Array(3), v], 'E_ARG', /k must be a tensor/);
  });
});

describe('option normalization', () => {
  it('defaults the scale to 1/sqrt(headDim)', () => {
    expect(normalizeForward(q, k, v).scale).toBeCloseTo(1 / Math.sqrt(8), 15);
  });
  it('turns causal into windowRight = 0, keeping a left window', () => {
    const qq = t([1, 40, 2, 8]);
    const kk = t([1, 50, 2, 8]);
    const r = normalizeForward(qq, kk, kk, { causal: true });
    expect([r.windowLeft, r.windowRight]).toEqual([-1, 0]);
    for (const right of [0, -1]) {
      const w = normalizeForward(qq, kk, kk, { causal: true, windowSize: [7, right] });
      expect([w.windowLeft, w.windowRight]).toEqual([7, 0]);
    }
  });
  it('treats windows that cover every key as unbounded', () => {
    const qq = t([1, 40, 2, 8]);
    const kk = t([1, 50, 2, 8]);
    const r = normalizeForward(qq, kk, kk, { windowSize: [49, 39] });
    expect([r.windowLeft, r.windowRight]).toEqual([-1, -1]);
    const s = normalizeForward(qq, kk, kk, { windowSize: [48, 38] });
    expect([s.windowLeft, s.windowRight]).toEqual([48, 38]);
  });
});

describe('backward argument validation', () => {
  const out = t([1, 4, 2, 8]);
  const lse = tensor(new Float32Array(8), [1, 2, 4]);
  it('accepts a consistent set', () => {
    expect(normalizeBackward(out, q, k, v, out, lse).op).toBe('backward');
  });
  it('rejects dout/out shaped unlike q and lse shaped unlike [b, h, s_q]', async () => {
    await rejectsWith(flashAttentionBackward(t([1, 3, 2, 8]), q, k, v, out, lse), 'E_SHAPE');
    await rejectsWith(flashAttentionBackward(out, q, k, v, t([1, 4, 1, 8]), lse), 'E_SHAPE');
    const err = await rejectsWith(flashAttentionBackward(out, q, k, v, out, tensor(new Float32Array(8), [1, 4, 2])), 'E_SHAPE');
    expect(err.message).toMatch(/lse\.shape must be \[batch, headsQ, seqlenQ\] = \[1, 2, 4\]/);
  });
  it('rejects a dout of another dtype and a non-float32 lse', async () => {
    await rejectsWith(flashAttentionBackward(t([1, 4, 2, 8], 'float16'), q, k, v, out, lse), 'E_DTYPE');
    await rejectsWith(
      flashAttentionBackward(out, q, k, v, out, tensor(new Uint16Array(8), [1, 2, 4], 'float16')),
      'E_DTYPE',
    );
  });
  it('rejects a bad deterministic flag', async () => {
    await rejectsWith(flashAttentionBackward(out, q, k, v, out, lse, { deterministic: 'yes' as never }), 'E_ARG');
  });
  it('has no backward for float8_e4m3 (E_UNSUPPORTED)', async () => {
    const f8 = (shape: number[]) => tensor(new Uint8Array(shape.reduce((a, b) => a * b)), shape, 'float8_e4m3');
    await rejectsWith(flashAttentionBackward(f8([1, 4, 2, 8]), f8([1, 4, 2, 8]), f8([1, 5, 2, 8]), f8([1, 5, 2, 8]), f8([1, 4, 2, 8]), lse), 'E_UNSUPPORTED');
  });
});

describe('FlashAttentionError', () => {
  it('is an Error with name, code and message', async () => {
    const err = await rejectsWith(flashAttention(q, k, v, { softmaxScale: NaN }), 'E_ARG');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('FlashAttentionError');
    expect(err.message.startsWith('flashAttention: ')).toBe(true);
  });
});
