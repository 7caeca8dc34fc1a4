// Finding the addon (src-ts/load.ts) and the install step's choice (scripts/build-native.ts):
// candidate order, the prebuilt platform packages, the install record and the load warning.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPrebuilt, cleanBuildDir, install } from '../scripts/build-native';
import {
  HOW_TO_GET_CUDA,
  INSTALL_RECORD,
  type InstallRecord,
  candidates,
  loadAddon,
  loadWarning,
  nvidiaDriverEvidence,
  packageRoot,
  platformPackages,
  readInstallRecord,
} from '../src-ts/load';

const root = join(__dirname, '..');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const addon = process.env.FLASHATTN_BINARY!;

/** A staged package: flashattn's package.json, and the tested addon as the CPU platform package. */
function stage(opts: { platform?: 'cpu' | 'cuda' } = {}): { dir: string; platformAddon?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'flashattn-install-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'flashattn', version }));
  if (!opts.platform) return { dir };
  const name = platformPackages().find((p) => p.build === opts.platform)!.name;
  const pkg = join(dir, 'node_modules', ...name.split('/'));
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, version }));
  copyFileSync(addon, join(pkg, 'flashattn.node'));
  return { dir, platformAddon: join(pkg, 'flashattn.node') };
}

describe('where the loader looks', () => {
  it('tries FLASHATTN_BINARY alone when it is set', () => {
    expect(candidates({ FLASHATTN_BINARY: '/x/flashattn.node' }, root)).toEqual([
      { origin: 'FLASHATTN_BINARY', file: '/x/flashattn.node' },
    ]);
  });

  it('tries the local builds, CUDA first, then the platform packages, CUDA first', () => {
    const c = candidates({}, root);
    expect(c.map((x) => [x.origin, x.build])).toEqual([
      ['local build', 'cuda'],
      ['local build', 'cpu'],
      ['platform package', 'cuda'],
      ['platform package', 'cpu'],
    ]);
    expect(c[0].file).toBe(join(root, 'build-cuda', 'Release', 'flashattn.node'));
    expect(c[2].package).toBe(`@flashattn/${process.platform}-${process.arch}-cuda`);
    expect(c[3].package).toBe(`@flashattn/${process.platform}-${process.arch}`);
  });

  it('keeps one build with FLASHATTN_BACKEND_BUILD', () => {
    expect(candidates({ FLASHATTN_BACKEND_BUILD: 'cpu' }, root).map((x) => x.build)).toEqual(['cpu', 'cpu']);
  });

  it('finds the package root from src-ts/ and from a staged package', () => {
    expect(packageRoot(join(root, 'src-ts'))).toBe(root);
    const { dir } = stage();
    mkdirSync(join(dir, 'dist', 'src-ts'), { recursive: true });
    expect(packageRoot(join(dir, 'dist', 'src-ts'))).toBe(dir);
  });

  it('loads an installed platform package and reads the record next to it', () => {
    const { dir, platformAddon } = stage({ platform: 'cpu' });
    const record: InstallRecord = { version, build: 'cpu', source: 'prebuilt', why: 'test', warnings: [], date: 'now' };
    writeFileSync(join(platformAddon!, '..', INSTALL_RECORD), JSON.stringify(record));
    const loaded = loadAddon<{ version: string }>({}, dir);
    expect(loaded.origin).toBe('platform package');
    expect(loaded.package).toBe(`@flashattn/${process.platform}-${process.arch}`);
    expect(loaded.file).toBe(platformAddon);
    expect(loaded.module.version).toBe(version);
    expect(loaded.record).toEqual(record);
  });

  it('passes over a platform package of another flashattn version', () => {
    const { dir } = stage({ platform: 'cpu' });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'flashattn', version: '0.0.1' }));
    expect(() => loadAddon({}, dir)).toThrow(new RegExp(`it is version ${version.replace(/\./g, '\\.')}, this flashattn is 0\\.0\\.1`));
  });

  it('says what it tried and how to fix it when nothing loads, with one package prefix', () => {
    const { dir } = stage();
    let message = '';
    try {
      loadAddon({}, dir);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^Could not load the native addon of flashattn/);
    expect(message).toMatch(/build-cuda\/Release\/flashattn\.node: not found/);
    expect(message).toMatch(/@flashattn\/\S+-cuda \(platform package\): not installed/);
    expect(message).toMatch(/Possible solutions:/);
    expect(message).not.toMatch(/^flashattn: /);
  });
});

describe('the load warning', () => {
  const cpu = { file: '/m/build/Release/flashattn.node' };

  it('names the driver and how to get the GPU build when the CPU-only build meets an NVIDIA driver', () => {
    const w = loadWarning(cpu, 'cpu', '/proc/driver/nvidia/version');
    expect(w).toContain('CPU-only build (/m/build/Release/flashattn.node)');
    expect(w).toContain('/proc/driver/nvidia/version');
    expect(w).toContain(HOW_TO_GET_CUDA);
  });

  it('is empty for the CUDA build, and for the CPU-only build without a driver', () => {
    expect(loadWarning(cpu, 'cuda', '/proc/driver/nvidia/version')).toBe('');
    expect(loadWarning(cpu, 'cpu', '')).toBe('');
  });

  it('carries the install record warnings (a CUDA build that fell back)', () => {
    const record: InstallRecord = {
      version, build: 'cpu', source: 'source', why: 'x', warnings: ['The CUDA build of flashattn failed during install'], date: 'now',
    };
    const w = loadWarning({ ...cpu, record }, 'cpu', '');
    expect(w).toMatch(/^The CUDA build of flashattn failed during install/);
    expect(w).toContain(HOW_TO_GET_CUDA);
  });

  it('finds a driver by /proc/driver/nvidia/version or a libcuda.so.1', () => {
    expect(nvidiaDriverEvidence((f) => f === '/proc/driver/nvidia/version', {})).toBe('/proc/driver/nvidia/version');
    expect(nvidiaDriverEvidence((f) => f === '/opt/drv/libcuda.so.1', { LD_LIBRARY_PATH: '/opt/drv' })).toBe('/opt/drv/libcuda.so.1');
    expect(nvidiaDriverEvidence(() => false, {})).toBe('');
  });
});

describe('npm install (the install step)', () => {
  it('uses a prebuilt platform package that loads, compiles nothing and records why', async () => {
    const { dir, platformAddon } = stage({ platform: 'cpu' });
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await install([], {}, dir)).toBe(0);
    } finally {
      log.mockRestore();
    }
    const record = readInstallRecord(platformAddon!)!;
    expect(record.source).toBe('prebuilt');
    expect(record.package).toBe(`@flashattn/${process.platform}-${process.arch}@${version}`);
    expect(record.why).toMatch(/loads on this machine, no compiler needed/);
    expect(record.why).toMatch(/-cuda is not installed/);
    expect(existsSync(join(dir, 'build'))).toBe(false);
    expect(existsSync(join(dir, 'build-cuda'))).toBe(false);
  });

  it('checks a prebuilt by loading it in a child process', () => {
    const ok = checkPrebuilt(addon, version);
    expect(ok.ok).toBe(true);
    expect(['cpu', 'cuda']).toContain(ok.build);
    expect(checkPrebuilt(addon, '9.9.9')).toMatchObject({ ok: false, problem: expect.stringMatching(/version/) });
    const { dir } = stage();
    const bogus = join(dir, 'flashattn.node');
    writeFileSync(bogus, 'not an ELF file');
    expect(checkPrebuilt(bogus, version)).toMatchObject({ ok: false, problem: expect.stringMatching(/does not load/) });
  });

  it('leaves only the .node file and its record in a build folder', () => {
    const { dir } = stage();
    const build = join(dir, 'build-cuda');
    mkdirSync(join(build, 'CMakeFiles', 'flashattn.dir'), { recursive: true });
    mkdirSync(join(build, 'Release'), { recursive: true });
    writeFileSync(join(build, 'CMakeFiles', 'flashattn.dir', 'a.o'), 'object');
    writeFileSync(join(build, 'CMakeCache.txt'), 'cache');
    writeFileSync(join(build, 'Release', 'flashattn.node'), 'addon');
    writeFileSync(join(build, 'Release', INSTALL_RECORD), '{}');
    cleanBuildDir(build);
    expect(readdirSync(build)).toEqual(['Release']);
    expect(readdirSync(join(build, 'Release')).sort()).toEqual([INSTALL_RECORD, 'flashattn.node'].sort());
    expect(readFileSync(join(build, 'Release', 'flashattn.node'), 'utf8')).toBe('addon');
  });
});
