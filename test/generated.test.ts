// generated.test.ts — the checked-in instantiation files are exactly what the generator's table
// says (scripts/gen-instantiations.ts), and the table agrees with the plan's head dims.
import { join } from 'node:path';

import { TABLE, differences, render } from '../scripts/gen-instantiations';
import { binding } from '../src-ts/binding';

describe('cuda/generated/', () => {
  it('matches scripts/gen-instantiations.ts (run node dist/scripts/gen-instantiations.js after changing its table)', () => {
    expect(differences(join(__dirname, '..', 'cuda', 'generated'))).toEqual([]);
  });

  it('has one file per (path, pass, head dim, dtype) in one naming convention', () => {
    const names = [...render().keys()].filter((n) => n.endsWith('.cu'));
    expect(names.length).toBe(TABLE.reduce((n, f) => n + f.headDims.length * f.dtypes.length, 0));
    for (const n of names) expect(n).toMatch(/^sm(80|90)_(fwd|bwd)_d\d+_(e4m3_)?(fp16|bf16)\.cu$/);
  });

  it('covers every head dim the plan dispatches to', () => {
    const report = binding().probe();
    const hasSm90 = report.build === 'cuda' && report.compiledArchs.includes('sm_90a');
    for (const f of TABLE) {
      if (f.path === 'sm90' && !hasSm90) continue; // the plan can pick sm90 only in such a build
      for (const d of [8, 40, 72, 104, 136, 200, 256]) {
        if (d > Math.max(...f.headDims)) continue; // the sm90 backward stops at 128; sm80 serves the rest
        const p = binding().planFor({
          capability: f.path === 'sm90' ? [9, 0] : [8, 0], archs: f.path === 'sm90' ? '80;90a' : '80',
          forcePath: f.path, op: f.pass === 'fwd' ? 'forward' : 'backward', device: 0, dtype: 'bfloat16',
          headDim: d, seqlenQ: 64, seqlenK: 64, headsQ: 2, headsKV: 2, windowLeft: -1, windowRight: -1,
        });
        expect(p.path).toBe(f.path);
        expect(f.headDims).toContain(p.kernelHeadDim);
      }
    }
  });
});
