// The shape of the npm package: the lock entries of the prebuilt platform packages, the tarball's
// contents, the exports map, and the names the package entry exports.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../src-ts/index';

const root = join(__dirname, '..');
const json = <T>(file: string): T => JSON.parse(readFileSync(join(root, file), 'utf8')) as T;

interface Pkg {
  version: string;
  optionalDependencies: Record<string, string>;
  exports: Record<string, unknown>;
  files: string[];
  os: string[];
  cpu: string[];
  repository: unknown;
  homepage: string;
  keywords: string[];
}
const pkg = json<Pkg>('package.json');

describe('the prebuilt platform packages', () => {
  const templates = readdirSync(join(root, 'npm')).map((d) => ({ dir: d, ...json<{ name: string; os: string[]; cpu: string[]; libc?: string[] }>(`npm/${d}/package.json`) }));

  it('are optional dependencies pinned to this version, one per npm/<platform> template', () => {
    expect(Object.keys(pkg.optionalDependencies).sort()).toEqual(templates.map((t) => t.name).sort());
    for (const v of Object.values(pkg.optionalDependencies)) expect(v).toBe(pkg.version);
    for (const t of templates) {
      expect(t.name).toBe(`@flashattn/${t.dir}`);
      expect(t.os).toEqual(['linux']);
      expect(t.cpu).toEqual(['x64']);
      expect(t.libc).toEqual(['glibc']);
    }
  });

  it('have optional entries in package-lock.json, so `npm ci` accepts the lock while they are unpublished', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { expected } = require('../scripts/lock-prebuilt.js') as { expected: () => Record<string, Record<string, unknown>> };
    const lock = json<{ packages: Record<string, Record<string, unknown>> }>('package-lock.json');
    const want = expected();
    expect(Object.keys(want).length).toBe(templates.length);
    for (const [key, entry] of Object.entries(want)) {
      if (!lock.packages[key]) throw new Error(`package-lock.json has no ${key}; run \`node scripts/lock-prebuilt.js\``);
      expect(lock.packages[key]).toMatchObject(entry);
    }
    expect(lock.packages['']).toMatchObject({ optionalDependencies: pkg.optionalDependencies });
  });
});

describe('package.json', () => {
  it('has an exports map whose targets exist after a build', () => {
    expect(pkg.exports).toEqual({
      '.': {
        import: { types: './dist/src-ts/index.d.mts', default: './dist/src-ts/index.mjs' },
        require: { types: './dist/src-ts/index.d.ts', default: './dist/src-ts/index.js' },
      },
      './package.json': './package.json',
    });
    for (const f of ['dist/src-ts/index.d.mts', 'dist/src-ts/index.mjs', 'dist/src-ts/index.d.ts', 'dist/src-ts/index.js']) {
      expect(existsSync(join(root, f))).toBe(true);
    }
  });

  it('has the registry metadata', () => {
    expect(pkg.repository).toBeDefined();
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.keywords.length).toBeGreaterThan(3);
    expect(pkg.os).toContain('linux');
    expect(pkg.cpu).toContain('x64');
  });

  it('packs what a user needs and no dev-only files', () => {
    const npm = process.env.npm_execpath;
    const r = spawnSync(npm ? process.execPath : 'npm', [...(npm ? [npm] : []), 'pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const files = (JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
    for (const need of ['dist/src-ts/index.js', 'dist/src-ts/index.mjs', 'dist/src-ts/index.d.ts', 'dist/src-ts/index.d.mts',
      'dist/src-ts/cli.js', 'dist/scripts/build-native.js', 'scripts/install.js', 'scripts/torch_bench.py', 'CMakeLists.txt',
      'binding.gyp', 'README.md', 'package.json']) {
      expect(files).toContain(need);
    }
    expect(files.some((f) => f.startsWith('native/cpu/'))).toBe(true);
    expect(files.some((f) => f.startsWith('cuda/') && f.endsWith('.cu'))).toBe(true);
    const devOnly = files.filter((f) =>
      /^(test|docs|npm|prebuilds|build|build-cuda|\.github|\.ci)\//.test(f) ||
      /^tsconfig.*\.json$/.test(f) || /^jest\..*/.test(f) ||
      /^scripts\/.*\.ts$/.test(f) || /^scripts\/(prebuild|lock-prebuilt)\.js$/.test(f) ||
      (/^dist\/scripts\//.test(f) && !/^dist\/scripts\/build-native\./.test(f)) ||
      /^(cuda\/dev|native\/cpu\/dev)\//.test(f));
    expect(devOnly).toEqual([]);
  }, 120_000);
});

describe('the package entry', () => {
  it('exports the public API and no internals', () => {
    const names = Object.keys(api).sort();
    expect(names).toEqual([
      'DeviceTensor', 'ERROR_CODES', 'FLOAT8_E4M3_MAX', 'FlashAttentionError', 'Stream', 'bfloat16Bits', 'bfloat16Value',
      'flashAttention', 'flashAttentionBackward', 'flashAttentionVarlen', 'flashAttentionVarlenBackward', 'flashAttentionWithKVCache', 'float16Bits', 'float16Value', 'float8E4M3Bits', 'float8E4M3Value',
      'fromBfloat16', 'fromFloat16', 'fromFloat32', 'fromFloat8E4M3', 'isFlashAttentionError', 'probe', 'quantizeFp8',
      'tensor', 'toBfloat16', 'toFloat16', 'toFloat32', 'toFloat8E4M3',
    ]);
  });

  it('gives the same names to `import` as to `require`', () => {
    const script = `import * as ns from ${JSON.stringify(join(root, 'dist', 'src-ts', 'index.mjs'))};
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)(${JSON.stringify(join(root, 'dist', 'src-ts', 'index.js'))});
      console.log(JSON.stringify({ esm: Object.keys(ns).filter((k) => k !== 'default' && k !== '__esModule').sort(), cjs: Object.keys(cjs).sort(),
        same: ns.flashAttention === cjs.flashAttention && ns.default === cjs }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env } });
    if (r.status !== 0) throw new Error(r.stderr);
    const { esm, cjs, same } = JSON.parse(r.stdout) as { esm: string[]; cjs: string[]; same: boolean };
    expect(esm).toEqual(cjs);
    expect(same).toBe(true);
  });

  it('rejects an explicit null options argument', async () => {
    const q = api.tensor(new Float32Array(8), [1, 2, 1, 4]);
    await expect(api.flashAttention(q, q, q, null as never)).rejects.toMatchObject({
      code: 'E_ARG',
      message: expect.stringMatching(/options must be an object; got null/),
    });
  });
});
