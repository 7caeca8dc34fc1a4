// One slice of the CUDA cases (see the *-cases.ts file); jest runs test files in parallel, so the
// float64 references of the slices are computed on different cores.
import { gpuSuite } from './gpu-helpers';
import { seqlens } from './forward-cases';

seqlens(gpuSuite(), 'short');
