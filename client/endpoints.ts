// Where a reference is pulled from and pushed to: mirrors (`registry-mirrors` for docker.io,
// `registry-mirror-map` for any registry) in order, then the registry itself. Pushes go to the
// registry only, never to a mirror.
import { DOCKER_HUB, DOCKER_HUB_API_HOST, type ImageReference } from '../oci/reference.js';
import { parseMirror } from './config.js';
import type { RegistryClient, Transport } from './transport/registry-client.js';

export interface Endpoint {
  client: RegistryClient;
  mirror: boolean;
}

/** The host serving a registry's API (Docker Hub's differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

export function pullEndpoints(transport: Transport, ref: ImageReference): Endpoint[] {
  const out: Endpoint[] = [];
  for (const m of transport.config.mirrors[ref.registry] ?? []) {
    const { host, scheme } = parseMirror(m, transport.config.source);
    out.push({ client: transport.client(host, scheme), mirror: true });
  }
  out.push({ client: transport.client(apiHost(ref.registry)), mirror: false });
  return out;
}

export function pushEndpoint(transport: Transport, ref: ImageReference): RegistryClient {
  return transport.client(apiHost(ref.registry));
}
