/**
 * The PEM files of --tls-cert and --tls-key, polled every --tls-watch-interval
 * ms while a server serves them: a renewed pair (rewritten in place, renamed
 * into place, or behind a swapped symlink) is applied to each such server, for
 * the connections opened from then on; those already open keep their session.
 */
import { X509Certificate } from 'node:crypto';
import { statSync, type BigIntStats } from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { readTlsFiles, type TlsPair } from './tls-files.js';
import { errorMessage } from './error-message.js';

export interface TlsPaths {
  cert: string;
  key: string;
}

/** What tells a file's versions apart: a rename or a symlink swap changes its inode, a rewrite its size or times. */
function fileVersion(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

function unreadable(err: unknown): string {
  return `unreadable (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`;
}

/** Stat'ed synchronously, like the files are read: two stats per --tls-watch-interval cost less than the promises would. */
function pairVersion(paths: TlsPaths): string {
  const versionOf = (path: string): string => {
    try {
      return fileVersion(statSync(path, { bigint: true }));
    } catch (err) {
      return unreadable(err);
    }
  };
  return `${versionOf(paths.cert)} ${versionOf(paths.key)}`;
}

export class WatchedTlsFiles {
  private pair: TlsPair;
  /** The version of the files the pair being served was read from. */
  private appliedVersion: string;
  /** The version of the files last refused, warned about once (retried at each poll until they change or go together). */
  private refusedVersion: string | undefined;
  private readonly servers = new Set<TlsServer>();
  private timer: NodeJS.Timeout | undefined;

  /** Reads the pair (an error naming the flag if it is not one); `intervalMs` 0 never polls. */
  constructor(
    private readonly paths: TlsPaths,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {
    // the version before the contents: a change in between is seen at the first poll, not missed
    this.appliedVersion = pairVersion(paths);
    this.pair = readTlsFiles(paths.cert, paths.key);
  }

  /** The certificate and key served now. */
  get current(): TlsPair {
    return this.pair;
  }

  /** Whether a poll is scheduled: never once no server is served. */
  get watching(): boolean {
    return this.timer !== undefined;
  }

  /** Applies renewed files to this server until the returned function is called; the polls run while a server is served. */
  serve(server: TlsServer): () => void {
    this.servers.add(server);
    this.schedule();
    return () => {
      this.servers.delete(server);
      if (this.servers.size > 0 || this.timer === undefined) return;
      clearTimeout(this.timer);
      this.timer = undefined;
    };
  }

  private schedule(): void {
    if (this.intervalMs === 0 || this.servers.size === 0 || this.timer !== undefined) return;
    // unref: a shutdown does not wait for the next poll
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poll();
    }, this.intervalMs).unref();
  }

  private poll(): void {
    try {
      this.reloadIfChanged();
    } catch (err) {
      this.log.warn(`TLS files: the renewed pair could not be applied (new connections keep the current certificate): ${errorMessage(err)}`);
    } finally {
      this.schedule();
    }
  }

  private reloadIfChanged(): void {
    const version = pairVersion(this.paths);
    if (version === this.appliedVersion) return;
    let pair: TlsPair;
    try {
      pair = readTlsFiles(this.paths.cert, this.paths.key);
    } catch (err) {
      if (version !== this.refusedVersion) {
        this.log.warn(`TLS files changed but not applied (new connections keep the current certificate; tried again at each check): ${errorMessage(err)}`);
      }
      this.refusedVersion = version;
      return;
    }
    this.refusedVersion = undefined;
    if (!pair.cert.equals(this.pair.cert) || !pair.key.equals(this.pair.key)) {
      // recorded as applied only once every server took it: one that threw is tried again at the next check
      for (const server of this.servers) server.setSecureContext(pair);
      this.pair = pair;
      const certificate = new X509Certificate(pair.cert);
      this.log.info({ subject: certificate.subject, validTo: certificate.validTo }, 'TLS certificate reloaded from --tls-cert: new connections get it');
    }
    this.appliedVersion = version;
  }
}
