// gpu-helpers.ts — every GPU test file starts with requireGpu() in beforeAll: with no usable GPU
// the whole suite FAILS (it never passes by skipping).
import { probe } from '../../src-ts/index';
import type { Case } from '../helpers';
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
