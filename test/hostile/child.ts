// child.ts — runs a hostile case in its own Node process, so that a crash (SIGSEGV, abort) fails
// the test instead of taking jest down. The child loads the TypeScript sources (transpiled on the
// fly, like test/fixtures/attention-worker.js) against the addon build this jest project tests.
import { spawn } from 'child_process';
import { join } from 'path';

const ROOT = join(__dirname, '..', '..');
const MARK = '@@RESULT ';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** What the script passed to report(), parsed; undefined if it never reported. */
  result: unknown;
}

/** Registers the .ts loader; `fa` is the package, `report(value)` hands a JSON result back. */
export const PRELUDE = `
'use strict';
const fs = require('fs');
const ts = require(${JSON.stringify(require.resolve('typescript'))});
require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(outputText, filename);
};
const ROOT = ${JSON.stringify(ROOT)};
const fa = require(ROOT + '/src-ts/index.ts');
const report = (value) => process.stdout.write('\\n${MARK}' + JSON.stringify(value) + '\\n');
const errorInfo = (e) => ({
  fa: e instanceof fa.FlashAttentionError, code: e && e.code, name: e && e.name, message: String(e && e.message),
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const filled = (n, x) => new Float32Array(n).fill(x);
`;

/**
 * Runs `body` (the inside of an async function, after PRELUDE) in `node ...args -e`. Resolves when
 * the process exits, whatever the exit status (the test asserts it).
 */
export function runChild(body: string, options: { args?: string[]; timeoutMs?: number } = {}): Promise<ChildResult> {
  const script = `${PRELUDE}\n(async () => {\n${body}\n})().catch((e) => { report({ uncaught: errorInfo(e) }); process.exitCode = 3; });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.args ?? []), '-e', script], {
      cwd: ROOT,
      env: { ...process.env, FLASHATTN_BINARY: process.env.FLASHATTN_BINARY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout
        .split('\n')
        .reverse()
        .find((l) => l.startsWith(MARK));
      resolve({ code, signal, stdout, stderr, result: line ? JSON.parse(line.slice(MARK.length)) : undefined });
    });
  });
}

/** Asserts a clean exit (status 0, no signal) and returns the reported result. */
export function expectClean(r: ChildResult): unknown {
  if (r.code !== 0 || r.signal !== null) {
    throw new Error(
      `child exited with status ${r.code} signal ${r.signal}\n--- stderr ---\n${r.stderr.slice(-4000)}\n--- stdout ---\n${r.stdout.slice(-2000)}`,
    );
  }
  return r.result;
}
