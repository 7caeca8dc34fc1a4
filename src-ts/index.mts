// index.mts — the ES module entry (`import … from 'flashattn'`): the CommonJS build's exports,
// re-exported by name, plus a default export of all of them.
import cjs from './index.js';

export * from './index.js';
export default cjs;
