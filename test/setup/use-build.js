// Points the package at the addon build this jest project tests (see jest.config.js).
'use strict';
const file = globalThis.FLASHATTN_TEST_BINARY;
if (!file) throw new Error('test/setup/use-build.js: FLASHATTN_TEST_BINARY is not set by the jest config');
process.env.FLASHATTN_BINARY = file;
process.env.FLASHATTN_TEST_BUILD = globalThis.FLASHATTN_TEST_BUILD || '';
