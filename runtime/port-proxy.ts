// Published ports: a TCP proxy from a host port to the container's address (docker-proxy's job),
// run by the container's owner (the foreground CLI or the monitor) while the container runs.
import { createConnection, createServer, type Server } from 'node:net';
import type { PortBinding } from './network.js';

export async function startPortProxies(bindings: PortBinding[], containerIp: string): Promise<() => Promise<void>> {
  const servers: Server[] = [];
  try {
    for (const b of bindings) {
      const server = createServer((client) => {
        const upstream = createConnection({ host: containerIp, port: b.containerPort });
        client.pipe(upstream).pipe(client);
        const close = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', close);
        upstream.on('error', close);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(b.hostPort, b.hostIp, () => resolve());
      });
      servers.push(server);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw new Error(`cannot publish port: ${(err as Error).message}`);
  }
  return async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  };
}
