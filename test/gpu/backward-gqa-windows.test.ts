// One slice of the CUDA cases (see the *-cases.ts file); jest runs test files in parallel, so the
// float64 references of the slices are computed on different cores.
import { gpuSuite } from './gpu-helpers';
import { gqa, windows } from './backward-cases';

const gpu = gpuSuite();
gqa(gpu);
windows(gpu);
