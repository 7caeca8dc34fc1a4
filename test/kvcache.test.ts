// flashAttentionWithKVCache on the CPU backend against the float64 reference: append then attend,
// paged vs contiguous, rotary (against a JS rotation), cacheBatchIdx, per-row lengths, in-place
// updates, and every refusal.
import { flashAttentionWithKVCache, tensor } from '../src-ts/index';
import type { HostTensor } from '../src-ts/tensor';
import { type Rng, assertClose, assertLse, assertRule, makeRng, randomTensor, rejectsWith, values } from './helpers';
import { naiveForwardInDtype } from './naive-dtype';
import { type RefOptions, referenceForward } from './reference';

interface Setup {
  batch: number;
  seqlenQ: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  maxSeqlen: number;
  lens: number[];
  seqlenNew: number;
  dtype?: 'float32' | 'bfloat16';
}

interface Data {
  s: Setup;
  q: HostTensor;
  kCache: HostTensor;
  vCache: HostTensor;
  kNew?: HostTensor;
  vNew?: HostTensor;
  cacheSeqlens: Int32Array;
  ctx: string;
}

/** Random q, caches (NaN past each row's length: a key that is not attended to must not be read)
 * and new keys. */
function setup(s: Setup, rng: Rng = makeRng()): Data {
  const dtype = s.dtype ?? 'float32';
  const { batch: b, seqlenQ: sq, headsQ: hq, headsKV: hk, headDim: d, maxSeqlen: ms } = s;
  const kCache = randomTensor([b, ms, hk, d], dtype, rng);
  const vCache = randomTensor([b, ms, hk, d], dtype, rng);
  const nan = dtype === 'float32' ? NaN : 0xffff;
  for (const t of [kCache, vCache]) {
    for (let r = 0; r < b; r++) (t.data as Float32Array).fill(nan, (r * ms + s.lens[r]) * hk * d, (r + 1) * ms * hk * d);
  }
  const data: Data = {
    s,
    q: randomTensor([b, sq, hq, d], dtype, rng),
    kCache,
    vCache,
    cacheSeqlens: Int32Array.from(s.lens),
    ctx: `${JSON.stringify(s)} seed ${rng.seed}`,
  };
  if (s.seqlenNew > 0) {
    data.kNew = randomTensor([b, s.seqlenNew, hk, d], dtype, rng);
    data.vNew = randomTensor([b, s.seqlenNew, hk, d], dtype, rng);
  }
  return data;
}

/** The rows [from, to) of batch row `b` of a [rows, seqlen, heads, d] value array. */
function rows(v: Float64Array, b: number, seqlen: number, rowElems: number, from: number, to: number): Float64Array {
  return v.slice((b * seqlen + from) * rowElems, (b * seqlen + to) * rowElems);
}

function concat(a: Float64Array, c: Float64Array): Float64Array {
  const o = new Float64Array(a.length + c.length);
  o.set(a);
  o.set(c, a.length);
  return o;
}

/** flash-attn's rotary of x (d values) at angle row `pos` of cos/sin [*, rd/2]. */
function rotate(x: Float64Array, off: number, cos: Float64Array, sin: Float64Array, rd: number, pos: number, inter: boolean): void {
  const half = rd / 2;
  for (let i = 0; i < half; i++) {
    const a = off + (inter ? 2 * i : i);
    const c = off + (inter ? 2 * i + 1 : i + half);
    const x1 = x[a];
    const x2 = x[c];
    const co = cos[pos * half + i];
    const si = sin[pos * half + i];
    x[a] = x1 * co - x2 * si;
    x[c] = x1 * si + x2 * co;
  }
}

interface Rotary {
  cos: HostTensor;
  sin: HostTensor;
  interleaved: boolean;
}

/** The expected out, lse and appended keys of one call: per row, plain attention over the cached
 * keys followed by the new ones (rotated when `rot` is given). */
function expected(d: Data, opts: RefOptions, rot?: Rotary, rowOf?: number[]) {
  const { batch: b, seqlenQ: sq, headsQ: hq, headsKV: hk, headDim: hd, maxSeqlen: ms, seqlenNew: sn } = d.s;
  const qv = values(d.q);
  const kc = values(d.kCache);
  const vc = values(d.vCache);
  const kn = d.kNew ? values(d.kNew) : new Float64Array(0);
  const vn = d.vNew ? values(d.vNew) : new Float64Array(0);
  const out = new Float64Array(b * sq * hq * hd);
  const lse = new Float64Array(b * hq * sq);
  const local = opts.causal === true || (opts.windowSize !== undefined && (opts.windowSize[0] >= 0 || opts.windowSize[1] >= 0));
  for (let r = 0; r < b; r++) {
    const len = d.cacheSeqlens[r];
    const row = rowOf ? rowOf[r] : r;
    const q1 = qv.slice(r * sq * hq * hd, (r + 1) * sq * hq * hd);
    const kNew1 = kn.slice(r * sn * hk * hd, (r + 1) * sn * hk * hd);
    if (rot) {
      const [cos, sin] = [values(rot.cos), values(rot.sin)];
      const rd = rot.cos.shape[1] * 2;
      for (let t = 0; t < sn; t++) for (let h = 0; h < hk; h++) rotate(kNew1, (t * hk + h) * hd, cos, sin, rd, len + t, rot.interleaved);
      for (let i = 0; i < sq; i++) for (let h = 0; h < hq; h++) rotate(q1, (i * hq + h) * hd, cos, sin, rd, local ? len + i : len, rot.interleaved);
    }
    const k1 = concat(rows(kc, row, ms, hk * hd, 0, len), kNew1);
    const v1 = concat(rows(vc, row, ms, hk * hd, 0, len), vn.slice(r * sn * hk * hd, (r + 1) * sn * hk * hd));
    const sk = len + sn;
    if (sk === 0) {
      lse.fill(-Infinity, r * hq * sq, (r + 1) * hq * sq);
      continue;
    }
    const ref = referenceForward(q1, k1, v1, { batch: 1, seqlenQ: sq, seqlenK: sk, headsQ: hq, headsKV: hk, headDim: hd }, opts);
    out.set(ref.out, r * sq * hq * hd);
    lse.set(ref.lse, r * hq * sq);
    // What the cache must now hold at the appended positions.
    for (let t = 0; t < sn; t++) kNewAppended.set(`${r}:${t}`, kNew1.slice(t * hk * hd, (t + 1) * hk * hd));
  }
  return { out, lse };
}
const kNewAppended = new Map<string, Float64Array>();

const F32: Omit<Setup, 'lens'> = { batch: 3, seqlenQ: 1, headsQ: 4, headsKV: 2, headDim: 32, maxSeqlen: 40, seqlenNew: 0 };

async function run(d: Data, extra: Record<string, unknown> = {}) {
  return flashAttentionWithKVCache(d.q, d.kCache, d.vCache, {
    cacheSeqlens: d.cacheSeqlens,
    ...(d.kNew ? { kNew: d.kNew, vNew: d.vNew } : {}),
    ...extra,
  });
}

/** The appended positions of the caller's cache hold kNew (rotated as expected). */
function checkAppended(d: Data, rowOf?: number[]): void {
  const { batch: b, headsKV: hk, headDim: hd, maxSeqlen: ms, seqlenNew: sn } = d.s;
  const kc = values(d.kCache);
  const vc = values(d.vCache);
  const vn = values(d.vNew!);
  for (let r = 0; r < b; r++) {
    const row = rowOf ? rowOf[r] : r;
    for (let t = 0; t < sn; t++) {
      const pos = d.cacheSeqlens[r] + t;
      assertClose(`kCache row ${row} pos ${pos}`, rows(kc, row, ms, hk * hd, pos, pos + 1), kNewAppended.get(`${r}:${t}`)!, d.ctx, 1e-6);
      expect(Array.from(rows(vc, row, ms, hk * hd, pos, pos + 1))).toEqual(Array.from(vn.slice((r * sn + t) * hk * hd, (r * sn + t + 1) * hk * hd)));
    }
  }
}

describe('flashAttentionWithKVCache: append then attend', () => {
  it.each([
    { lens: [5, 0, 17], seqlenNew: 1, opts: {} },
    { lens: [5, 0, 17], seqlenNew: 3, seqlenQ: 3, opts: { causal: true } },
    { lens: [9, 30, 2], seqlenNew: 4, seqlenQ: 2, opts: { windowSize: [6, 0] as [number, number] } },
    { lens: [12, 1, 36], seqlenNew: 4, seqlenQ: 5, headsKV: 1, opts: { causal: true, softmaxScale: 0.4 } },
  ])('equals plain attention over the cached keys followed by the new ones: %o', async (c) => {
    const d = setup({ ...F32, ...c, seqlenQ: c.seqlenQ ?? 1, headsKV: c.headsKV ?? 2 });
    const refOpts: RefOptions = { causal: c.opts.causal, windowSize: c.opts.windowSize, scale: c.opts.softmaxScale };
    const want = expected(d, refOpts);
    const res = await run(d, c.opts);
    expect(res.out.shape).toEqual([...d.q.shape]);
    expect(res.lse.shape).toEqual([3, d.s.headsQ, d.s.seqlenQ]);
    assertClose('out', values(res.out), want.out, d.ctx);
    assertLse(values(res.lse), want.lse, d.ctx);
    checkAppended(d);
  });

  it('bfloat16 is within 2× the naive-bfloat16 error', async () => {
    const d = setup({ ...F32, lens: [7, 20, 3], seqlenNew: 2, seqlenQ: 2, dtype: 'bfloat16' });
    const want = expected(d, { causal: true });
    const res = await run(d, { causal: true });
    expect(res.out.dtype).toBe('bfloat16');
    // The naive-in-dtype bound of each row's own problem, taken over the whole batch.
    const { headsQ: hq, headsKV: hk, headDim: hd, maxSeqlen: ms, seqlenQ: sq, seqlenNew: sn } = d.s;
    const naive = new Float64Array(want.out.length);
    const [qv, kc, vc, kn, vn] = [d.q, d.kCache, d.vCache, d.kNew!, d.vNew!].map(values);
    for (let r = 0; r < 3; r++) {
      const len = d.cacheSeqlens[r];
      const k1 = concat(rows(kc, r, ms, hk * hd, 0, len), kn.slice(r * sn * hk * hd, (r + 1) * sn * hk * hd));
      const v1 = concat(rows(vc, r, ms, hk * hd, 0, len), vn.slice(r * sn * hk * hd, (r + 1) * sn * hk * hd));
      const n = naiveForwardInDtype(qv.slice(r * sq * hq * hd, (r + 1) * sq * hq * hd), k1, v1,
        { batch: 1, seqlenQ: sq, seqlenK: len + sn, headsQ: hq, headsKV: hk, headDim: hd }, { causal: true }, 'bfloat16');
      naive.set(n, r * sq * hq * hd);
    }
    assertRule('out', values(res.out), want.out, naive, 'bfloat16', d.ctx);
    assertLse(values(res.lse), want.lse, d.ctx, 1e-2);
  });

  it('attends to exactly cacheSeqlens[b] keys without kNew, and leaves the caches untouched', async () => {
    const d = setup({ ...F32, lens: [1, 40, 13], seqlenNew: 0 });
    const before = [Float32Array.from(d.kCache.data as Float32Array), Float32Array.from(d.vCache.data as Float32Array)];
    const want = expected(d, {});
    const res = await run(d);
    assertClose('out', values(res.out), want.out, d.ctx);
    assertLse(values(res.lse), want.lse, d.ctx);
    expect(d.kCache.data).toEqual(before[0]);
    expect(d.vCache.data).toEqual(before[1]);
  });

  it('gives zeros and lse -Infinity for a row with an empty cache and no new keys', async () => {
    const d = setup({ ...F32, lens: [0, 4, 0], seqlenNew: 0 });
    const res = await run(d);
    const per = d.s.seqlenQ * d.s.headsQ * d.s.headDim;
    for (const r of [0, 2]) {
      expect(Array.from(res.out.data.slice(r * per, (r + 1) * per)).every((x) => x === 0)).toBe(true);
      expect(Array.from(res.lse.data.slice(r * 4, (r + 1) * 4))).toEqual([-Infinity, -Infinity, -Infinity, -Infinity]);
    }
    expect(Number.isFinite(res.lse.data[4])).toBe(true);
  });

  it('writes back only the positions it appended (a change elsewhere made during the call survives)', async () => {
    const d = setup({ ...F32, lens: [3, 3, 3], seqlenNew: 1 });
    const pending = run(d);
    (d.kCache.data as Float32Array)[0] = 1234.5; // row 0, position 0: not appended by this call
    await pending;
    expect((d.kCache.data as Float32Array)[0]).toBe(1234.5);
    expect((d.kCache.data as Float32Array)[3 * 64]).toBe(d.kNew!.data[0]); // row 0, position 3: appended
  });

  it('writes out and lse in place when given', async () => {
    const d = setup({ ...F32, lens: [2, 8, 4], seqlenNew: 1 });
    const out = tensor(new Float32Array(3 * 1 * 4 * 32).fill(NaN), [3, 1, 4, 32]);
    const lse = tensor(new Float32Array(3 * 4).fill(NaN), [3, 4, 1]);
    const want = expected(d, {});
    const res = await run(d, { out, lse });
    expect(res.out).toBe(out);
    expect(res.lse).toBe(lse);
    assertClose('out', values(out), want.out, d.ctx);
  });

  it('runs a decode loop: append one token, attend, repeat; the cache ends up holding every token', async () => {
    const rng = makeRng();
    const [hq, hk, hd, ms, steps] = [2, 1, 16, 32, 24];
    const kCache = tensor(new Float32Array(ms * hk * hd), [1, ms, hk, hd]);
    const vCache = tensor(new Float32Array(ms * hk * hd), [1, ms, hk, hd]);
    const allK: number[] = [];
    const allV: number[] = [];
    for (let step = 0; step < steps; step++) {
      const q = randomTensor([1, 1, hq, hd], 'float32', rng);
      const kNew = randomTensor([1, 1, hk, hd], 'float32', rng);
      const vNew = randomTensor([1, 1, hk, hd], 'float32', rng);
      allK.push(...kNew.data);
      allV.push(...vNew.data);
      const res = await flashAttentionWithKVCache(q, kCache, vCache, { cacheSeqlens: new Int32Array([step]), kNew, vNew, causal: true });
      const ref = referenceForward(values(q), allK, allV, { batch: 1, seqlenQ: 1, seqlenK: step + 1, headsQ: hq, headsKV: hk, headDim: hd }, { causal: true });
      assertClose(`out at step ${step}`, values(res.out), ref.out, `seed ${rng.seed}`);
    }
    expect(Array.from(kCache.data.slice(0, steps * hd))).toEqual(allK);
    expect(Array.from(vCache.data.slice(0, steps * hd))).toEqual(allV);
  });
});

/** A random order of `n` blocks. */
function shuffled(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** A contiguous cache's rows as pages of `page` keys placed in blocks `order`, spare blocks NaN. */
function toPaged(t: HostTensor, page: number, order: number[]) {
  const [bc, ms, hk, d] = t.shape;
  const per = ms / page;
  const numBlocks = order.length;
  const data = new Float32Array(numBlocks * page * hk * d).fill(NaN);
  const table = new Int32Array(bc * per);
  for (let r = 0; r < bc; r++) {
    for (let p = 0; p < per; p++) {
      const blk = order[r * per + p];
      table[r * per + p] = blk;
      data.set((t.data as Float32Array).subarray((r * ms + p * page) * hk * d, (r * ms + (p + 1) * page) * hk * d), blk * page * hk * d);
    }
  }
  return { cache: tensor(data, [numBlocks, page, hk, d]), blockTable: tensor(table, [bc, per]) };
}

describe('flashAttentionWithKVCache: paged caches', () => {
  it.each([16, 32])('give the same results and appended keys as a contiguous cache (pageSize %i)', async (page) => {
    const rng = makeRng();
    const d = setup({ ...F32, maxSeqlen: 64, lens: [5, 40, 17], seqlenNew: 3, seqlenQ: 3 }, rng);
    const order = shuffled(3 * (64 / page) + 3, rng);
    const pk = toPaged(d.kCache, page, order);
    const pv = toPaged(d.vCache, page, order);
    const paged = await flashAttentionWithKVCache(d.q, pk.cache, pv.cache, {
      cacheSeqlens: d.cacheSeqlens, kNew: d.kNew, vNew: d.vNew, blockTable: pk.blockTable, causal: true,
    });
    const contiguous = await run(d, { causal: true });
    expect(paged.out.data).toEqual(contiguous.out.data);
    expect(paged.lse.data).toEqual(contiguous.lse.data);
    // The paged cache, read back through its table, equals the updated contiguous cache.
    const again = toPagedView(pk.cache, pk.blockTable, 64);
    for (let r = 0; r < 3; r++) {
      const n = (d.cacheSeqlens[r] + 3) * 2 * 32;
      expect(Array.from(again.subarray(r * 64 * 64, r * 64 * 64 + n))).toEqual(Array.from((d.kCache.data as Float32Array).subarray(r * 64 * 64, r * 64 * 64 + n)));
    }
  });
});

/** A paged cache read back into contiguous rows [bc, ms, hk, d]. */
function toPagedView(cache: HostTensor, table: HostTensor, ms: number): Float32Array {
  const [, page, hk, d] = cache.shape;
  const [bc, per] = table.shape;
  const out = new Float32Array(bc * ms * hk * d);
  for (let r = 0; r < bc; r++) {
    for (let p = 0; p < per; p++) {
      const blk = table.data[r * per + p];
      out.set((cache.data as Float32Array).subarray(blk * page * hk * d, (blk + 1) * page * hk * d), (r * ms + p * page) * hk * d);
    }
  }
  return out;
}

describe('flashAttentionWithKVCache: rotary', () => {
  it.each([false, true])('rotates q and kNew at each position like the JS reference (interleaved %p)', async (interleaved) => {
    const rng = makeRng();
    const d = setup({ ...F32, lens: [4, 0, 21], seqlenNew: 2, seqlenQ: 2 }, rng);
    const rd = 16;
    const cosA = new Float32Array(40 * (rd / 2));
    const sinA = new Float32Array(40 * (rd / 2));
    for (let p = 0; p < 40; p++) {
      for (let i = 0; i < rd / 2; i++) {
        const ang = p / 10000 ** ((2 * i) / rd);
        cosA[p * (rd / 2) + i] = Math.cos(ang);
        sinA[p * (rd / 2) + i] = Math.sin(ang);
      }
    }
    const rot: Rotary = { cos: tensor(cosA, [40, rd / 2]), sin: tensor(sinA, [40, rd / 2]), interleaved };
    for (const causal of [true, false]) {
      const dd = { ...d, kCache: tensor(Float32Array.from(d.kCache.data as Float32Array), [...d.kCache.shape]),
        vCache: tensor(Float32Array.from(d.vCache.data as Float32Array), [...d.vCache.shape]) };
      const want = expected(dd, { causal }, rot);
      const res = await run(dd, { causal, rotaryCos: rot.cos, rotarySin: rot.sin, rotaryInterleaved: interleaved });
      assertClose('out', values(res.out), want.out, `${d.ctx} causal ${causal}`, 2e-5);
      assertLse(values(res.lse), want.lse, d.ctx, 5e-5);
      checkAppended(dd);
      // Without rotary the answer differs: the test can tell.
      const plain = expected(dd, { causal });
      expect(Math.max(...Array.from(values(res.out)).map((x, i) => Math.abs(x - plain.out[i])))).toBeGreaterThan(1e-3);
    }
  });
});

describe('flashAttentionWithKVCache: cacheBatchIdx', () => {
  it('reads and appends the cache row each batch row names, and no other', async () => {
    const rng = makeRng();
    const d = setup({ ...F32, batch: 4, lens: [3, 9, 1, 6], seqlenNew: 2, seqlenQ: 2 }, rng);
    const idx = [3, 0];
    const q = randomTensor([2, 2, 4, 32], 'float32', rng);
    const kNew = randomTensor([2, 2, 2, 32], 'float32', rng);
    const vNew = randomTensor([2, 2, 2, 32], 'float32', rng);
    const lens = Int32Array.from(idx.map((r) => d.cacheSeqlens[r]));
    const sub: Data = { ...d, s: { ...d.s, batch: 2 }, q, kNew, vNew, cacheSeqlens: lens };
    const want = expected(sub, { causal: true }, undefined, idx);
    const untouched = [1, 2].map((r) => Float32Array.from((d.kCache.data as Float32Array).subarray(r * 40 * 64, (r + 1) * 40 * 64)));
    const res = await flashAttentionWithKVCache(q, d.kCache, d.vCache, { cacheSeqlens: lens, kNew, vNew, cacheBatchIdx: new Int32Array(idx), causal: true });
    assertClose('out', values(res.out), want.out, d.ctx);
    assertLse(values(res.lse), want.lse, d.ctx);
    checkAppended(sub, idx);
    [1, 2].forEach((r, i) => expect((d.kCache.data as Float32Array).subarray(r * 40 * 64, (r + 1) * 40 * 64)).toEqual(untouched[i]));
  });
});

describe('flashAttentionWithKVCache: refusals', () => {
  const base = () => setup({ ...F32, lens: [3, 5, 7], seqlenNew: 1 });
  const i32 = (a: number[], shape?: number[]) => tensor(Int32Array.from(a), shape ?? [a.length]);
  const f32 = (shape: number[]) => tensor(new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
  const paged = (d: Data) => ({ k: f32([8, 16, 2, 32]), v: f32([8, 16, 2, 32]), table: i32([0, 1, 2, 3, 4, 5], [3, 2]) });
  type Case = [string, string, RegExp, (d: Data) => Promise<unknown>];
  const cases: Case[] = [
    ['no options', 'E_ARG', /options must be an object/, (d) => flashAttentionWithKVCache(d.q, d.kCache, d.vCache, undefined as never)],
    ['no cacheSeqlens', 'E_ARG', /cacheSeqlens is required/, (d) => flashAttentionWithKVCache(d.q, d.kCache, d.vCache, {} as never)],
    ['an unknown option', 'E_ARG', /unknown option 'seqlens'/, (d) => run(d, { seqlens: 1 })],
    ['float32 cacheSeqlens', 'E_DTYPE', /cacheSeqlens must be int32/, (d) => run(d, { cacheSeqlens: f32([3]) })],
    ['cacheSeqlens of the wrong length', 'E_SHAPE', /cacheSeqlens.shape must be \[batch\]/, (d) => run(d, { cacheSeqlens: new Int32Array([1, 2]) })],
    ['a negative cacheSeqlens', 'E_ARG', /cacheSeqlens\[1\] = -1 .*negative/, (d) => run(d, { cacheSeqlens: new Int32Array([1, -1, 2]) })],
    ['lengths past the cache', 'E_ARG', /cacheSeqlens\[2\] = 40 plus seqlenNew = 1 is past the cache's 40/, (d) => run(d, { cacheSeqlens: new Int32Array([1, 2, 40]) })],
    ['kNew without vNew', 'E_ARG', /kNew was given without vNew/, (d) => flashAttentionWithKVCache(d.q, d.kCache, d.vCache, { cacheSeqlens: d.cacheSeqlens, kNew: d.kNew })],
    ['kNew of another dtype', 'E_DTYPE', /kNew.dtype must be 'float32'/, (d) => run(d, { kNew: randomTensor([3, 1, 2, 32], 'bfloat16', makeRng()) })],
    ['kNew with the wrong heads', 'E_SHAPE', /kNew.shape must be/, (d) => run(d, { kNew: f32([3, 1, 1, 32]), vNew: f32([3, 1, 1, 32]) })],
    ['a kCache of another dtype', 'E_DTYPE', /kCache.dtype must be 'float32'/, (d) => flashAttentionWithKVCache(d.q, randomTensor([3, 40, 2, 32], 'bfloat16', makeRng()), d.vCache, { cacheSeqlens: d.cacheSeqlens })],
    ['vCache shaped unlike kCache', 'E_SHAPE', /vCache.shape must be kCache.shape/, (d) => flashAttentionWithKVCache(d.q, d.kCache, f32([3, 39, 2, 32]), { cacheSeqlens: d.cacheSeqlens })],
    ['headsQ not a multiple of headsKV', 'E_SHAPE', /multiple of kCache.shape\[2\]/, (d) => flashAttentionWithKVCache(d.q, f32([3, 40, 3, 32]), f32([3, 40, 3, 32]), { cacheSeqlens: d.cacheSeqlens })],
    ['a cache headDim unlike q', 'E_SHAPE', /kCache.shape\[3\] \(headDim\)/, (d) => flashAttentionWithKVCache(d.q, f32([3, 40, 2, 16]), f32([3, 40, 2, 16]), { cacheSeqlens: d.cacheSeqlens })],
    ['a cache with fewer rows than the batch', 'E_SHAPE', /kCache.shape\[0\] \(batchCache\) = 2/, (d) => flashAttentionWithKVCache(d.q, f32([2, 40, 2, 32]), f32([2, 40, 2, 32]), { cacheSeqlens: d.cacheSeqlens })],
    ['q of rank 3', 'E_SHAPE', /q must have 4 dims/, (d) => flashAttentionWithKVCache(f32([3, 4, 32]), d.kCache, d.vCache, { cacheSeqlens: d.cacheSeqlens })],
    ['a float8 q', 'E_UNSUPPORTED', /q.dtype must be 'float32', 'float16' or 'bfloat16'/, (d) => {
      const f8 = (s: number[]) => tensor(new Uint8Array(s.reduce((x, y) => x * y, 1)), s, 'float8_e4m3');
      return flashAttentionWithKVCache(f8([3, 1, 4, 32]), f8([3, 40, 2, 32]), f8([3, 40, 2, 32]), { cacheSeqlens: d.cacheSeqlens });
    }],
    ['a block table entry past the blocks', 'E_ARG', /blockTable\[1\]\[0\] = 8 is not a block of kCache \(0 .. 7\)/, (d) => {
      const p = paged(d);
      return flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: d.cacheSeqlens, blockTable: i32([0, 1, 8, 3, 4, 5], [3, 2]) });
    }],
    ['a negative block table entry', 'E_ARG', /blockTable\[0\]\[0\] = -1/, (d) => {
      const p = paged(d);
      return flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: d.cacheSeqlens, blockTable: i32([-1, 1, 2, 3, 4, 5], [3, 2]) });
    }],
    ['a float32 block table', 'E_DTYPE', /blockTable must be int32/, (d) => {
      const p = paged(d);
      return flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: d.cacheSeqlens, blockTable: f32([3, 2]) as never });
    }],
    ['a page size that is not a multiple of 16', 'E_SHAPE', /pageSize\) of a paged cache must be a multiple of 16, but got 8/, (d) =>
      flashAttentionWithKVCache(d.q, f32([8, 8, 2, 32]), f32([8, 8, 2, 32]), { cacheSeqlens: d.cacheSeqlens, blockTable: i32([0, 1, 2, 3, 4, 5], [3, 2]) })],
    ['rows that append into one block', 'E_ARG', /two batch rows append into the same cache position \(block 1, position 3/, (d) => {
      const p = paged(d);
      return flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: new Int32Array([3, 3, 7]), kNew: d.kNew, vNew: d.vNew, blockTable: i32([1, 0, 1, 3, 4, 5], [3, 2]) });
    }],
    ['lengths past a paged cache', 'E_ARG', /cacheSeqlens\[1\] = 33 is past the cache's 32 positions per row \(pageSize \* maxBlocksPerSeq\)/, (d) => {
      const p = paged(d);
      return flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: new Int32Array([3, 33, 7]), blockTable: p.table });
    }],
    ['cacheBatchIdx with a paged cache', 'E_ARG', /cacheBatchIdx applies to a contiguous cache only/, (d) => {
      const p = paged(d);
      return flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: d.cacheSeqlens, blockTable: p.table, cacheBatchIdx: new Int32Array([0, 1, 2]) });
    }],
    ['cacheBatchIdx past the cache rows', 'E_ARG', /cacheBatchIdx\[2\] = 3 is not a row of kCache \(0 .. 2\)/, (d) => run(d, { cacheBatchIdx: new Int32Array([0, 1, 3]) })],
    ['a repeated cacheBatchIdx with kNew', 'E_ARG', /cacheBatchIdx must not repeat a cache row when kNew is given/, (d) => run(d, { cacheSeqlens: new Int32Array([3, 3, 3]), cacheBatchIdx: new Int32Array([0, 1, 1]) })],
    ['rotaryCos without rotarySin', 'E_ARG', /rotaryCos and rotarySin come together/, (d) => run(d, { rotaryCos: f32([40, 8]) })],
    ['rotaryInterleaved without rotary tables', 'E_ARG', /rotaryInterleaved applies only with rotaryCos/, (d) => run(d, { rotaryInterleaved: true })],
    ['a rotaryDim that is not a multiple of 16', 'E_SHAPE', /rotaryDim 12, which must be a multiple of 16/, (d) => run(d, { rotaryCos: f32([40, 6]), rotarySin: f32([40, 6]) })],
    ['rotary tables shorter than the cache', 'E_SHAPE', /rotarySeqlen\) = 39 must cover every cache position \(at least 40\)/, (d) => run(d, { rotaryCos: f32([39, 8]), rotarySin: f32([39, 8]) })],
    ['rotary tables of another dtype', 'E_DTYPE', /rotaryCos.dtype must be 'float32'/, (d) => {
      const b = randomTensor([40, 8], 'bfloat16', makeRng());
      return run(d, { rotaryCos: b, rotarySin: b });
    }],
    ['an out of the wrong shape', 'E_SHAPE', /out.shape must be/, (d) => run(d, { out: f32([3, 1, 4, 16]) })],
    ['an out that is the cache', 'E_ARG', /shares memory/, (d) => run(d, { out: tensor((d.kCache.data as Float32Array).subarray(0, 384), [3, 1, 4, 32]) })],
    ["device: 'cuda' with host tensors", 'E_UNSUPPORTED', /pass DeviceTensors/, (d) => run(d, { device: 'cuda' })],
    ['a non-boolean causal', 'E_ARG', /causal must be a boolean/, (d) => run(d, { causal: 1 })],
    ['a bad windowSize', 'E_ARG', /windowSize must be \[left, right\]/, (d) => run(d, { windowSize: [2] })],
  ];
  it.each(cases)('refuses %s (%s), leaving the caches unchanged', async (_name, code, message, call) => {
    const d = base();
    const before = [Float32Array.from(d.kCache.data as Float32Array), Float32Array.from(d.vCache.data as Float32Array)];
    const e = await rejectsWith(call(d), code);
    expect(e.message).toMatch(/^flashAttentionWithKVCache: /);
    expect(e.message).toMatch(message);
    expect(d.kCache.data).toEqual(before[0]);
    expect(d.vCache.data).toEqual(before[1]);
  });

  it('accepts the same request once the problem is fixed (the refusals above are not vacuous)', async () => {
    const d = base();
    const p = paged(d);
    await expect(flashAttentionWithKVCache(d.q, p.k, p.v, { cacheSeqlens: d.cacheSeqlens, blockTable: p.table })).resolves.toBeDefined();
    await expect(run(d, { cacheBatchIdx: new Int32Array([2, 1, 0]) })).resolves.toBeDefined();
  });
});
