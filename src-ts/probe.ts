// probe.ts — what the loaded addon can do: which build, the CUDA runtime/driver, and each device
// with the kernel paths it can run. The one place that decides "is there a usable GPU?".
import { type NativeBinding, type NativeProbeReport, binding, bindingPath } from './binding';
import { FlashAttentionError } from './errors';

/** One CUDA device as the addon sees it. */
export interface DeviceReport {
  /** CUDA device index (what `deviceIndex` selects). */
  index: number;
  name: string;
  /** Compute capability, e.g. [9, 0]. */
  capability: [number, number];
  smCount: number;
  /** Bytes. */
  totalMemory: number;
  /** Bytes free when probed. */
  freeMemory: number;
  /** Kernel paths this device can run, best first, e.g. ['sm90', 'sm80']. Empty: unusable. */
  paths: string[];
}

/** The device report returned by probe(). */
export interface ProbeReport {
  /** Which addon build is loaded: 'cuda' (CUDA kernels + CPU backend) or 'cpu' (CPU backend only). */
  build: 'cuda' | 'cpu';
  /** The file the addon was loaded from. */
  addonPath: string;
  /** Version of the addon. */
  version: string;
  /** CUDA archs compiled into the addon, e.g. ['sm_80', 'sm_90a']; empty in the CPU build. */
  compiledArchs: string[];
  /** e.g. 12080 for CUDA 12.8; 0 when absent. */
  cudaRuntimeVersion: number;
  cudaDriverVersion: number;
  /** Why no CUDA device is usable; '' when at least one is. */
  cudaError: string;
  devices: DeviceReport[];
  /** Threads the CPU backend uses by default. */
  cpuThreads: number;
}

/** The native module, with load failures turned into FlashAttentionError (E_INTERNAL). @internal */
export function native(): NativeBinding {
  try {
    return binding();
  } catch (err) {
    if (err instanceof FlashAttentionError) throw err;
    throw new FlashAttentionError('E_INTERNAL', (err as Error).message, { cause: err });
  }
}

/** Reports the addon build, the CUDA runtime/driver, and every CUDA device with its kernel paths. */
export function probe(): ProbeReport {
  const b = native();
  let raw: NativeProbeReport;
  try {
    raw = b.probe();
  } catch (err) {
    throw new FlashAttentionError('E_INTERNAL', `probe(): the addon's probe failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    build: raw.build,
    addonPath: bindingPath() ?? '',
    version: b.version,
    compiledArchs: [...raw.compiledArchs],
    cudaRuntimeVersion: raw.cudaRuntimeVersion,
    cudaDriverVersion: raw.cudaDriverVersion,
    cudaError: raw.cudaError,
    devices: raw.devices.map((d) => ({
      index: d.index,
      name: d.name,
      capability: [d.capability[0], d.capability[1]],
      smCount: d.smCount,
      totalMemory: d.totalMemory,
      freeMemory: d.freeMemory,
      paths: [...d.paths],
    })),
    cpuThreads: raw.cpuThreads,
  };
}

let cachedReport: ProbeReport | undefined;

/** probe(), once per process: devices do not come and go under a running process. @internal */
export function cachedProbe(): ProbeReport {
  cachedReport ??= probe();
  return cachedReport;
}

/** Formats a CUDA version number (12080 -> '12.8'). @internal */
export function cudaVersionString(v: number): string {
  if (!v) return 'none';
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** Why there is no usable GPU, in one line, or '' when device `index` is usable. @internal */
export function noGpuReason(report: ProbeReport, index = 0): string {
  if (report.build !== 'cuda') {
    return `the loaded addon (${report.addonPath || 'unknown path'}) is the CPU-only build; ` +
      'rebuild with a CUDA toolkit (FLASHATTN_BUILD=cuda npm rebuild flashattn)';
  }
  if (report.devices.length === 0) {
    return `the CUDA build found no usable device (${report.cudaError || 'no devices'}; ` +
      `driver ${cudaVersionString(report.cudaDriverVersion)}, runtime ${cudaVersionString(report.cudaRuntimeVersion)})`;
  }
  const dev = report.devices.find((d) => d.index === index);
  if (!dev) {
    return `deviceIndex ${index} does not exist; devices: ${report.devices.map((d) => `${d.index} (${d.name})`).join(', ')}`;
  }
  if (dev.paths.length === 0) {
    return `device ${index} (${dev.name}, sm_${dev.capability[0]}${dev.capability[1]}) cannot run any compiled kernel ` +
      `(compiled: ${report.compiledArchs.join(', ') || 'none'}; flashattn needs capability 8.0 or newer)`;
  }
  return '';
}
