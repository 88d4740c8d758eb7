import type { Limits } from './invariants.js';
import type { StateFile } from './schema.js';
import { readStateFile, writeStateFile } from './state-file.js';
import type { StateStore, VersionedState } from './state-store.js';

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
