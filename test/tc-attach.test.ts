/**
 * The probe program on xlb's tc egress filter: attached beside the balancer, replaced
 * in one step by the next daemon's (the filter stays one), and removed.
 */
import { afterAll, expect, test } from 'vitest';
import { ifNameToIndex, tcAttach, tcDetach, tcQuery } from '@xlb/native';
import { detachProbeProgram } from '../control/dataplane/attach.js';
import { Dataplane } from '../control/dataplane/dataplane.js';
import { inNamespace, Namespaces, nsRun } from '../scripts/lab/netns.js';

const namespaces = new Namespaces('tc');
afterAll(() => namespaces.cleanup());

test('attach, replace, query and detach the probe filter; an XDP program is refused there with the errno', () => {
  const ns = namespaces.create('lb');
  nsRun(ns, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
  nsRun(ns, 'ip', ['link', 'set', 'veth0', 'up']);
  const first = Dataplane.open({ maxFlows: 64 });
  const second = Dataplane.open({ maxFlows: 64 });
  try {
    inNamespace(ns, () => {
      const ifindex = ifNameToIndex('veth0');
      expect(tcQuery(ifindex)).toBe(0);
      first.attach('veth0', 'generic');
      expect(tcQuery(ifindex)).toBe(first.probeProgram.info.id);
      second.attach('veth0', 'generic');
      expect(tcQuery(ifindex)).toBe(second.probeProgram.info.id);
      expect(nsRun(ns, 'tc', ['filter', 'show', 'dev', 'veth0', 'egress']).match(/ handle /g)).toHaveLength(1);
      expect(detachProbeProgram('veth0')).toBe(true);
      expect(tcQuery(ifindex)).toBe(0);
      expect(detachProbeProgram('veth0')).toBe(false);
      expect(tcDetach(ifindex)).toBe(false);
      expect(() => tcAttach(ifindex, first.program)).toThrow(/bpf_tc_attach\(ifindex \d+ egress\)/);
    });
  } finally {
    first.close();
    second.close();
  }
});
