/**
 * `xlb serve`: opens the data plane (adopting pinned maps), restores the state
 * file, applies it, attaches the balancer (atomically replacing a previous daemon's
 * program) and serves the API. Stopping the daemon — gracefully or not — leaves the
 * program attached and the maps pinned, so forwarding never stops; the next daemon
 * adopts them. `xlb down` is what detaches.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ifNameToIndex } from '@xlb/native';
import { PROGRAMS } from '../dataplane/codec.js';
import { buildApp, loggerOptions } from '../api/app.js';
import { BirdSpeaker, stopBird } from '../bgp/bird.js';
import { VERSION } from '../paths.js';
import { parseAddress, parseMac } from '../dataplane/address.js';
import { Dataplane, detachOwnProgram } from '../dataplane/dataplane.js';
import { HealthMonitor } from '../health/checker.js';
import { validateAgainstHost } from '../state/invariants.js';
import { EtcdStateStore, FileStateStore } from '../state/stores.js';
import { Controller } from './controller.js';
import { gatewayMac, HostAddressBook, interfaceAddresses, NeighbourTable } from './host.js';
import { isLoopback, type ServeOptions } from './options.js';


export interface RunningDaemon {
  controller: Controller;
  close(): Promise<void>;
}

function readToken(path: string): string {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new Error(`token file ${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 16) throw new Error(`token file ${path}: the token must be at least 16 characters`);
  return token;
}

export async function serve(options: ServeOptions): Promise<RunningDaemon> {
  if (!isLoopback(options.api) && !options.tokenFile) {
    throw new Error('--api listens beyond loopback: give --token-file so requests need a bearer token');
  }
  const token = options.tokenFile ? readToken(options.tokenFile) : undefined;
  ifNameToIndex(options.iface); // fails early, naming the interface

  const limits = { maxVips: options.maxVips, maxBackends: options.maxBackends };
  // Loading checks the schemas and every cross-record rule; the host rules follow. Both before any map is opened.
  const store = options.store ? new EtcdStateStore(options.store, limits) : new FileStateStore(options.state, limits);
  const initial = await store.load();
  const host = await HostAddressBook.open();
  try {
    validateAgainstHost(initial.state, host.current);
  } catch (error) {
    throw new Error(`${store.description}: ${(error as Error).message}`);
  }

  mkdirSync(options.bpffs, { recursive: true, mode: 0o700 });
  const dp = Dataplane.open({ pinDir: options.bpffs, ringSize: options.ringSize, maxVips: options.maxVips, maxBackends: options.maxBackends, maxFlows: options.maxFlows });
  try {
    const own = await interfaceAddresses(options.iface);
    const sourceV4 = options.sourceV4 ?? (own.v4 ? { address: parseAddress(own.v4).bytes, flowBits: 0 } : { address: Buffer.alloc(16), flowBits: 0 });
    const sourceV6 = options.sourceV6 ?? (own.v6 ? { address: parseAddress(own.v6).bytes, flowBits: 0 } : { address: Buffer.alloc(16), flowBits: 0 });
    dp.setConfig({
      hashSeed: options.hashSeed,
      mtu: options.mtu,
      gatewayMac: options.gatewayMac ? parseMac(options.gatewayMac) : ((await gatewayMac(options.iface)) ?? Buffer.alloc(6)),
      sourceV4: sourceV4.address,
      sourceV6: sourceV6.address,
      sourceV4FlowBits: sourceV4.flowBits,
      sourceV6FlowBits: sourceV6.flowBits,
    });

    const health = new HealthMonitor();
    const controller = new Controller(
      { dp, store, limits, health, host, neighbours: new NeighbourTable(options.iface), info: { version: VERSION, iface: options.iface, xdpMode: options.xdpMode } },
      initial,
    );
    await controller.start();
    dp.attach(options.iface, options.xdpMode);
    controller.attached = true;

    const bird = options.bgp ? await startBird(options, own) : null;
    const announce = () => void bird?.announce(controller.announceable()).catch((error) => app.log.error({ err: error }, 'BGP announcement failed'));

    const app = await buildApp({
      controller,
      token,
      tls: options.tlsCert && options.tlsKey ? { cert: readFileSync(options.tlsCert), key: readFileSync(options.tlsKey) } : undefined,
      mutationsPerMinute: options.mutationsPerMinute,
      logger: loggerOptions(options.logLevel),
    });
    if (dp.replacedPins.length) {
      app.log.warn({ maps: dp.replacedPins }, 'pinned maps of another ABI version or size were replaced by new ones (a new connection table starts empty)');
    }
    controller.on('applied', announce);
    announce();
    if (options.api.kind === 'unix') {
      rmSync(options.api.path, { force: true });
      await app.listen({ path: options.api.path });
      chmodSync(options.api.path, 0o600);
    } else {
      await app.listen({ host: options.api.host, port: options.api.port });
    }

    return {
      controller,
      async close() {
        await app.close();
        controller.off('applied', announce);
        controller.stop();
        // Graceful shutdown withdraws the VIPs; BIRD stays for the next daemon.
        await bird?.announce([]);
        await store.close();
        dp.close();
      },
    };
  } catch (error) {
    dp.close();
    await store.close();
    throw error;
  }
}

async function startBird(options: ServeOptions, own: { v4: string | null; v6: string | null }): Promise<BirdSpeaker> {
  const routerId = options.bgpRouterId ?? own.v4;
  if (!routerId) throw new Error(`--bgp: ${options.iface} has no IPv4 address for a router id; give --bgp-router-id`);
  const bird = new BirdSpeaker({ dir: options.birdDir, routerId, asn: options.bgpAsn, peers: options.bgpPeer, localV4: own.v4, localV6: own.v6 });
  await bird.start();
  return bird;
}

/** `xlb down`: detaches the balancer (never another program), removes the pinned maps, stops xlb's BIRD. */
export async function down(options: { iface: string; xdpMode: 'native' | 'generic'; bpffs: string; birdDir?: string }): Promise<{ detached: boolean }> {
  if (options.birdDir && existsSync(join(options.birdDir, 'bird.ctl'))) await stopBird(options.birdDir);
  const detached = detachOwnProgram(options.iface, options.xdpMode, PROGRAMS.balancer);
  rmSync(options.bpffs, { recursive: true, force: true });
  return { detached };
}
