// build-native.ts — the install step and the source builds of the addon. Never downloads anything.
//
//   cuda: cmake-js + CMake's CUDA language  -> build-cuda/Release/flashattn.node
//   cpu:  node-gyp (no CUDA toolkit needed) -> build/Release/flashattn.node
//
// install() (npm's install hook, through scripts/install.js) first tries the prebuilt platform
// packages (@flashattn/linux-x64-cuda, then @flashattn/linux-x64) and compiles only when none of
// them loads, or when FLASHATTN_BUILD asks for a source build. Whatever it picks, it writes an
// install record (src-ts/load.ts: InstallRecord) next to the addon, which `flashattn inspect`
// prints and whose warnings the loader emits once at first load: npm hides install-script output
// unless the script fails, so the record is what reaches the user.
//
// main() is the source build alone (`npm run build:cpu|build:cuda`): --backend cpu|cuda|auto, else
// FLASHATTN_BUILD, else auto (cuda when nvcc is found). FLASHATTN_CUDA_ARCHS (e.g. "80;90a") picks
// the CUDA archs; FLASHATTN_JOBS the parallelism. --portable links libstdc++ statically (prebuilds);
// --clean leaves only the .node file (install builds).
// The two builds live in different folders because node-gyp deletes build/ when it starts.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import {
  type AddonBuild,
  INSTALL_RECORD,
  type InstallRecord,
  localBuilds,
  packageRoot,
  platformPackageAddon,
  platformPackages,
} from '../src-ts/load';

type Env = Readonly<Record<string, string | undefined>>;

// The nearest flashattn package.json above this file: from dist/scripts/ (compiled) or scripts/ (ts-jest).
const root = packageRoot(__dirname);

function log(msg: string): void {
  console.log(`flashattn: ${msg}`);
}

/** Lines meant for the user go to stderr too: npm prints a failed script's output, stderr included. */
function warn(msg: string): void {
  console.error(`flashattn: ${msg}`);
}

function version(dir: string = root): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Where nvcc is, or null. Checks CUDACXX, PATH, CUDA_HOME/CUDA_PATH, then /usr/local/cuda. */
export function findNvcc(env: Env = process.env): string | null {
  const candidates: string[] = [];
  if (env.CUDACXX) candidates.push(env.CUDACXX);
  for (const dir of (env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, 'nvcc'));
  for (const home of [env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda']) {
    if (home) candidates.push(join(home, 'bin', 'nvcc'));
  }
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      /* not there */
    }
  }
  return null;
}

type Requested = AddonBuild | 'auto';

function parseBackend(argv: string[], env: Env): { requested: Requested; source: string } {
  const i = argv.indexOf('--backend');
  const fromArg = i >= 0 ? argv[i + 1] : undefined;
  const value = fromArg ?? env.FLASHATTN_BUILD ?? 'auto';
  const source = fromArg ? '--backend' : env.FLASHATTN_BUILD ? 'FLASHATTN_BUILD' : 'default';
  if (value !== 'auto' && value !== 'cpu' && value !== 'cuda') {
    throw new Error(`${source} must be one of auto, cpu, cuda; got '${value}'`);
  }
  return { requested: value, source };
}

interface RunResult {
  ok: boolean;
  /** The last lines of its output (stdout and stderr), for the install record. */
  tail: string[];
  exit: string;
}

/** Runs a command, passing its output through and keeping the last lines. */
function run(cmd: string, args: string[], env: Env): Promise<RunResult> {
  log(`$ ${[cmd, ...args].join(' ')}`);
  return new Promise((done) => {
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) tail.push(line.trimEnd());
      if (tail.length > 40) tail.splice(0, tail.length - 40);
    };
    const child = spawn(cmd, args, { cwd: root, env: env as Record<string, string>, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => {
      process.stdout.write(c);
      keep(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      process.stderr.write(c);
      keep(c);
    });
    child.on('error', (err) => done({ ok: false, tail: [...tail, err.message], exit: `could not start ${cmd}: ${err.message}` }));
    child.on('close', (code, signal) =>
      done({ ok: code === 0, tail, exit: signal ? `killed by ${signal}` : `exit code ${code}` }),
    );
  });
}

function jobs(env: Env): number {
  const n = Number(env.FLASHATTN_JOBS);
  return Number.isInteger(n) && n > 0 ? n : Math.max(1, cpus().length);
}

interface BuildOptions {
  /** Link libstdc++ statically, so the .node runs on systems with an older one (prebuilds). */
  portable: boolean;
}

export function cudaArchs(env: Env): string {
  return env.FLASHATTN_CUDA_ARCHS || '80;90a';
}

function buildCuda(nvcc: string, env: Env, opts: BuildOptions): Promise<RunResult> {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const childEnv = { ...env, CUDACXX: nvcc, PATH: `${dirname(nvcc)}${delimiter}${env.PATH ?? ''}` };
  const args = [cmakeJs, 'build', '--out', 'build-cuda', '--parallel', String(jobs(env)), `--CDFLASHATTN_CUDA_ARCHS=${cudaArchs(env)}`];
  if (opts.portable) args.push('--CDCMAKE_SHARED_LINKER_FLAGS=-static-libstdc++');
  return run(process.execPath, args, childEnv);
}

async function buildCpu(env: Env, opts: BuildOptions): Promise<RunResult> {
  // node-gyp needs the running Node's own headers; point it at them so it never downloads.
  const nodedir = env.npm_config_nodedir || resolve(dirname(process.execPath), '..');
  if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
    const msg = `no Node.js headers under ${nodedir}/include/node; set npm_config_nodedir to a Node.js install or source tree`;
    warn(msg);
    return { ok: false, tail: [msg], exit: 'not started' };
  }
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  const childEnv = opts.portable ? { ...env, LDFLAGS: `${env.LDFLAGS ?? ''} -static-libstdc++`.trim() } : env;
  return run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, `--jobs=${jobs(env)}`], childEnv);
}

function addonOf(build: AddonBuild): string {
  return localBuilds(root).find((b) => b.build === build)!.file;
}

/** Writes the install record next to `addon`; returns false (and says so) when it cannot. */
export function writeRecord(addon: string, record: InstallRecord): boolean {
  const file = join(dirname(addon), INSTALL_RECORD);
  try {
    writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
    return true;
  } catch (err) {
    log(`could not write ${file}: ${(err as Error).message}`);
    return false;
  }
}

/** Removes everything of a build folder but Release/flashattn.node (and its record): no object
 * files, CMake caches or Makefiles stay in node_modules. */
export function cleanBuildDir(dir: string): void {
  const release = join(dir, 'Release');
  const keep = ['flashattn.node', INSTALL_RECORD].filter((f) => existsSync(join(release, f)));
  const stash = `${dir}.keep-${process.pid}`;
  rmSync(stash, { recursive: true, force: true });
  mkdirSync(stash);
  for (const f of keep) renameSync(join(release, f), join(stash, f));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(release, { recursive: true });
  for (const f of keep) renameSync(join(stash, f), join(release, f));
  rmSync(stash, { recursive: true, force: true });
}

interface SourceBuild {
  requested: Requested;
  /** What asked for this build ('--backend', 'FLASHATTN_BUILD', 'default'). */
  source: string;
  /** Why no prebuilt was used (install only). */
  prebuiltNote?: string;
  /** Problems met before the build (a prebuilt that did not load), for the record. */
  warnings?: string[];
  clean: boolean;
  portable: boolean;
}

/** Compiles the addon and writes its install record. Returns the exit code. */
async function sourceBuild(b: SourceBuild, env: Env): Promise<number> {
  const nvcc = findNvcc(env);
  const started = Date.now();
  const because = b.prebuiltNote ? `; ${b.prebuiltNote}` : '';
  let backend: AddonBuild;
  let why: string;
  if (b.requested === 'auto') {
    backend = nvcc ? 'cuda' : 'cpu';
    why = nvcc
      ? `compiled from source: nvcc was found at ${nvcc}${because}`
      : `compiled from source without CUDA: no nvcc on PATH, CUDACXX, CUDA_HOME or /usr/local/cuda${because}`;
  } else {
    backend = b.requested;
    why = `compiled from source: ${b.source}=${b.requested}${because}`;
  }
  log(`building the ${backend === 'cuda' ? 'CUDA' : 'CPU-only'} addon (${why})`);
  const warnings: string[] = [...(b.warnings ?? [])];
  let compilerTail: string[] | undefined;
  const secs = () => ((Date.now() - started) / 1000).toFixed(1);
  const finish = (build: AddonBuild): number => {
    const addon = addonOf(build);
    const record: InstallRecord = { version: version(), build, source: 'source', why, warnings, date: new Date().toISOString() };
    if (compilerTail) record.log = compilerTail;
    writeRecord(addon, record);
    if (b.clean) cleanBuildDir(dirname(dirname(addon)));
    log(`${build === 'cuda' ? 'CUDA' : 'CPU-only'} addon built in ${secs()} s: ${addon}`);
    return 0;
  };
  const opts: BuildOptions = { portable: b.portable };

  if (backend === 'cuda') {
    if (!nvcc) {
      warn('the CUDA build was requested but nvcc was not found; install the CUDA toolkit or set CUDACXX');
      return 1;
    }
    const r = await buildCuda(nvcc, env, opts);
    if (r.ok) return finish('cuda');
    if (b.requested === 'cuda') {
      warn(`the CUDA build failed (${r.exit}); see the compiler output above`);
      return 1;
    }
    const msg = `The CUDA build of flashattn failed during install (nvcc ${nvcc}, ${r.exit}), so it fell back to ` +
      `the CPU-only build. The compiler's last lines are in ${join(dirname(addonOf('cpu')), INSTALL_RECORD)} ("log"); ` +
      '`FLASHATTN_BUILD=cuda npm rebuild flashattn --foreground-scripts` shows the whole build and makes a failure an error.';
    warn(`WARNING: ${msg}`);
    warnings.push(msg);
    compilerTail = r.tail;
    // Its object files and CMake logs would stay in node_modules; the record keeps the tail.
    if (b.clean) rmSync(dirname(dirname(addonOf('cuda'))), { recursive: true, force: true });
    why = `compiled from source without CUDA: the CUDA build failed (${r.exit})${because}`;
  }
  const r = await buildCpu(env, opts);
  if (r.ok) return finish('cpu');
  warn(`the CPU-only build failed (${r.exit}); see the compiler output above`);
  return 1;
}

/** `npm run build:cpu|build:cuda|build:native`: a source build. */
export async function main(argv: string[], env: Env = process.env): Promise<number> {
  const { requested, source } = parseBackend(argv, env);
  return sourceBuild({ requested, source, clean: argv.includes('--clean'), portable: argv.includes('--portable') }, env);
}

/** What checking one prebuilt found. */
interface PrebuiltCheck {
  ok: boolean;
  /** Why it cannot be used, when !ok. */
  problem?: string;
  build?: AddonBuild;
  version?: string;
  devices?: number;
  cudaError?: string;
}

/** Loads a prebuilt addon in a child process (a broken one cannot take the install down) and asks
 * it what it is. */
export function checkPrebuilt(file: string, expectVersion: string = version()): PrebuiltCheck {
  if (!existsSync(file)) return { ok: false, problem: `${file} is missing` };
  const script =
    'const b = require(process.env.FLASHATTN_CHECK); const p = b.probe();' +
    'process.stdout.write(JSON.stringify({ version: b.version, build: p.build, devices: p.devices.length, cudaError: p.cudaError }));';
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, FLASHATTN_CHECK: file },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) {
    const why = (r.stderr || '').split('\n').find((l) => /Error|error/.test(l)) ?? r.error?.message ?? `exit code ${r.status}`;
    return { ok: false, problem: `it does not load here: ${why.trim()}` };
  }
  const info = JSON.parse(r.stdout) as { version: string; build: AddonBuild; devices: number; cudaError: string };
  if (info.version !== expectVersion) {
    return { ok: false, problem: `it is version ${info.version}, this flashattn is ${expectVersion}` };
  }
  return { ok: true, ...info };
}

/** npm's install hook: use a prebuilt that loads, else compile. Returns the exit code. `at` is the
 * package whose platform packages are tried (tests stage one; only this package is ever compiled). */
export async function install(argv: string[], env: Env = process.env, at: string = root): Promise<number> {
  const v = version(at);
  if (env.FLASHATTN_BUILD) {
    const { requested, source } = parseBackend([], env);
    return sourceBuild({ requested, source, clean: true, portable: false }, env);
  }
  const notes: string[] = [];
  const warnings: string[] = [];
  for (const p of platformPackages()) {
    const file = platformPackageAddon(p.name, at);
    if (!file) {
      notes.push(`${p.name} is not installed`);
      continue;
    }
    const c = checkPrebuilt(file, v);
    if (!c.ok) {
      const note = `${p.name} cannot be used: ${c.problem}`;
      notes.push(note);
      warnings.push(`The prebuilt ${note}.`);
      warn(note);
      continue;
    }
    const gpus = c.build !== 'cuda'
      ? ''
      : c.devices
        ? `; it sees ${c.devices} CUDA device(s)`
        : `; it sees no usable GPU now (${c.cudaError || 'no devices'}), so calls run on the CPU backend until it does`;
    const why = `prebuilt ${c.build === 'cuda' ? 'CUDA' : 'CPU-only'} addon from ${p.name}@${c.version}: it loads on this ` +
      `machine, no compiler needed${gpus}${notes.length ? ` (${notes.join('; ')})` : ''}`;
    writeRecord(file, { version: v, build: c.build!, source: 'prebuilt', package: `${p.name}@${c.version}`, why, warnings, date: new Date().toISOString() });
    log(`using the ${why}`);
    return 0;
  }
  if (at !== root) {
    warn(`no prebuilt addon loads under ${at} (${notes.join('; ')}); a source build compiles only ${root}`);
    return 1;
  }
  log(`no prebuilt addon loads (${notes.join('; ')}); compiling from source`);
  return sourceBuild({ requested: 'auto', source: 'default', prebuiltNote: `no prebuilt loaded (${notes.join('; ')})`, warnings, clean: true, portable: false }, env);
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: Error) => {
    console.error(`flashattn: ${err.message}`);
    process.exit(1);
  });
}
