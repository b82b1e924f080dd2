// HTTPS: the certificate and key are re-read when either file changes (a renewed certificate takes
// effect without a restart), and `--tls-self-signed` makes a localhost certificate on first start.
import { createServer, type Server } from 'node:https';
import type { RequestListener } from 'node:http';
import { readFile, mkdir, open, rename, access } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/** How often the certificate files are stat'ed for changes. */
const WATCH_INTERVAL_MS = 2000;

async function writePrivate(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', mode);
  await fh.writeFile(text);
  await fh.sync();
  await fh.close();
  await rename(tmp, path);
}

/** Makes a self-signed certificate for localhost, 127.0.0.1 and ::1 unless both files exist. */
export async function ensureSelfSigned(certPath: string, keyPath: string, log: Logger): Promise<boolean> {
  const exists = await Promise.all([access(certPath), access(keyPath)]).then(
    () => true,
    () => false,
  );
  if (exists) return false;
  const { generate } = await import('selfsigned');
  const notAfter = new Date(Date.now() + 365 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  await writePrivate(keyPath, pems.private, 0o600);
  await writePrivate(certPath, pems.cert, 0o644);
  log.info({ cert: certPath, notAfter: notAfter.toISOString() }, 'made a self-signed TLS certificate (clients must trust it: see docs/server.md#tls)');
  return true;
}

export async function createTlsServer(tls: { cert: string; key: string }, listener: RequestListener, log: Logger): Promise<{ server: Server; stopWatching(): void }> {
  const load = async () => {
    const [cert, key] = await Promise.all([readFile(tls.cert), readFile(tls.key)]);
    return { cert, key };
  };
  const server = createServer(await load(), listener);
  let reloading = false;
  const onChange = () => {
    if (reloading) return;
    reloading = true;
    // Both files may be replaced one after the other: wait a moment, then take them as a pair.
    setTimeout(() => {
      load()
        .then((ctx) => {
          server.setSecureContext(ctx);
          log.info({ cert: tls.cert }, 'TLS certificate reloaded');
        })
        .catch((err: Error) => log.warn({ err: err.message }, 'TLS certificate reload failed: the previous one stays in use'))
        .finally(() => (reloading = false));
    }, 200).unref();
  };
  watchFile(tls.cert, { interval: WATCH_INTERVAL_MS, persistent: false }, onChange);
  watchFile(tls.key, { interval: WATCH_INTERVAL_MS, persistent: false }, onChange);
  return {
    server,
    stopWatching() {
      unwatchFile(tls.cert, onChange);
      unwatchFile(tls.key, onChange);
    },
  };
}
