// Published ports: a proxy from a host port to the container's address (docker-proxy's job), run
// by the container's owner (the foreground CLI or the monitor) while the container runs. TCP
// connections are piped; UDP is relayed per client address, as docker-proxy does: each client
// gets its own socket towards the container, so replies find their way back, and a flow quiet for
// UDP_IDLE_MS is forgotten.
import { createConnection, createServer, type Server } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import type { PortBinding } from './network.js';

const UDP_IDLE_MS = 90_000;
/** Clients relayed at once; past this the oldest flow is dropped (each holds a socket). */
const UDP_MAX_FLOWS = 1024;

type Stop = () => Promise<void>;

async function tcpProxy(b: PortBinding, containerIp: string): Promise<Stop> {
  const server: Server = createServer((client) => {
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
  return () => new Promise((r) => server.close(() => r()));
}

async function udpProxy(b: PortBinding, containerIp: string): Promise<Stop> {
  const { createSocket } = await import('node:dgram'); // only containers publishing UDP load it
  const front = createSocket('udp4');
  interface Flow {
    socket: UdpSocket;
    idle: NodeJS.Timeout;
    /** Datagrams that came before connect() completed. */
    pending: Buffer[] | undefined;
  }
  const flows = new Map<string, Flow>();
  const forget = (key: string) => {
    const f = flows.get(key);
    if (!f) return;
    flows.delete(key);
    clearTimeout(f.idle);
    f.socket.close();
  };
  front.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let flow = flows.get(key);
    if (!flow) {
      if (flows.size >= UDP_MAX_FLOWS) forget(flows.keys().next().value!);
      const socket = createSocket('udp4');
      const created: Flow = { socket, idle: setTimeout(() => forget(key), UDP_IDLE_MS).unref(), pending: [] };
      socket.on('message', (reply) => {
        front.send(reply, from.port, from.address);
        created.idle.refresh();
      });
      socket.on('error', () => forget(key));
      socket.connect(b.containerPort, containerIp, () => {
        for (const m of created.pending ?? []) socket.send(m);
        created.pending = undefined;
      });
      flows.set(key, created);
      flow = created;
    }
    flow.idle.refresh();
    if (flow.pending) flow.pending.push(msg);
    else flow.socket.send(msg);
  });
  front.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(b.hostPort, b.hostIp, () => {
      front.off('error', reject);
      resolve();
    });
  });
  return async () => {
    for (const key of [...flows.keys()]) forget(key);
    await new Promise<void>((r) => front.close(() => r()));
  };
}

export async function startPortProxies(bindings: PortBinding[], containerIp: string): Promise<Stop> {
  const stops: Stop[] = [];
  try {
    for (const b of bindings) stops.push(await (b.protocol === 'udp' ? udpProxy(b, containerIp) : tcpProxy(b, containerIp)));
  } catch (err) {
    await Promise.all(stops.map((s) => s()));
    throw new Error(`cannot publish port: ${(err as Error).message}`);
  }
  return async () => {
    await Promise.all(stops.map((s) => s()));
  };
}
