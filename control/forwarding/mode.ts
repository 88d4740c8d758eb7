/** What a forwarding mode is to the control plane: one entry of the registry (registry.ts). */
export interface ForwardingMode {
  name: string;
  /** One phrase for the schema and the CLI help. */
  description: string;
  /** The data plane's FORWARD_* code (dataplane/codec.ts, bpf/xlb.h). */
  code: number;
  /** Why a backend whose MAC is not resolved cannot serve, or null when the mode needs no MAC. */
  unresolvedMacReason: string | null;
  /** Why a backend of this family cannot serve a VIP of that family, or null when it fits. */
  familyConflict(vipFamily: 4 | 6, backendFamily: 4 | 6, backendAddress: string): string | null;
}
