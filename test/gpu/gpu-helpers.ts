// gpu-helpers.ts — every GPU test file starts with requireGpu() in beforeAll: with no usable GPU
// the whole suite FAILS (it never passes by skipping).
import { probe } from '../../src-ts/index';
import { type Case, checkCase } from '../helpers';
import type { ProbeReport } from '../../src-ts/probe';
import { noGpuReason } from '../../src-ts/probe';

export function requireGpu(): ProbeReport {
  const report = probe();
  const reason = noGpuReason(report, 0);
  if (reason) {
    throw new Error(
      `The GPU test suite needs a usable CUDA GPU, but ${reason}. ` +
        'Run it on a GPU host with the CUDA build (npm run build:cuda), or run `npm test` for the CPU suite.',
    );
  }
  return report;
}

export interface GpuSuite {
  report: () => ProbeReport;
}

/** Calls requireGpu() before every test of the file (so each test fails without a GPU). */
export function gpuSuite(): GpuSuite {
  let report: ProbeReport | undefined;
  beforeAll(() => {
    report = requireGpu();
  });
  return {
    report: () => {
      if (!report) throw new Error('no GPU (see the beforeAll failure)');
      return report;
    },
  };
}

export const HEAD_DIMS = [32, 40, 64, 80, 96, 128, 192, 256];
export const DTYPES = ['float16', 'bfloat16'] as const;

/** The mask kinds every head dim is checked with. */
export const MASKS: Array<Pick<Case, 'causal' | 'windowSize'>> = [{}, { causal: true }, { windowSize: [17, 5] }];
export const maskName = (m: Pick<Case, 'causal' | 'windowSize'>): string =>
  m.causal ? 'causal' : m.windowSize ? `window [${m.windowSize}]` : 'no mask';

/** Every head dim × mask kind, for one pass and dtype, at a small GQA shape with tails. */
export function headDimSuite(
  gpu: GpuSuite,
  op: 'forward' | 'backward',
  dtype: (typeof DTYPES)[number],
  cuda: (c: Case) => Case,
): void {
  describe(`CUDA ${op}, ${dtype}`, () => {
    it.each(HEAD_DIMS.flatMap((d) => MASKS.map((m) => [d, maskName(m), m] as const)))(
      'headDim %i, %s',
      async (headDim, _name, mask) => {
        gpu.report();
        // DeviceTensors, so the outputs start NaN-poisoned on the device itself (the host-array path
        // stages through fresh device buffers that no poison reaches).
        await checkCase(cuda({ dtype, headDim, batch: 2, seqlenQ: 97, seqlenK: 130, headsQ: 4, headsKV: 2, deviceTensors: true, ...mask }));
      },
    );
  });
}
