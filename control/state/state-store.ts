/**
 * Where the desired state lives: a local file (file-store.ts, the default) or etcd
 * (etcd-store.ts), shared by a fleet. Both save with compare-and-swap on a revision,
 * so a writer that raced another learns it lost and retries on the newer state; etcd
 * also reports others' writes.
 */
import type { StateFile } from './schema.js';

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
  /** Reports states that other writers saved, and what went wrong watching (the watch goes on) with what it concerned. */
  watch(onChange: (versioned: VersionedState) => void, onError: (error: unknown, context: Record<string, unknown>) => void): Promise<void>;
  close(): Promise<void>;
}
