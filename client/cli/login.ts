// berth login [-u USER] [-p PASS | --password-stdin] REGISTRY, berth logout REGISTRY.
// Credentials are verified against the registry before they are stored.
import { run } from './common.js';
import { loadConfig } from '../config.js';
import { removeCredentials, storeCredentials } from '../credentials.js';
import { apiHost } from '../endpoints.js';
import { Transport } from '../transport/registry-client.js';
import { DOCKER_HUB, isValidRegistryHost } from '../../oci/reference.js';

function registryArg(s: string | undefined): string {
  const host = (s ?? DOCKER_HUB).replace(/^https?:\/\//, '').replace(/\/.*$/, '').toLowerCase();
  if (!isValidRegistryHost(host)) throw new Error(`invalid registry ${JSON.stringify(s)}`);
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function prompt(question: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

export async function main(reg: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean; config?: string }): Promise<number> {
  return run('login', async () => {
      const registry = registryArg(reg);
      if (o.password && o.passwordStdin) throw new Error('--password and --password-stdin are mutually exclusive');
      if (o.passwordStdin && !o.username) throw new Error('must provide --username with --password-stdin');
      const username = o.username ?? (process.stdin.isTTY ? await prompt('Username: ') : '');
      if (!username) throw new Error('username required (-u USER)');
      let password = o.passwordStdin ? await readStdin() : o.password;
      if (password === undefined) {
        if (!process.stdin.isTTY) throw new Error('password required: use --password-stdin');
        password = await prompt('Password: ');
      }
      if (!password) throw new Error('password required');
      if (o.password) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      const creds = { username, password };
      const transport = new Transport(await loadConfig(o.config), { credentials: () => creds });
      try {
        await transport.client(apiHost(registry)).verifyLogin();
      } finally {
        await transport.close();
      }
      const path = await storeCredentials(registry, creds);
      process.stdout.write(`Login Succeeded (credentials stored in ${path})\n`);
  });
}

export async function logout(reg: string | undefined): Promise<number> {
  return run('logout', async () => {
      const registry = registryArg(reg);
      const found = await removeCredentials(registry);
      process.stdout.write(found ? `Removing login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
  });
}
