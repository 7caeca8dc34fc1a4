// The published type declarations, as a consumer's compiler sees them.
//
// The declarations of the current sources are emitted into a temporary package (with this
// package.json, so its exports map is the one resolved), and the consumer files next to this test
// are compiled with `tsc --strict --noEmit` under several tsconfigs: TypeScript's defaults,
// `types: []` without the esnext.disposable lib, Node's types with that lib, ESM and bundler
// resolution. consumer.ts holds the dtype assertions and the @ts-expect-error lines;
// wrong-dtype.ts must fail.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
let work: string;

function run(args: string[], cwd: string): { code: number; out: string } {
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Compiles `files` in the consumer folder with these compiler options (strict, no emit). */
function compile(files: string[], options: Record<string, unknown>): { code: number; out: string } {
  const consumer = join(work, 'consumer');
  const config = join(consumer, 'tsconfig.json');
  writeFileSync(config, JSON.stringify({ compilerOptions: { strict: true, noEmit: true, ...options }, files }, null, 2));
  return run(['-p', config], consumer);
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'flashattn-types-'));
  const pkg = join(work, 'consumer', 'node_modules', 'flashattn');
  mkdirSync(pkg, { recursive: true });
  const emit = run(
    ['-p', join(root, 'tsconfig.json'), '--emitDeclarationOnly', '--declarationMap', 'false', '--sourceMap', 'false',
      '--outDir', join(pkg, 'dist')],
    root,
  );
  if (emit.code !== 0) throw new Error(`emitting the declarations failed:\n${emit.out}`);
  copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
  // Node's types, for the configuration that asks for them.
  symlinkSync(join(root, 'node_modules', '@types'), join(work, 'consumer', 'node_modules', '@types'), 'dir');
  for (const f of ['consumer.ts', 'consumer.mts', 'wrong-dtype.ts']) copyFileSync(join(__dirname, f), join(work, 'consumer', f));
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const CONFIGS: Array<[string, Record<string, unknown>]> = [
  ["TypeScript's defaults, node16 resolution", { module: 'node16' }],
  ['types: [] and lib es2022 (no esnext.disposable)', { module: 'node16', types: [], lib: ['es2022'] }],
  ["Node's types with lib esnext.disposable", { module: 'node16', types: ['node'], lib: ['es2022', 'esnext.disposable'] }],
  ['bundler resolution, types: []', { module: 'esnext', moduleResolution: 'bundler', types: [], lib: ['es2023'] }],
];

describe('the published types', () => {
  it('declare no Node.js types (no NodeJS namespace) in what the package entry reaches', () => {
    const dts = run(['-p', join(root, 'tsconfig.json'), '--listEmittedFiles', '--emitDeclarationOnly', '--declarationMap', 'false',
      '--sourceMap', 'false', '--outDir', join(work, 'list')], root);
    const files = [...dts.out.matchAll(/TSFILE: (.*src-ts.*\.d\.m?ts)/g)].map((m) => m[1]);
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) expect(`${f}: ${readFileSync(f, 'utf8')}`).not.toMatch(/NodeJS\./);
  }, 120_000);

  it.each(CONFIGS)('compile a CommonJS consumer under --strict: %s', (_name, options) => {
    const r = compile(['consumer.ts'], options);
    if (r.code !== 0) throw new Error(`tsc failed:\n${r.out}`);
  }, 120_000);

  it.each(CONFIGS.filter(([, o]) => o.module === 'node16'))('compile an ES module consumer under --strict: %s', (_name, options) => {
    const r = compile(['consumer.mts'], options);
    if (r.code !== 0) throw new Error(`tsc failed:\n${r.out}`);
  }, 120_000);

  it('reject a wrong typed array at compile time', () => {
    const r = compile(['wrong-dtype.ts'], { module: 'node16', types: [] });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/wrong-dtype\.ts\(5,\d+\): error TS2769: No overload matches this call/);
    expect(r.out).toMatch(/Float64Array/);
  }, 120_000);
});
