import { arch as hostArch, platform as hostOs } from 'node:process';
import { InvalidInputError } from '../util/errors.js';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

const NODE_ARCH_TO_OCI: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/**
 * Brings a platform to its canonical form, the way containerd's platforms.Normalize does:
 * architecture aliases (`x86_64` → `amd64`, `aarch64` → `arm64`), `arm64` without a variant is `v8`,
 * `arm` without a variant is `v7`, and `amd64/v1` is plain `amd64`.
 */
export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  switch (architecture) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'i386':
    case 'i686':
      architecture = '386';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === undefined || variant === '8' || variant === 'v8') variant = 'v8';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined) variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  const out: Platform = { architecture, os };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

/** Parses `os/arch[/variant]` (as in `--platform linux/arm64/v8`). */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((s) => s === '')) {
    throw new InvalidInputError(`invalid platform "${spec}": expected os/arch[/variant]`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

/** Whether an image's platform satisfies the wanted one (both normalised; variant only when wanted). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  const a = normalizePlatform(have);
  const b = normalizePlatform(want);
  if (a.os !== b.os || a.architecture !== b.architecture) return false;
  if (b.variant && a.variant !== b.variant) return false;
  return true;
}

export function hostPlatform(): Platform {
  return normalizePlatform({ os: hostOs, architecture: NODE_ARCH_TO_OCI[hostArch] ?? hostArch });
}
