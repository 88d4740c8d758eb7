/**
 * Via-vip probes' own route (daemon/probe-routes.ts): which VIPs xlb's table routes,
 * and the `ip` commands that add its rules, routes and neighbour entries and take them
 * away. The lab test (check-via-lab.test.ts) runs them against the kernel.
 */
import { describe, expect, test } from 'vitest';
import {
  missingRules,
  neighbourArgs,
  ownRuleRemovals,
  PROBE_TABLE,
  routeChanges,
  type RuleRow,
  viaVipAddresses,
} from '../../control/daemon/probe-routes.js';
import { storedBackend, storedVip } from '../lib/stored.js';

const TABLE = String(PROBE_TABLE);
const tcpCheck = (via: 'vip' | 'direct') => ({ type: 'tcp', via }) as const;

describe('viaVipAddresses', () => {
  test('names each VIP address with a via-vip check on a backend once, canonical and sorted', () => {
    const vips = [
      storedVip(1, '198.19.0.9', [storedBackend(0, '198.18.0.11')], { healthCheck: tcpCheck('vip') }),
      storedVip(2, '198.19.0.9', [storedBackend(0, '198.18.0.11')], { port: 443, healthCheck: tcpCheck('vip') }),
      storedVip(3, '2001:db8:f:0::1', [storedBackend(0, '2001:db8::11')], { healthCheck: tcpCheck('vip') }),
      storedVip(4, '198.19.0.2', [storedBackend(0, '198.18.0.11')], { healthCheck: tcpCheck('direct') }),
      storedVip(5, '198.19.0.3', [storedBackend(0, '198.18.0.11')]), // unchecked
      storedVip(6, '198.19.0.4', [], { healthCheck: tcpCheck('vip') }), // nothing to probe
    ];
    expect(viaVipAddresses({ version: 1, vips })).toEqual(['198.19.0.9', '2001:db8:f::1']);
  });
});

describe('rules', () => {
  const rule = (ipproto: string, extra: Partial<RuleRow> = {}): RuleRow => ({
    priority: 100,
    table: TABLE,
    ipproto,
    sport_start: 61440,
    sport_end: 65534,
    ...extra,
  });

  test('adds the tcp and udp rules of a family that lacks them, and only those', () => {
    const add = (transport: string) => ['-6', 'rule', 'add', 'ipproto', transport, 'sport', '61440-65534', 'lookup', TABLE, 'pref', '100'];
    expect(missingRules(6, [{ priority: 0, table: 'local' }])).toEqual([add('tcp'), add('udp')]);
    expect(missingRules(6, [rule('tcp')])).toEqual([add('udp')]);
    expect(missingRules(6, [rule('tcp'), rule('udp')])).toEqual([]);
    // Another preference, table or port range is not xlb's rule.
    expect(missingRules(6, [rule('tcp', { priority: 99 }), rule('udp', { table: '7' })])).toEqual([add('tcp'), add('udp')]);
    expect(missingRules(6, [rule('tcp', { sport_end: 65000 }), rule('udp')])).toEqual([add('tcp')]);
  });

  test('removes xlb’s rules and no other', () => {
    const rows = [{ priority: 0, table: 'local' }, rule('udp'), rule('tcp', { table: '7' }), { priority: 32766, table: 'main' }];
    expect(ownRuleRemovals(4, rows)).toEqual([
      ['-4', 'rule', 'del', 'ipproto', 'udp', 'sport', '61440-65534', 'lookup', TABLE, 'pref', '100'],
    ]);
  });
});

describe('routes and neighbours', () => {
  test('adds the wanted routes to the fake next hop, removes the others', () => {
    expect(routeChanges(['198.19.0.1', '2001:db8:f::1'], ['198.19.0.1', '198.19.0.2', '2001:db8:f::2'], 'eth0')).toEqual([
      ['-4', 'route', 'replace', '198.19.0.2/32', 'via', '169.254.120.108', 'dev', 'eth0', 'onlink', 'table', TABLE],
      ['-6', 'route', 'replace', '2001:db8:f::2/128', 'via', 'fe80::786c:62', 'dev', 'eth0', 'table', TABLE],
      ['-6', 'route', 'del', '2001:db8:f::1/128', 'via', 'fe80::786c:62', 'dev', 'eth0', 'table', TABLE],
    ]);
    expect(routeChanges(['198.19.0.1'], ['198.19.0.1'], 'eth0')).toEqual([]);
  });

  test("the fake next hop's permanent neighbour entry", () => {
    expect(neighbourArgs(4, 'eth0', '02:00:00:00:00:01')).toEqual([
      '-4',
      'neigh',
      'replace',
      '169.254.120.108',
      'lladdr',
      '02:00:00:00:00:01',
      'dev',
      'eth0',
      'nud',
      'permanent',
    ]);
  });
});
