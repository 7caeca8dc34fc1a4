#!/usr/bin/env node
// npm's install hook: use a prebuilt platform package that loads, else compile the addon (see
// install() in scripts/build-native.ts). A published package ships dist/ already; a fresh clone
// has typescript installed as a dev dependency by the time this runs.
'use strict';
const { existsSync } = require('fs');
const { join } = require('path');
const { spawnSync } = require('child_process');

const root = join(__dirname, '..');
const built = join(root, 'dist', 'scripts', 'build-native.js');
if (!existsSync(built) || process.env.FLASHATTN_REBUILD_TS) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    console.error('flashattn: dist/ is missing and TypeScript is not installed; run `npm install` in a clone with dev dependencies.');
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
require(built).install(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`flashattn: install failed: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
