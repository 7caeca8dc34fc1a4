// Every ```js and ```ts code block of README.md runs, as printed, against the addon build this
// jest project tests (FLASHATTN_BINARY). ```sh and ```text blocks are commands and their output,
// not programs, and are not run.
//
// The package is compiled from the current sources into a temporary node_modules/flashattn (with
// this package.json, so `require('flashattn')` and `import … from 'flashattn'` resolve through the
// exports map as they do for a user). A js block with an import statement runs as an ES module,
// any other as CommonJS. A ts block is type-checked with `tsc --strict` (with Node's types, for
// console)
// against the emitted declarations, then transpiled and run as an ES module.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ts from 'typescript';
import { probe } from '../src-ts/index';

const root = join(__dirname, '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

interface Block {
  lang: 'js' | 'ts';
  line: number;
  code: string;
}

/** The js and ts fenced blocks of a markdown text, with the line each starts on. */
function codeBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const m of markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    const lang = m[1];
    if (lang !== 'js' && lang !== 'ts') continue;
    blocks.push({ lang, line: markdown.slice(0, m.index).split('\n').length, code: m[2] });
  }
  return blocks;
}

/** A block with an import statement is an ES module (top-level await needs one too). */
function isModule(code: string): boolean {
  return /^import\s/m.test(code);
}

const blocks = codeBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'flashattn-readme-'));
  const pkg = join(work, 'node_modules', 'flashattn');
  mkdirSync(pkg, { recursive: true });
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--outDir', join(pkg, 'dist')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`compiling the package failed:\n${r.stdout}${r.stderr}`);
  copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(root, 'node_modules', '@types'), join(work, 'node_modules', '@types'), 'dir');
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function run(file: string): string {
  // The environment is passed on explicitly: it carries FLASHATTN_BINARY (set by the jest setup).
  const r = spawnSync(process.execPath, [file], { cwd: work, env: { ...process.env }, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    throw new Error(`${file} exited with ${r.status ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r.stdout;
}

/** Whether this build sees a GPU a DeviceTensor can live on (then the DeviceTensor example must use it). */
function gpuUsable(): boolean {
  return probe().devices.some((d) => d.paths.length > 0);
}

describe('README.md', () => {
  it('has js and ts examples to run', () => {
    expect(blocks.filter((b) => b.lang === 'js').length).toBeGreaterThanOrEqual(2);
    expect(blocks.filter((b) => b.lang === 'ts').length).toBeGreaterThanOrEqual(1);
  });

  it.each(blocks.map((b) => [`${b.lang} block at line ${b.line}`, b] as const))('%s runs as printed', (_name, b) => {
    const base = join(work, `block-${b.line}`);
    if (b.lang === 'js') {
      const file = `${base}.${isModule(b.code) ? 'mjs' : 'cjs'}`;
      writeFileSync(file, b.code);
      const out = run(file);
      if (b.code.includes('DeviceTensor.from')) expect(out).toMatch(gpuUsable() ? /^GPU:/m : /no usable GPU; the CPU backend ran it/);
      return;
    }
    writeFileSync(`${base}.mts`, b.code);
    const config = join(work, `tsconfig-${b.line}.json`);
    writeFileSync(config, JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'node16', target: 'es2022', types: ['node'], lib: ['es2022'] },
      files: [`${base}.mts`],
    }));
    const check = spawnSync(process.execPath, [tsc, '-p', config], { cwd: work, encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`tsc --strict rejects the block:\n${check.stdout}${check.stderr}`);
    const js = ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    writeFileSync(`${base}.mjs`, js.outputText);
    run(`${base}.mjs`);
  }, 180_000);
});
