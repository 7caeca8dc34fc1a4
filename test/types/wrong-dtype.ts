// Negative control for test/types/types.test.ts: this file MUST fail to compile. If tsc accepts
// it, the typed tensor() overloads stopped catching a wrong typed array.
import { tensor } from 'flashattn';

export const q = tensor(new Float64Array(16), [1, 2, 2, 4]);
