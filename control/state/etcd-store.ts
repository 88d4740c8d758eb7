import { Etcd3, type Watcher } from 'etcd3';
import { emptyState } from './desired.js';
import type { Limits } from './invariants.js';
import type { StateFile } from './schema.js';
import { parseState, stateText } from './state-file.js';
import type { StateStore, VersionedState } from './state-store.js';

/** etcd://HOST:PORT/PREFIX: the whole state as one JSON value at PREFIX/state. */
export class EtcdStateStore implements StateStore {
  private readonly client: Etcd3;
  private readonly key: string;
  private watcher: Watcher | null = null;

  /** With `limits`, a state whose ids do not fit them is refused (at load, and when another writer saves it). */
  constructor(
    readonly url: URL,
    private readonly limits?: Limits,
  ) {
    this.client = new Etcd3({ hosts: `http://${url.host}`, dialTimeout: 3000 });
    this.key = `${url.pathname.replace(/\/+$/, '') || '/xlb'}/state`;
  }

  /** Checks an etcd://HOST:PORT/PREFIX URL. */
  static parseUrl(text: string): URL {
    const url = new URL(text);
    if (url.protocol !== 'etcd:' || !url.hostname || !url.port) throw new Error('expected etcd://HOST:PORT/PREFIX');
    return url;
  }

  get description(): string {
    return `etcd ${this.url.host} key ${this.key}`;
  }

  async load(): Promise<VersionedState> {
    const response = await this.client.get(this.key).exec();
    const kv = response.kvs[0];
    if (!kv) return { state: emptyState(), revision: 0n };
    return { state: this.decode(kv.value.toString('utf8')), revision: BigInt(kv.mod_revision) };
  }

  async save(next: StateFile, revision: bigint): Promise<bigint | null> {
    const result = await this.client
      .if(this.key, 'Mod', '==', revision.toString())
      .then(this.client.put(this.key).value(stateText(next)))
      .commit();
    return result.succeeded ? BigInt(result.header.revision) : null;
  }

  async watch(
    onChange: (versioned: VersionedState) => void,
    onError: (error: unknown, context: Record<string, unknown>) => void,
  ): Promise<void> {
    this.watcher = await this.client.watch().key(this.key).create();
    // The etcd3 watcher reconnects by itself; an 'error' without a listener would throw.
    this.watcher.on('error', (error) => onError(error, { op: 'watch' }));
    this.watcher.on('put', (kv) => {
      try {
        onChange({ state: this.decode(kv.value.toString('utf8')), revision: BigInt(kv.mod_revision) });
      } catch (error) {
        // Not a state we understand (or applying it failed): keep serving the last good one.
        onError(error, { op: 'take a state another writer saved', revision: kv.mod_revision });
      }
    });
  }

  async close(): Promise<void> {
    await this.watcher?.cancel();
    this.client.close();
  }

  /** The stored value as a state, by the same rules as the state file. */
  decode(text: string): StateFile {
    return parseState(text, this.description, this.limits);
  }
}
