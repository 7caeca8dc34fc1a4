// One slice of the CUDA cases (see the *-cases.ts file); jest runs test files in parallel, so the
// float64 references of the slices are computed on different cores.
import { gpuSuite } from './gpu-helpers';
import { headDims } from './forward-cases';

headDims(gpuSuite(), 'bfloat16');
