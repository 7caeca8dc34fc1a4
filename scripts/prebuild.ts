// prebuild.ts — `npm run prebuild`: builds the addon for release and packs the platform packages.
//
//   npm run prebuild [-- --backend all|cuda|cpu] [--out prebuilds] [--no-build] [--no-main]
//
// For each backend it compiles the addon from source with libstdc++ linked statically (the CUDA
// build also links cudart statically, see CMakeLists.txt), checks that the result loads, needs no
// CUDA toolkit library and has this package's version, stages npm/<platform>/ with the addon and a
// build-info.json, and packs it: prebuilds/flashattn-linux-x64-cuda-<v>.tgz and
// prebuilds/flashattn-linux-x64-<v>.tgz. It then packs the main package too (--no-main skips it),
// so that one folder holds everything a release publishes (.github/workflows/release.yml).
// --no-build packs the builds already in build-cuda/ and build/.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type AddonBuild, localBuilds, packageRoot } from '../src-ts/load';
import { checkPrebuilt, cudaArchs, findNvcc, main as buildNative } from './build-native';

const root = packageRoot(__dirname);

function log(msg: string): void {
  console.log(`prebuild: ${msg}`);
}

interface Template {
  dir: string;
  build: AddonBuild;
}

const TEMPLATES: Template[] = [
  { dir: 'linux-x64-cuda', build: 'cuda' },
  { dir: 'linux-x64', build: 'cpu' },
];

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

function output(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** The newest GLIBC_x.y symbol version the file needs, from objdump; '' when unknown. */
function glibcNeeded(file: string): string {
  const versions = [...output('objdump', ['-T', file]).matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  if (!versions.length) return '';
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const [maj, min] = versions[versions.length - 1];
  return `${maj}.${min}`;
}

/** Shared libraries the file links that a machine without a CUDA toolkit or with an older
 * libstdc++ may lack. */
function unwantedLibs(file: string): string[] {
  return output('ldd', [file]).split('\n').map((l) => l.trim().split(' ')[0]).filter((l) => /^lib(cudart|stdc\+\+|cublas|nvrtc)/.test(l));
}

function buildInfo(t: Template, file: string, version: string): Record<string, unknown> {
  const nvcc = t.build === 'cuda' ? findNvcc() : null;
  const cuda = nvcc ? /release (\d+\.\d+)/.exec(output(nvcc, ['--version']))?.[1] ?? '' : '';
  return {
    package: `@flashattn/${t.dir}`,
    version,
    build: t.build,
    ...(t.build === 'cuda' ? { cudaArchs: cudaArchs(process.env).split(/[;,]/), cuda, cudart: 'static' } : {}),
    libstdcxx: 'static',
    glibc: glibcNeeded(file),
    napiVersion: 8,
    builtWith: { node: process.version, compiler: output('c++', ['--version']).split('\n')[0] },
    commit: output('git', ['rev-parse', 'HEAD']),
    date: new Date().toISOString(),
  };
}

function npmPack(dir: string, out: string): string {
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm ? [process.execPath, [npm]] : ['npm', []];
  const r = spawnSync(cmd, [...args, 'pack', '--json', '--pack-destination', out], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`npm pack failed in ${dir}`);
  const packed = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{ filename: string }>;
  return join(out, packed[0].filename);
}

export async function main(argv: string[]): Promise<number> {
  const arg = (flag: string, dflt: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
  };
  const which = arg('--backend', 'all');
  if (!['all', 'cuda', 'cpu'].includes(which)) throw new Error(`--backend must be all, cuda or cpu; got '${which}'`);
  const out = resolve(root, arg('--out', 'prebuilds'));
  const version = readJson<{ version: string }>(join(root, 'package.json')).version;
  mkdirSync(out, { recursive: true });
  const made: string[] = [];

  for (const t of TEMPLATES.filter((x) => which === 'all' || x.build === which)) {
    const addon = localBuilds(root).find((b) => b.build === t.build)!.file;
    if (!argv.includes('--no-build')) {
      log(`building the ${t.build} addon (portable)`);
      const code = await buildNative(['--backend', t.build, '--portable']);
      if (code !== 0) return code;
    }
    if (!existsSync(addon)) throw new Error(`${addon} does not exist; build it or drop --no-build`);
    const bad = unwantedLibs(addon);
    if (bad.length) throw new Error(`${addon} links ${bad.join(', ')} dynamically; a prebuilt must not (rebuild without --no-build)`);
    const check = checkPrebuilt(addon, version);
    if (!check.ok || check.build !== t.build) {
      throw new Error(`${addon} is not a usable ${t.build} prebuilt: ${check.problem ?? `it is the ${check.build} build`}`);
    }

    const stage = join(out, 'stage', t.dir);
    rmSync(stage, { recursive: true, force: true });
    mkdirSync(stage, { recursive: true });
    const template = readJson<Record<string, unknown>>(join(root, 'npm', t.dir, 'package.json'));
    const { name, description, ...rest } = template;
    writeFileSync(join(stage, 'package.json'), JSON.stringify({ name, version, description, ...rest }, null, 2) + '\n');
    copyFileSync(join(root, 'npm', t.dir, 'README.md'), join(stage, 'README.md'));
    copyFileSync(addon, join(stage, 'flashattn.node'));
    writeFileSync(join(stage, 'build-info.json'), JSON.stringify(buildInfo(t, addon, version), null, 2) + '\n');
    made.push(npmPack(stage, out));
  }
  if (!argv.includes('--no-main')) made.push(npmPack(root, out));
  for (const f of made) log(`${f}  ${(statSync(f).size / 2 ** 20).toFixed(1)} MiB`);
  return 0;
}
