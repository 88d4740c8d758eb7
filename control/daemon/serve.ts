/**
 * `xlb serve`: opens the data plane (adopting pinned maps), restores the state
 * file, applies it, attaches the balancer (atomically replacing a previous daemon's
 * program) and serves the API. Stopping the daemon — gracefully or not — leaves the
 * program attached and the maps pinned, so forwarding never stops; the next daemon
 * adopts them. `xlb down` is what detaches.
 */
import { ifNameToIndex } from '@xlb/native';
import { pino } from 'pino';
import { buildApp, loggerOptions } from '../api/app.js';
import { BirdSpeaker } from '../bgp/bird.js';
import { MiB, readRegularFile } from '../files.js';
import { VERSION } from '../paths.js';
import { readTokenFile } from '../token-file.js';
import { parseMac } from '../net/address.js';
import { isLoopback } from '../net/endpoint.js';
import { PROGRAMS } from '../dataplane/codec.js';
import { attachedProgramName, detachOwnProgram, detachProbeProgram } from '../dataplane/attach.js';
import { Dataplane } from '../dataplane/dataplane.js';
import { BALANCER_PINS, checkBpffs, PinDirectoryStart, replacesConnectionTable } from '../dataplane/pins.js';
import { HealthMonitor } from '../health/checker.js';
import { EtcdStateStore } from '../state/etcd-store.js';
import { FileStateStore } from '../state/file-store.js';
import { checkSocketPath, listenUnix } from './api-socket.js';
import { Controller } from '../controller/controller.js';
import type { XlbEvent } from '../controller/views.js';
import { gatewayMac, HostAddressBook, NeighbourTable } from './host.js';
import { interfaceWarnings } from './interface-checks.js';
import { InternalErrors } from '../controller/internal-errors.js';
import { LinkWatch } from './link-watch.js';
import { reserveProbePorts } from './probe-ports.js';
import { ProbeRoutes, viaVipAddresses } from './probe-routes.js';
import { interfaceSources, SourceFollower } from './source-follow.js';
import { startFlowClock } from './flow-clock.js';
import { daemonResources, lockResources, pinDirResources, primaryInterfaceName } from './lock.js';
import type { ServeOptions } from './options.js';

export interface RunningDaemon {
  controller: Controller;
  errors: InternalErrors;
  /** Stops the daemon; `reason` (e.g. the signal) goes into the shutdown event. */
  close(reason?: string): Promise<void>;
}

export async function serve(options: ServeOptions): Promise<RunningDaemon> {
  if (!isLoopback(options.api) && !options.tokenFile) {
    throw new Error('--api listens beyond loopback: give --token-file so requests need a bearer token');
  }
  const token = options.tokenFile ? readTokenFile(options.tokenFile, { private: true }) : undefined;
  options = { ...options, iface: primaryInterfaceName(options.iface) }; // fails early, naming the interface
  checkBpffs(options.bpffs);
  if (options.api.kind === 'unix') checkSocketPath(options.api.path);
  // Before the state is read or a pin touched: what is read and written is this daemon's alone.
  const locks = lockResources(daemonResources({ ...options, state: options.store ? undefined : options.state }), 'xlb serve');
  let removeSocket = () => {};
  let pins: PinDirectoryStart | undefined;
  let opened: Dataplane | undefined;
  /** The program on the interface before this start attached its own (null: none). */
  let attachedBefore: string | null | undefined;
  const limits = { maxVips: options.maxVips, maxBackends: options.maxBackends };
  const store = options.store ? new EtcdStateStore(options.store, limits) : new FileStateStore(options.state, limits);
  let link: LinkWatch | undefined;
  let flowClock: { close(): void } | undefined;
  try {
    // Loading checks the schemas and every cross-record rule, before any map is opened.
    const initial = await store.load();
    const host = await HostAddressBook.open();

    pins = PinDirectoryStart.begin(options.bpffs);
    // The directory exists now: own it by its identity too, so a bind mount of it is refused.
    locks.add(pinDirResources(options.bpffs));
    const dp = (opened = Dataplane.open({
      pinDir: options.bpffs,
      ringSize: options.ringSize,
      maxVips: options.maxVips,
      maxBackends: options.maxBackends,
      maxFlows: options.maxFlows,
    }));
    const log = pino({ level: options.logLevel });
    const errors = new InternalErrors(log);
    // A source not given is the interface's, which the follower picks and keeps following.
    const followed = { address: Buffer.alloc(16), flowBits: 0 };
    const sourceV4 = options.sourceV4 ?? followed;
    const sourceV6 = options.sourceV6 ?? followed;
    const config = {
      hashSeed: options.hashSeed,
      mtu: options.mtu,
      gatewayMac: options.gatewayMac
        ? parseMac(options.gatewayMac)
        : ((await gatewayMac(options.iface, (error, context) => errors.record('host', error, context))) ?? Buffer.alloc(6)),
      sourceV4: sourceV4.address,
      sourceV6: sourceV6.address,
      sourceV4FlowBits: sourceV4.flowBits,
      sourceV6FlowBits: sourceV6.flowBits,
      flowIdleTimeout: options.flowIdleTimeout,
    };
    const given = { v4: options.sourceV4 !== undefined, v6: options.sourceV6 !== undefined };
    const sources = new SourceFollower({ iface: options.iface, given, config, dp });
    dp.setConfig(sources.config);
    flowClock = startFlowClock(dp, (error) => errors.record('dataplane', error, { op: 'tick the connection-table clock' }));

    const hostWarnings = [...(await interfaceWarnings(options.iface)), ...reserveProbePorts()];
    for (const warning of [...hostWarnings, ...sources.warnings()]) log.warn(warning);
    const health = new HealthMonitor((error, check) => errors.record('health', error, { check }));
    health.verifySentBy((key) => dp.probeSentAt(key));
    const controller = new Controller(
      {
        dp,
        store,
        limits,
        health,
        errors,
        warnings: () => [...hostWarnings, ...sources.warnings(), ...health.busyPorts.warnings()],
        host,
        log,
        neighbours: new NeighbourTable(options.iface),
        info: { version: VERSION, iface: options.iface, xdpMode: options.xdpMode },
        probeOrigin: sources.origin,
        floodThreshold: options.floodThreshold,
      },
      initial,
    );
    // The host may have changed since the state was accepted: reported, not refused (a refusal would crash-loop a restarting daemon).
    for (const conflict of controller.hostConflicts()) log.warn(conflict, 'a stored record conflicts with this host; applied as it is');
    const probeRoutes = new ProbeRoutes(options.iface, (error) => errors.record('host', error, { op: 'route via-vip probes' }));
    await probeRoutes.sync(viaVipAddresses(initial.state));
    controller.on('applied', () => void probeRoutes.sync(viaVipAddresses(controller.snapshot())));
    await controller.start();
    const adopted = BALANCER_PINS.filter((name) => pins?.before.has(name) && !dp.replacedPins.includes(name));
    controller.publish({
      type: 'start',
      version: VERSION,
      iface: options.iface,
      store: store.description,
      vips: initial.state.vips.length,
      backends: initial.state.vips.reduce((sum, vip) => sum + vip.backends.length, 0),
      pins: { adopted, created: BALANCER_PINS.filter((name) => !adopted.includes(name)) },
    });
    attachedBefore = attachedProgramName(options.iface, options.xdpMode);
    dp.attach(options.iface, options.xdpMode);
    link = new LinkWatch({
      iface: options.iface,
      mode: options.xdpMode,
      program: dp.program,
      probeProgram: dp.probeProgram,
      ifindex: ifNameToIndex(options.iface),
      report: (attached, reason) => controller.setAttached(attached, reason),
      onError: (error) => errors.record('link', error),
      onCheck: () => errors.guard('link', () => sources.check(controller)),
    });

    const bird = options.bgp ? await startBird(options, interfaceSources(options.iface)) : null;
    const announce = () => errors.guard('bgp', () => bird?.announce(controller.announceable()));
    // After the tick: link events in one tick (a probe filter found gone and put back) announce their outcome once.
    const onLink = (event: XlbEvent) => event.type === 'link' && setImmediate(announce);

    const app = await buildApp({
      controller,
      token,
      tls:
        options.tlsCert && options.tlsKey
          ? { cert: readRegularFile(options.tlsCert, '--tls-cert', MiB), key: readRegularFile(options.tlsKey, '--tls-key', MiB) }
          : undefined,
      mutationsPerMinute: options.mutationsPerMinute,
      dryRun: (frame) => dp.trace(frame),
      logger: loggerOptions(options.logLevel),
      capture: { tap: dp.captureTap(), interfaceName: options.iface },
    });
    if (dp.replacedPins.length) {
      const flows = replacesConnectionTable(dp.replacedPins)
        ? 'a new connection table: established flows re-hash once'
        : 'the connection table is kept';
      app.log.warn({ maps: dp.replacedPins }, `pinned maps of another version or size were replaced by new ones; ${flows}`);
    }
    controller.on('applied', announce);
    controller.on('event', onLink);
    announce();
    if (options.api.kind === 'unix') {
      removeSocket = await listenUnix(app, options.api.path);
    } else {
      await app.listen({ host: options.api.host, port: options.api.port });
    }

    return {
      controller,
      errors,
      async close(reason = 'stopped') {
        controller.publish({ type: 'shutdown', reason });
        link?.close();
        flowClock?.close();
        probeRoutes.close();
        await app.close();
        removeSocket();
        controller.off('applied', announce);
        controller.off('event', onLink);
        controller.stop();
        // Graceful shutdown withdraws the VIPs; BIRD stays for the next daemon.
        await bird?.announce([]);
        await store.close();
        dp.close();
        locks.release();
      },
    };
  } catch (error) {
    link?.close();
    flowClock?.close();
    // A failed start takes back what it added: a program where none ran, new pins.
    if (attachedBefore === null) {
      detachOwnProgram(options.iface, options.xdpMode, PROGRAMS.balancer);
      detachProbeProgram(options.iface);
    }
    opened?.close();
    pins?.rollback();
    await store.close();
    locks.release();
    throw error;
  }
}

async function startBird(options: ServeOptions, own: { v4: string | null; v6: string | null }): Promise<BirdSpeaker> {
  const routerId = options.bgpRouterId ?? own.v4;
  if (!routerId) throw new Error(`--bgp: ${options.iface} has no IPv4 address for a router id; give --bgp-router-id`);
  const bird = new BirdSpeaker({
    dir: options.birdDir,
    routerId,
    asn: options.bgpAsn,
    peers: options.bgpPeer,
    localV4: own.v4,
    localV6: own.v6,
  });
  await bird.start();
  return bird;
}
