import type { Platform } from '../../oci/platform.js';
import { normalizePlatform } from '../../oci/platform.js';

/**
 * The build arguments BuildKit predefines. Platform args live in the global scope (usable in FROM
 * lines; a stage sees one only after `ARG NAME` without a value). Proxy args need no ARG at all:
 * passed as build args they reach RUN's environment, and they are left out of the image history.
 */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

export const PLATFORM_ARGS: readonly string[] = [
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETARCH',
  'TARGETVARIANT',
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDARCH',
  'BUILDVARIANT',
];

/**
 * TARGET_* and BUILD_* values. The format follows containerd's (which BuildKit uses): arm64's default
 * variant v8 is not spelt out, so an arm64 build sees TARGETPLATFORM=linux/arm64, TARGETVARIANT="".
 */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  const out = new Map<string, string>();
  for (const [prefix, p] of [
    ['TARGET', target],
    ['BUILD', build],
  ] as const) {
    const n = normalizePlatform(p);
    const variant = n.architecture === 'arm64' && n.variant === 'v8' ? '' : (n.variant ?? '');
    out.set(`${prefix}PLATFORM`, [n.os, n.architecture, variant].filter((s) => s !== '').join('/'));
    out.set(`${prefix}OS`, n.os);
    out.set(`${prefix}ARCH`, n.architecture);
    out.set(`${prefix}VARIANT`, variant);
  }
  return out;
}
