#!/usr/bin/env node
// Writes package-lock.json entries for the prebuilt platform packages (optionalDependencies).
//
// Until a version of them is on the registry, `npm install` cannot resolve them and leaves them out
// of a lock file it writes from scratch, and then `npm ci` refuses the lock ("Missing: … from lock
// file"). With an entry marked optional (and os/cpu/libc from npm/<platform>/package.json), `npm ci`
// accepts the lock, tries the package, and skips it when it cannot be fetched. test/package.test.ts
// fails when the entries are missing or stale; run this script to put them back.
'use strict';
const { readFileSync, readdirSync, writeFileSync } = require('fs');
const { join } = require('path');

const root = join(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lockFile = join(root, 'package-lock.json');
const lock = JSON.parse(readFileSync(lockFile, 'utf8'));

/** The lock entry the platform package `name` must have. */
function entry(name, version) {
  const dir = readdirSync(join(root, 'npm')).find(
    (d) => JSON.parse(readFileSync(join(root, 'npm', d, 'package.json'), 'utf8')).name === name,
  );
  if (!dir) throw new Error(`no npm/<platform>/package.json template is named ${name}`);
  const t = JSON.parse(readFileSync(join(root, 'npm', dir, 'package.json'), 'utf8'));
  const e = { version, cpu: t.cpu, engines: t.engines, libc: t.libc, license: t.license, optional: true, os: t.os };
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
  return e;
}

/** Lock entries for every optional dependency, keyed like package-lock.json's "packages". */
function expected() {
  const out = {};
  for (const [name, version] of Object.entries(pkg.optionalDependencies || {})) out[`node_modules/${name}`] = entry(name, version);
  return out;
}

if (require.main === module) {
  const want = expected();
  const packages = {};
  // Keep npm's order (root first, then sorted paths) with the platform entries merged in.
  const merged = { ...lock.packages };
  for (const [k, v] of Object.entries(want)) merged[k] = { ...(merged[k] || {}), ...v };
  packages[''] = merged[''];
  for (const k of Object.keys(merged).filter((k) => k !== '').sort()) packages[k] = merged[k];
  lock.packages = packages;
  writeFileSync(lockFile, JSON.stringify(lock, null, 2) + '\n');
  console.log(`package-lock.json: ${Object.keys(want).join(', ')}`);
}

module.exports = { expected };
