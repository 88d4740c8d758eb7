/**
 * Where the desired state lives: a local file (the default) or etcd, shared by a
 * fleet. Both save with compare-and-swap on a revision, so a writer that raced another
 * learns it lost and retries on the newer state; etcd also reports others' writes.
 */
import { Etcd3, type Watcher } from 'etcd3';
import { emptyState } from './desired.js';
import type { Limits } from './invariants.js';
import type { StateFile } from './schema.js';
import { parseState, readStateFile, stateText, writeStateFile } from './store.js';

export interface VersionedState {
  state: StateFile;
  /** Opaque to callers except for ordering: a later write has a larger revision. */
  revision: bigint;
}

export interface StateStore {
  readonly description: string;
  load(): Promise<VersionedState>;
  /** Saves `next` if the stored state is still at `revision`: the new revision, or null when another writer got there first. */
  save(next: StateFile, revision: bigint): Promise<bigint | null>;
  /** Reports states that other writers saved, and what went wrong watching (the watch goes on). */
  watch(onChange: (versioned: VersionedState) => void, onError: (error: unknown) => void): Promise<void>;
  close(): Promise<void>;
}

/** The state file of one daemon: nobody else writes it, so a save never conflicts. */
export class FileStateStore implements StateStore {
  private revision = 0n;

  /** With `limits`, a state whose ids do not fit them is refused at load. */
  constructor(
    readonly path: string,
    private readonly limits?: Limits,
  ) {}

  get description(): string {
    return `state file ${this.path}`;
  }

  async load(): Promise<VersionedState> {
    return { state: readStateFile(this.path, this.limits), revision: this.revision };
  }

  async save(next: StateFile): Promise<bigint> {
    writeStateFile(this.path, next);
    return ++this.revision;
  }

  async watch(): Promise<void> {}

  async close(): Promise<void> {}
}

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

  async watch(onChange: (versioned: VersionedState) => void, onError: (error: unknown) => void): Promise<void> {
    this.watcher = await this.client.watch().key(this.key).create();
    // The etcd3 watcher reconnects by itself; an 'error' without a listener would throw.
    this.watcher.on('error', onError);
    this.watcher.on('put', (kv) => {
      try {
        onChange({ state: this.decode(kv.value.toString('utf8')), revision: BigInt(kv.mod_revision) });
      } catch (error) {
        // Not a state we understand (or applying it failed): keep serving the last good one.
        onError(error);
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
