// DeviceTensor: round trips, attention on device-resident data, dispose semantics.
import { DeviceTensor, FlashAttentionError, flashAttention, flashAttentionBackward, tensor } from '../../src-ts/index';
import { type Case, checkCase, makeCase, makeRng, randomTensor, rejectsWith } from '../helpers';
import { gpuSuite } from './gpu-helpers';

const gpu = gpuSuite();
const onDevice = (c: Case): Case => ({ device: 'cuda', deviceTensors: true, lseTol: 1e-4, ...c });

describe('DeviceTensor round trips', () => {
  it.each(['float32', 'float16', 'bfloat16'] as const)('%s: from() then toHost() gives the same bits', async (dtype) => {
    gpu.report();
    const h = randomTensor([3, 5, 7, 8], dtype, makeRng());
    const d = await DeviceTensor.from(h);
    expect(d.shape).toEqual([3, 5, 7, 8]);
    expect(d.dtype).toBe(dtype);
    expect(d.device).toBe(0);
    const back = await d.toHost();
    expect(back.data).toEqual(h.data);
    d.dispose();
  });

  it('float8_e4m3 bytes round-trip too', async () => {
    gpu.report();
    const bytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);
    const d = await DeviceTensor.from(tensor(bytes, [64], 'float8_e4m3'));
    expect((await d.toHost()).data).toEqual(bytes);
    d.dispose();
  });

  it('empty() allocates the right size', async () => {
    gpu.report();
    const d = DeviceTensor.empty([2, 3, 4], 'bfloat16');
    expect(d.size).toBe(24);
    expect((await d.toHost()).data).toHaveLength(24);
    d.dispose();
  });
});

describe('attention on DeviceTensors', () => {
  it('forward returns DeviceTensors that match the reference', async () => {
    gpu.report();
    await checkCase(onDevice({ dtype: 'bfloat16', headDim: 128, batch: 2, seqlenQ: 130, seqlenK: 200, headsQ: 4, headsKV: 1, causal: true }));
  });

  it('backward returns DeviceTensors that match the reference', async () => {
    gpu.report();
    await checkCase(onDevice({ dtype: 'float16', headDim: 64, batch: 2, seqlenQ: 130, seqlenK: 200, headsQ: 4, headsKV: 2, backward: true }));
  });

  it('gives the same bits as the host-tensor path', async () => {
    gpu.report();
    const c = makeCase({ dtype: 'bfloat16', headDim: 64, seqlenQ: 100, seqlenK: 100, headsQ: 2 });
    const host = await flashAttention(c.q, c.k, c.v, { device: 'cuda' });
    const [q, k, v] = await Promise.all([c.q, c.k, c.v].map((t) => DeviceTensor.from(t)));
    const dev = await flashAttention(q, k, v);
    expect((await dev.out.toHost()).data).toEqual(host.out.data);
    expect((await dev.lse.toHost()).data).toEqual(host.lse.data);
    for (const t of [q, k, v, dev.out, dev.lse]) t.dispose();
  });

  it('refuses to mix host tensors and DeviceTensors (E_ARG)', async () => {
    gpu.report();
    const c = makeCase({ dtype: 'bfloat16', headDim: 64, seqlenQ: 10 });
    const q = await DeviceTensor.from(c.q);
    const err = await rejectsWith(flashAttention(q, c.k, c.v), 'E_ARG');
    expect(err.message).toMatch(/all host tensors or all DeviceTensors/);
    await rejectsWith(flashAttention(q, c.k, c.v, { device: 'cpu' }), 'E_ARG');
    q.dispose();
  });

  it("refuses device: 'cpu' for DeviceTensors (E_ARG)", async () => {
    gpu.report();
    const c = makeCase({ dtype: 'bfloat16', headDim: 64, seqlenQ: 10 });
    const [q, k, v] = await Promise.all([c.q, c.k, c.v].map((t) => DeviceTensor.from(t)));
    await rejectsWith(flashAttention(q, k, v, { device: 'cpu' }), 'E_ARG');
    for (const t of [q, k, v]) t.dispose();
  });
});

describe('DeviceTensor dispose', () => {
  it('is idempotent and sets disposed', async () => {
    gpu.report();
    const d = DeviceTensor.empty([16], 'float16');
    expect(d.disposed).toBe(false);
    d.dispose();
    d.dispose();
    expect(d.disposed).toBe(true);
  });

  it('use after dispose is E_DISPOSED: toHost, and as an attention input', async () => {
    gpu.report();
    const c = makeCase({ dtype: 'bfloat16', headDim: 64, seqlenQ: 10 });
    const [q, k, v] = await Promise.all([c.q, c.k, c.v].map((t) => DeviceTensor.from(t)));
    k.dispose();
    await rejectsWith(k.toHost(), 'E_DISPOSED');
    const err = await rejectsWith(flashAttention(q, k, v), 'E_DISPOSED');
    expect(err.message).toMatch(/was disposed/);
    q.dispose();
    v.dispose();
  });

  it('disposing an input while an op is in flight is safe (memory freed after the op)', async () => {
    gpu.report();
    const c = makeCase({ dtype: 'bfloat16', headDim: 128, batch: 2, seqlenQ: 2000, seqlenK: 2000, headsQ: 8 });
    const [q, k, v] = await Promise.all([c.q, c.k, c.v].map((t) => DeviceTensor.from(t)));
    const pending = flashAttention(q, k, v, { causal: true });
    q.dispose();
    k.dispose();
    v.dispose();
    const { out, lse } = await pending;
    const host = await flashAttention(c.q, c.k, c.v, { device: 'cuda', causal: true });
    expect((await out.toHost()).data).toEqual(host.out.data);
    out.dispose();
    lse.dispose();
  });

  it('works with `using`', async () => {
    gpu.report();
    let seen: DeviceTensor | undefined;
    {
      using d = DeviceTensor.empty([4], 'float16');
      seen = d;
      expect(d.disposed).toBe(false);
    }
    expect(seen.disposed).toBe(true);
  });

  it('an impossible allocation is E_OOM, not a crash', async () => {
    gpu.report();
    const err = await rejectsWith(() => DeviceTensor.empty([2 ** 22, 2 ** 22], 'float32'), 'E_OOM');
    expect(err).toBeInstanceOf(FlashAttentionError);
    // The device still works afterwards.
    const d = DeviceTensor.empty([8], 'float16');
    d.dispose();
  });

  it('a deviceIndex with no device is E_NO_DEVICE', async () => {
    gpu.report();
    await rejectsWith(() => DeviceTensor.empty([8], 'float16', 99), 'E_NO_DEVICE');
  });
});

describe('backward on DeviceTensors keeps inputs alive', () => {
  it('outputs of a failed call are disposed, inputs untouched', async () => {
    gpu.report();
    const c = makeCase({ dtype: 'float16', headDim: 64, seqlenQ: 20 });
    const [q, k, v] = await Promise.all([c.q, c.k, c.v].map((t) => DeviceTensor.from(t)));
    const f = await flashAttention(q, k, v);
    // Wrong dtype for dout: rejected before any allocation.
    const bad = await DeviceTensor.from(randomTensor([...c.q.shape], 'bfloat16', makeRng()));
    await rejectsWith(flashAttentionBackward(bad, q, k, v, f.out, f.lse), 'E_DTYPE');
    expect(q.disposed || k.disposed || v.disposed).toBe(false);
    for (const t of [q, k, v, f.out, f.lse, bad]) t.dispose();
  });
});
