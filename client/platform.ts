// Platforms (image-spec/image-index.md#platform-variants): the host's, parsing `--platform
// os/arch[/variant]`, and matching an index entry the way containerd's default matcher does.
import type { Platform } from '../oci/manifest.js';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le' };

export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture };
  if (architecture === 'arm64') p.variant = 'v8';
  if (architecture === 'arm') {
    const v = (process.config.variables as unknown as Record<string, unknown>).arm_version;
    p.variant = `v${typeof v === 'string' || typeof v === 'number' ? v : '7'}`;
  }
  return p;
}

export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9._-]+$/.test(x))) {
    throw new Error(`invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1] === 'x86_64' ? 'amd64' : parts[1] === 'aarch64' ? 'arm64' : parts[1]! };
  if (parts[2]) p.variant = parts[2];
  return p;
}

export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Whether an entry for `have` runs on `want`; arm64's v8 is the default variant. */
export function platformMatches(have: Pick<Platform, 'os' | 'architecture' | 'variant'>, want: Platform): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  const norm = (p: { architecture: string; variant?: string | undefined }) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : '');
  if (!want.variant) return true;
  return norm(have) === norm(want) || (have.variant === undefined && want.architecture !== 'arm');
}

/**
 * The one platform choice of the image model: the entry of an index that runs on `want`. Entries
 * without a platform or for `unknown` (attestations, image-spec/image-index.md) never match; the
 * first match wins, as in containerd's default matcher.
 */
export function choosePlatform<D extends { platform?: Platform | undefined }>(entries: readonly D[], want: Platform): D | undefined {
  return entries.find((d) => d.platform && d.platform.os !== 'unknown' && d.platform.architecture !== 'unknown' && platformMatches(d.platform, want));
}
