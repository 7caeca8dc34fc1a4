#!/usr/bin/env node
// `npm run prebuild`: builds the prebuilt platform packages (scripts/prebuild.ts does the work).
//
// npm also runs a script named "prebuild" as the pre-hook of `npm run build`, with the same
// environment, so this shim looks at the npm command line it was started from and does nothing
// when that was `npm run build`.
'use strict';
const { existsSync, readFileSync } = require('fs');
const { join } = require('path');
const { spawnSync } = require('child_process');

/** A process's command line words and its parent pid: from /proc on Linux, else from ps. */
function processInfo(pid) {
  try {
    // npm sets its process title ("npm run build"), which replaces its cmdline with one string.
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0\s]+/).filter(Boolean);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return { argv, ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) }; // field 4
  } catch {
    const r = spawnSync('ps', ['-o', 'ppid=', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
    const words = r.status === 0 ? r.stdout.trim().split(/\s+/) : [];
    return words.length ? { argv: words.slice(1), ppid: Number(words[0]) } : null;
  }
}

/** The arguments of the nearest npm process above this one, or null. */
function npmArgv() {
  let pid = process.ppid;
  for (let depth = 0; depth < 6 && pid > 1; depth++) {
    const info = processInfo(pid);
    if (!info) return null;
    const i = info.argv.findIndex((a) => /(^|\/)npm(-cli\.js)?$/.test(a));
    if (i >= 0) return info.argv.slice(i + 1);
    pid = info.ppid;
  }
  return null;
}

const argv = npmArgv();
if (argv && argv.includes('build') && !argv.includes('prebuild')) process.exit(0); // the hook of `npm run build`

const root = join(__dirname, '..');
const built = join(root, 'dist', 'scripts', 'prebuild.js');
if (!existsSync(built)) {
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], {
    stdio: 'inherit',
    cwd: root,
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
require(built).main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`flashattn prebuild: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
