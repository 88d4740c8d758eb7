/**
 * SSH for `xlb deploy`, on ssh2: the host key must be in known_hosts (plain or hashed
 * entries) or match a pinned SHA256 fingerprint, else the connection is refused before
 * authentication. Remote commands are constant strings; anything that comes from the
 * operator travels as file contents over SFTP, never inside a command.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, type SFTPWrapper } from 'ssh2';

export type HostKeyPolicy = { knownHosts: string } | { fingerprint: string };

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
  hostKeys: HostKeyPolicy;
}

export const fingerprint = (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

/** The keys known_hosts lists for host:port (OpenSSH format; plain and hashed names). */
function knownKeys(text: string, host: string, port: number): Buffer[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const keys: Buffer[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#') || fields[0].startsWith('@')) continue;
    const [names, , key] = fields;
    if (!key) continue;
    const matches = names.split(',').some((pattern) => {
      if (pattern.startsWith('|1|')) {
        const [, , salt, hash] = pattern.split('|');
        return createHmac('sha1', Buffer.from(salt!, 'base64')).update(name).digest('base64') === hash;
      }
      return pattern === name;
    });
    if (matches) keys.push(Buffer.from(key, 'base64'));
  }
  return keys;
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {}

  static connect(target: SshTarget): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let refusal: string | null = null;
      client.on('ready', () => resolve(new SshSession(client, target)));
      client.on('error', (error) => reject(new Error(refusal ?? `ssh ${target.host}:${target.port}: ${error.message}`)));
      client.connect({
        host: target.host,
        port: target.port,
        username: target.username,
        privateKey: target.privateKey,
        readyTimeout: 15_000,
        hostVerifier: (key: Buffer) => {
          const policy = target.hostKeys;
          if ('fingerprint' in policy) {
            if (fingerprint(key) === policy.fingerprint) return true;
            refusal = `host key of ${target.host} is ${fingerprint(key)}, not the pinned ${policy.fingerprint}: deploy stopped`;
            return false;
          }
          const known = knownKeys(readFileSync(policy.knownHosts, 'utf8'), target.host, target.port);
          if (known.some((k) => k.equals(key))) return true;
          refusal = known.length
            ? `host key of ${target.host} (${fingerprint(key)}) differs from ${policy.knownHosts}: deploy stopped`
            : `host key of ${target.host} (${fingerprint(key)}) is not in ${policy.knownHosts}: deploy stopped`;
          return false;
        },
      });
    });
  }

  /** Runs a constant command; resolves with its exit code and output. */
  exec(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, stream) => {
        if (error) return reject(error);
        // Decoded once whole: a character split across chunks stays intact.
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.on('close', (code: number | null) =>
          resolve({ code: code ?? -1, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() }),
        );
      });
    });
  }

  /** Writes a remote file over SFTP (created with `mode`), making its directory first. */
  async writeFile(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
    const sftp = await this.sftp();
    try {
      await this.mkdirs(sftp, path.slice(0, path.lastIndexOf('/')));
      await new Promise<void>((resolve, reject) => {
        const stream = sftp.createWriteStream(path, { mode });
        stream.on('error', reject);
        stream.on('close', () => resolve());
        stream.end(data);
      });
      await new Promise<void>((resolve, reject) => sftp.chmod(path, mode, (error) => (error ? reject(error) : resolve())));
    } finally {
      sftp.end();
    }
  }

  close(): void {
    this.client.end();
  }

  private sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => this.client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))));
  }

  private async mkdirs(sftp: SFTPWrapper, dir: string): Promise<void> {
    let path = '';
    for (const part of dir.split('/').filter(Boolean)) {
      path += `/${part}`;
      await new Promise<void>((resolve) => sftp.mkdir(path, { mode: 0o755 }, () => resolve())); // exists: fine
    }
  }
}
