// The certificate authorities a verified TLS connection to a registry trusts: Node's bundled
// roots plus the PEM file named by BERTH_EXTRA_CA_CERTS. The `berth` launcher (bin/berth) moves
// NODE_EXTRA_CA_CERTS there because Node 20 parses that file at every start (~35 ms for a system
// bundle); reading it here, once and only when a registry connection needs TLS, keeps Node's
// meaning of the variable (extra CAs on top of the bundled ones) without the start-up cost.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';

let cached: { secureContext?: SecureContext } | undefined;

/** Options to spread into `tls.connect` (undici's `connect`) for a verified registry connection. */
export function registryTlsOptions(): { secureContext?: SecureContext } {
  if (cached) return cached;
  const file = process.env.BERTH_EXTRA_CA_CERTS;
  if (!file) return (cached = {});
  const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  let extra: string[] = [];
  try {
    extra = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  } catch (e) {
    // Node's own wording for an unreadable NODE_EXTRA_CA_CERTS; the connection goes on without them.
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`);
  }
  // One context for every connection: passing `ca` to each connect would parse the roots each time.
  return (cached = { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, ...extra] }) });
}
