// The typed native contract (src-ts/binding.ts) and the addon agree, and probe() reports what the
// loaded build is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATIVE_EXPORTS, binding, bindingPath } from '../src-ts/binding';
import { probe } from '../src-ts/index';

const build = process.env.FLASHATTN_TEST_BUILD ?? '';

describe(`native binding (${build})`, () => {
  it('exports exactly the names NativeBinding declares', () => {
    expect(Object.keys(binding()).sort()).toEqual([...NATIVE_EXPORTS].sort());
  });

  it('has the exports typed as functions / a constructor / a string', () => {
    const b = binding();
    expect(typeof b.version).toBe('string');
    for (const fn of ['probe', 'select', 'forward', 'backward', 'bench', 'DeviceBuffer'] as const) {
      expect(typeof b[fn]).toBe('function');
    }
  });

  it('reports the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(binding().version).toBe(pkg.version);
  });

  it('is loaded from the build this project tests', () => {
    binding();
    expect(bindingPath()).toBe(process.env.FLASHATTN_BINARY);
  });
});

describe('probe()', () => {
  const report = probe();

  it('says which build is loaded', () => {
    expect(report.build).toBe(build.startsWith('cuda') ? 'cuda' : 'cpu');
    expect(report.addonPath).toBe(process.env.FLASHATTN_BINARY);
    expect(report.version).toBe(binding().version);
  });

  it('has the documented shape', () => {
    expect(Array.isArray(report.compiledArchs)).toBe(true);
    expect(Number.isInteger(report.cudaRuntimeVersion)).toBe(true);
    expect(Number.isInteger(report.cudaDriverVersion)).toBe(true);
    expect(typeof report.cudaError).toBe('string');
    expect(Array.isArray(report.devices)).toBe(true);
    expect(Number.isInteger(report.cpuThreads)).toBe(true);
    expect(report.cpuThreads).toBeGreaterThanOrEqual(1);
    for (const d of report.devices) {
      expect(typeof d.name).toBe('string');
      expect(d.capability).toHaveLength(2);
      expect(d.smCount).toBeGreaterThan(0);
      expect(d.totalMemory).toBeGreaterThan(0);
      expect(Array.isArray(d.paths)).toBe(true);
    }
  });

  it('explains itself when there is no device, and compiles no archs in the CPU build', () => {
    if (report.devices.length === 0) expect(report.cudaError.length).toBeGreaterThan(0);
    else expect(report.cudaError).toBe('');
    if (report.build === 'cpu') {
      expect(report.compiledArchs).toEqual([]);
      expect(report.devices).toEqual([]);
    } else {
      expect(report.compiledArchs.length).toBeGreaterThan(0);
    }
  });

  it('returns a fresh copy each call', () => {
    const a = probe();
    a.devices.push({} as never);
    expect(probe().devices.length).toBe(report.devices.length);
  });
});
