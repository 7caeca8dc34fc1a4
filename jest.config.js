// jest.config.js — `npm test`: everything that needs no GPU, once per addon build that exists.
//
// Each build gets its own jest project (named after it) whose setup file points FLASHATTN_BINARY
// at that build, so the CPU-only build and the CUDA build (which must fall back to the CPU backend
// on a machine without a GPU) are both tested. GPU tests live in test/gpu/ (jest.gpu.config.js).
'use strict';
const { existsSync } = require('fs');
const { join } = require('path');

const BUILDS = [
  { name: 'cuda build', file: join(__dirname, 'build-cuda', 'Release', 'flashattn.node'), color: 'magenta' },
  { name: 'cpu build', file: join(__dirname, 'build', 'Release', 'flashattn.node'), color: 'cyan' },
];

const found = BUILDS.filter((b) => existsSync(b.file));
if (found.length === 0) {
  throw new Error(
    'flashattn tests: no addon build found. Tried:\n' +
      BUILDS.map((b) => `  - ${b.file}`).join('\n') +
      '\nBuild one first: `npm run build && node dist/scripts/build-native.js --backend cpu` ' +
      '(or --backend cuda), or run `npm install`.',
  );
}

/** One jest project for the tests in `roots` against one addon build. */
function project(build, extra) {
  return {
    displayName: { name: build.name, color: build.color },
    rootDir: __dirname,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }] },
    moduleFileExtensions: ['ts', 'js', 'json', 'node'],
    setupFiles: ['<rootDir>/test/setup/use-build.js'],
    globals: { FLASHATTN_TEST_BINARY: build.file, FLASHATTN_TEST_BUILD: build.name },
    ...extra,
  };
}

// The type tests (test/types/) compile declarations and load no addon: they run in the first
// project only.
module.exports = {
  // CI machines have two cores shared by jest's workers and the child processes some tests spawn:
  // a test's time there is several times its time on a workstation. A test that hangs still
  // fails, after two minutes instead of jest's default five seconds.
  testTimeout: 120_000,
  projects: found.map((b, i) =>
    project(b, { testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/gpu/', ...(i > 0 ? ['<rootDir>/test/types/'] : [])] }),
  ),
};
