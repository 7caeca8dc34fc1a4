// load.ts — finds the compiled addon (.node file), loads it once, and says where it came from.
//
// Order: FLASHATTN_BINARY, then a local source build (build-cuda/, then build/), then the prebuilt
// platform packages (@flashattn/<platform>-<arch>-cuda, then @flashattn/<platform>-<arch>).
// `npm install` (scripts/build-native.ts) writes an install record next to the addon it chose; the
// record is what `flashattn inspect` prints, and its warnings (a CUDA build that failed and fell
// back, a prebuilt that would not load) are emitted once when the addon is first loaded.
//
// No Node.js types appear in the exported declarations: the shipped .d.ts must compile for
// consumers whose tsconfig has `types: []`.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Environment variables, as far as the loader reads them. */
type Env = Readonly<Record<string, string | undefined>>;

/** Which addon build a file holds: 'cuda' also contains the CPU backend. */
export type AddonBuild = 'cuda' | 'cpu';

/** Where an addon file was found. */
export type AddonOrigin = 'FLASHATTN_BINARY' | 'local build' | 'platform package';

/** File name of the install record, next to the addon it describes. */
export const INSTALL_RECORD = 'flashattn-install.json';

/** What `npm install` built or found, and why. Written as JSON next to the addon. */
export interface InstallRecord {
  /** flashattn version that wrote it. */
  version: string;
  build: AddonBuild;
  /** 'prebuilt': a platform package; 'source': compiled by the install script (or a build:* script). */
  source: 'prebuilt' | 'source';
  /** The platform package and its version, for prebuilt addons. */
  package?: string;
  /** One or two sentences: why this build. */
  why: string;
  /** What went wrong on the way (a failed CUDA build, a prebuilt that did not load). */
  warnings: string[];
  /** ISO date of the install. */
  date: string;
  /** The last lines of a failed CUDA build's output, when the install fell back. */
  log?: string[];
}

/** One place the loader looks. */
export interface AddonCandidate {
  origin: AddonOrigin;
  /** The .node file; undefined for a platform package that is not installed. */
  file?: string;
  /** The build this location holds, when the location says (FLASHATTN_BINARY does not). */
  build?: AddonBuild;
  /** Platform package name, for origin 'platform package'. */
  package?: string;
}

/** The loaded addon and where it came from. */
export interface LoadedAddon<T> {
  module: T;
  file: string;
  origin: AddonOrigin;
  build?: AddonBuild;
  package?: string;
  /** The install record next to the file, if there is one. */
  record?: InstallRecord;
}

/** The package root: the nearest folder above `from` whose package.json is flashattn's. It is one
 * level up from src-ts/ (ts-jest) and two from dist/src-ts/ (compiled). */
export function packageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'flashattn') return dir;
      } catch {
        /* unreadable package.json: keep looking */
      }
    }
    if (dirname(dir) === dir) return resolve(from, '..', '..');
  }
}

/** The prebuilt platform packages for this platform, best first. */
export function platformPackages(platform: string = process.platform, arch: string = process.arch): Array<{ name: string; build: AddonBuild }> {
  return [
    { name: `@flashattn/${platform}-${arch}-cuda`, build: 'cuda' },
    { name: `@flashattn/${platform}-${arch}`, build: 'cpu' },
  ];
}

/** The .node file of an installed platform package, resolved from the package root; undefined if
 * it is not installed. */
export function platformPackageAddon(name: string, root: string = packageRoot()): string | undefined {
  try {
    return join(dirname(require.resolve(`${name}/package.json`, { paths: [root] })), 'flashattn.node');
  } catch {
    return undefined;
  }
}

/** The local source builds, CUDA first. */
export function localBuilds(root: string = packageRoot()): Array<{ file: string; build: AddonBuild }> {
  return [
    { file: join(root, 'build-cuda', 'Release', 'flashattn.node'), build: 'cuda' },
    { file: join(root, 'build', 'Release', 'flashattn.node'), build: 'cpu' },
  ];
}

/** Every place the loader looks, in order. FLASHATTN_BACKEND_BUILD=cpu|cuda keeps only that build. */
export function candidates(env: Env = process.env, root: string = packageRoot()): AddonCandidate[] {
  if (env.FLASHATTN_BINARY) return [{ origin: 'FLASHATTN_BINARY', file: resolve(env.FLASHATTN_BINARY) }];
  const all: AddonCandidate[] = [
    ...localBuilds(root).map((b): AddonCandidate => ({ origin: 'local build', ...b })),
    ...platformPackages().map((p): AddonCandidate => ({
      origin: 'platform package',
      package: p.name,
      build: p.build,
      file: platformPackageAddon(p.name, root),
    })),
  ];
  const only = env.FLASHATTN_BACKEND_BUILD;
  return only === 'cpu' || only === 'cuda' ? all.filter((c) => c.build === only) : all;
}

/** Reads the install record next to an addon file; undefined when there is none. */
export function readInstallRecord(addonFile: string): InstallRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dirname(addonFile), INSTALL_RECORD), 'utf8')) as InstallRecord;
    return { ...r, warnings: Array.isArray(r.warnings) ? r.warnings : [] };
  } catch {
    return undefined;
  }
}

/** Files whose presence says an NVIDIA driver is installed. */
export function nvidiaDriverFiles(env: Env = process.env): string[] {
  const dirs = [
    ...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/nvidia/lib64',
    '/usr/lib/wsl/lib',
  ];
  return ['/proc/driver/nvidia/version', ...dirs.map((d) => join(d, 'libcuda.so.1'))];
}

/** The first file that shows an NVIDIA driver, or '' when there is none. */
export function nvidiaDriverEvidence(exists: (file: string) => boolean = existsSync, env: Env = process.env): string {
  return nvidiaDriverFiles(env).find((f) => exists(f)) ?? '';
}

/** How to get the CUDA build, for messages. */
export const HOW_TO_GET_CUDA =
  'For the GPU build, install the prebuilt CUDA addon (needs only the NVIDIA driver): ' +
  '`npm install @flashattn/linux-x64-cuda`; or build it from source with the CUDA toolkit: ' +
  '`FLASHATTN_BUILD=cuda npm rebuild flashattn`. `npx flashattn inspect` shows what is loaded.';

/**
 * The one warning to emit after loading, or '' for none: the install record's warnings, and, for
 * the CPU-only build on a machine with an NVIDIA driver, how to get the GPU build.
 * `build` is the loaded build ('cpu' | 'cuda'); `driver` what nvidiaDriverEvidence() found.
 */
export function loadWarning(loaded: { file: string; record?: InstallRecord }, build: AddonBuild, driver: string): string {
  const parts: string[] = [];
  for (const w of loaded.record?.warnings ?? []) parts.push(w);
  if (build === 'cpu' && driver) {
    parts.push(`flashattn loaded the CPU-only build (${loaded.file}), but this machine has an NVIDIA driver (${driver}); ` +
      'every call runs on the CPU.');
  }
  if (!parts.length) return '';
  if (build === 'cpu') parts.push(HOW_TO_GET_CUDA);
  return parts.join(' ');
}

function packageVersion(root: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

/** Loads the first candidate that loads; throws an Error that lists what was tried and how to fix it. */
export function loadAddon<T>(env: Env = process.env, root: string = packageRoot()): LoadedAddon<T> {
  const tried: string[] = [];
  for (const c of candidates(env, root)) {
    const where = c.origin === 'platform package' ? `${c.package} (platform package)` : c.file ?? '';
    if (!c.file) {
      tried.push(`${where}: not installed`);
      continue;
    }
    if (!existsSync(c.file)) {
      tried.push(`${c.origin === 'platform package' ? `${where}, ${c.file}` : where}: not found`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const module = require(c.file) as T;
      // A platform package left over from another flashattn version may not speak this one's requests.
      const version = (module as { version?: unknown }).version;
      if (c.origin === 'platform package' && version !== packageVersion(root)) {
        tried.push(`${where}: it is version ${String(version)}, this flashattn is ${packageVersion(root)}`);
        continue;
      }
      return { module, file: c.file, origin: c.origin, build: c.build, package: c.package, record: readInstallRecord(c.file) };
    } catch (err) {
      tried.push(`${where}: ${firstLine(err)}`);
    }
  }
  throw new Error(
    [
      `Could not load the native addon of flashattn (${process.platform}-${process.arch}, Node.js ${process.version}).`,
      'Tried:',
      ...tried.map((t) => `  - ${t}`),
      'Possible solutions:',
      ...(process.platform === 'linux' && process.arch === 'x64'
        ? ['  - Install the prebuilt addon: `npm install @flashattn/linux-x64-cuda` (CUDA; needs only the NVIDIA driver) or `npm install @flashattn/linux-x64` (CPU only).']
        : []),
      '  - Build it from source (needs a C++ compiler; the CUDA build also needs nvcc): `npm rebuild flashattn --foreground-scripts` shows the build; `FLASHATTN_BUILD=cpu` or `FLASHATTN_BUILD=cuda` picks one.',
      '  - Set FLASHATTN_BINARY to the path of a built flashattn.node.',
    ].join('\n'),
  );
}

let loaded: LoadedAddon<unknown> | undefined;
let warned = false;

/**
 * The addon, loaded once per process. After the first load it emits at most one warning
 * (loadWarning()); `buildOf` asks the module which build it is when the location does not say.
 */
export function loadedAddon<T>(buildOf: (module: T) => AddonBuild): LoadedAddon<T> {
  if (!loaded) {
    const l = loadAddon<T>();
    loaded = l;
    if (!warned) {
      warned = true;
      const driver = nvidiaDriverEvidence();
      if (driver || l.record?.warnings.length) {
        let build = l.record?.build ?? l.build;
        try {
          build ??= buildOf(l.module);
        } catch {
          /* the probe failing is reported when it is called */
        }
        const msg = build ? loadWarning(l, build, driver) : '';
        if (msg) process.emitWarning(msg, { type: 'FlashAttnWarning', code: 'FLASHATTN_BUILD' });
      }
    }
  }
  return loaded as LoadedAddon<T>;
}

/** The addon's location, once loaded (undefined before). */
export function loadedAddonInfo(): Omit<LoadedAddon<unknown>, 'module'> | undefined {
  if (!loaded) return undefined;
  const { module: _module, ...info } = loaded;
  return info;
}
