// build-native.ts — picks and runs the addon build. Never downloads anything.
//
//   cuda: cmake-js + CMake's CUDA language  -> build-cuda/Release/flashattn.node
//   cpu:  node-gyp (no CUDA toolkit needed) -> build/Release/flashattn.node
//
// The two builds live in different folders because node-gyp deletes build/ when it starts.
// Choice: --backend cpu|cuda|auto, else FLASHATTN_BUILD, else auto (cuda when nvcc is found).
// FLASHATTN_CUDA_ARCHS (e.g. "80;90a") picks the CUDA archs; FLASHATTN_JOBS the parallelism.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';

type Backend = 'cpu' | 'cuda';

const root = resolve(__dirname, '..', '..');

function log(msg: string): void {
  console.log(`flashattn: ${msg}`);
}

/** Where nvcc is, or null. Checks CUDACXX, PATH, CUDA_HOME/CUDA_PATH, then /usr/local/cuda. */
export function findNvcc(env: NodeJS.ProcessEnv = process.env): string | null {
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

function parseBackend(argv: string[], env: NodeJS.ProcessEnv): { requested: Backend | 'auto'; source: string } {
  const i = argv.indexOf('--backend');
  const fromArg = i >= 0 ? argv[i + 1] : undefined;
  const value = fromArg ?? env.FLASHATTN_BUILD ?? 'auto';
  const source = fromArg ? '--backend' : env.FLASHATTN_BUILD ? 'FLASHATTN_BUILD' : 'default';
  if (value !== 'auto' && value !== 'cpu' && value !== 'cuda') {
    throw new Error(`${source} must be one of auto, cpu, cuda; got '${value}'`);
  }
  return { requested: value, source };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): boolean {
  log(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.error) {
    log(`could not start ${cmd}: ${r.error.message}`);
    return false;
  }
  return r.status === 0;
}

function jobs(env: NodeJS.ProcessEnv): number {
  const n = Number(env.FLASHATTN_JOBS);
  return Number.isInteger(n) && n > 0 ? n : Math.max(1, cpus().length);
}

function buildCuda(nvcc: string, env: NodeJS.ProcessEnv): boolean {
  const archs = env.FLASHATTN_CUDA_ARCHS || '80;90a';
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const childEnv = { ...env, CUDACXX: nvcc, PATH: `${dirname(nvcc)}${delimiter}${env.PATH ?? ''}` };
  return run(
    process.execPath,
    [cmakeJs, 'build', '--out', 'build-cuda', '--parallel', String(jobs(env)), `--CDFLASHATTN_CUDA_ARCHS=${archs}`],
    childEnv,
  );
}

function buildCpu(env: NodeJS.ProcessEnv): boolean {
  // node-gyp needs the running Node's own headers; point it at them so it never downloads.
  const nodedir = env.npm_config_nodedir || resolve(dirname(process.execPath), '..');
  if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
    log(`no Node.js headers under ${nodedir}/include/node; set npm_config_nodedir to a Node.js install or source tree`);
    return false;
  }
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  return run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, `--jobs=${jobs(env)}`], env);
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { requested, source } = parseBackend(argv, env);
  const nvcc = findNvcc(env);
  let backend: Backend;
  if (requested === 'auto') {
    backend = nvcc ? 'cuda' : 'cpu';
    log(nvcc ? `building the CUDA addon: found nvcc at ${nvcc} (FLASHATTN_BUILD=cpu for the CPU-only build)`
             : 'building the CPU-only addon: no nvcc found on PATH, CUDACXX, CUDA_HOME or /usr/local/cuda');
  } else {
    backend = requested;
    log(`building the ${backend === 'cuda' ? 'CUDA' : 'CPU-only'} addon (${source}=${requested})`);
  }
  const started = Date.now();
  if (backend === 'cuda') {
    if (!nvcc) {
      log('the CUDA build was requested but nvcc was not found; install the CUDA toolkit or set CUDACXX');
      return 1;
    }
    if (buildCuda(nvcc, env)) {
      log(`CUDA addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: build-cuda/Release/flashattn.node`);
      return 0;
    }
    if (requested === 'cuda') {
      log('the CUDA build failed (see the compiler output above)');
      return 1;
    }
    log('WARNING: the CUDA build failed (see above); falling back to the CPU-only build. ' +
        'Set FLASHATTN_BUILD=cuda to make this an error.');
  }
  if (buildCpu(env)) {
    log(`CPU-only addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: build/Release/flashattn.node`);
    return 0;
  }
  log('the CPU-only build failed (see the compiler output above)');
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: Error) => {
    console.error(`flashattn: ${err.message}`);
    process.exit(1);
  });
}
