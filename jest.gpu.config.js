// jest.gpu.config.js — `npm run test:gpu`: every CUDA path against the CPU backend and the
// float64 reference. Runs against the CUDA build only; with no usable GPU every test FAILS
// (test/gpu/gpu-helpers.ts asserts a device in beforeAll), it never passes by skipping.
'use strict';
const { existsSync } = require('fs');
const { join } = require('path');

const file = process.env.FLASHATTN_BINARY || join(__dirname, 'build-cuda', 'Release', 'flashattn.node');
if (!existsSync(file)) {
  throw new Error(
    `flashattn GPU tests: the CUDA addon ${file} does not exist. Build it with ` +
      '`npm run build && node dist/scripts/build-native.js --backend cuda` (needs nvcc), or set FLASHATTN_BINARY.',
  );
}

module.exports = {
  displayName: { name: 'gpu', color: 'green' },
  rootDir: __dirname,
  testEnvironment: 'node',
  // The README's examples too: on a GPU its DeviceTensor example takes its GPU branch.
  testMatch: ['<rootDir>/test/gpu/**/*.test.ts', '<rootDir>/test/readme.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  setupFiles: ['<rootDir>/test/setup/use-build.js'],
  globals: { FLASHATTN_TEST_BINARY: file, FLASHATTN_TEST_BUILD: 'cuda build' },
  // Float64 references of the larger shapes take seconds in JS.
  testTimeout: 300000,
};
