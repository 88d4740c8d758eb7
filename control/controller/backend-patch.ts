/** PATCH of a backend: the fields given, over the stored ones; the rest as PUT does it. */
import { z } from 'zod';
import { findVip, type Limits, putBackend } from '../state/desired.js';
import { notFound } from '../state/errors.js';
import { backendSpecSchema, type StateFile, type VipKey, vipKeyText } from '../state/schema.js';

const { weight, state } = backendSpecSchema.shape;

export const backendPatchSchema = z
  .strictObject({ weight: weight.unwrap().optional(), state: state.unwrap().optional() })
  .refine((patch) => patch.weight !== undefined || patch.state !== undefined, 'give at least one of weight and state')
  .describe('Backend settings to change; the ones left out keep their value');

export type BackendPatch = z.infer<typeof backendPatchSchema>;

/** The state with `patch` over the backend at `address` of the VIP at `key`; 404 when either does not exist. */
export function patchBackend(
  stateFile: StateFile,
  key: VipKey,
  address: string,
  patch: BackendPatch,
  limits: Limits,
): { state: StateFile } {
  const vip = findVip(stateFile, key);
  if (!vip) throw notFound(`VIP ${vipKeyText(key)}`);
  const existing = vip.backends.find((b) => b.address === address);
  if (!existing) throw notFound(`backend ${address} of VIP ${vipKeyText(key)}`);
  const spec = { weight: patch.weight ?? existing.weight, state: patch.state ?? existing.state };
  return { state: putBackend(stateFile, key, address, spec, limits).state };
}
