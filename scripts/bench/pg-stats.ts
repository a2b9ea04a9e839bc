import pg from 'pg';
import { withDatabase } from '../../common/db/admin.ts';

/** Cumulative counters of one database from `pg_stat_database`. */
export interface PgCounters {
  /** Committed transactions of every backend on the database, reads included. */
  xactCommit: number;
  xactRollback: number;
  /** tup_inserted + tup_updated + tup_deleted. */
  rowsWritten: number;
}

/**
 * How long after its last transaction a PostgreSQL 15 backend may still hold its counters: a busy
 * backend publishes them at most once a second, and one that goes idle within that second waits
 * PGSTAT_IDLE_INTERVAL (10 s) — measured here: 50 commits on an otherwise idle connection showed
 * up in pg_stat_database 10.0 s later. An end snapshot read sooner misses the tail of the window.
 */
export const PG_STATS_FLUSH_MS = 10_500;

/**
 * Reads `pg_stat_database` for one database over a connection of its own that is not counted:
 * it is opened on the server's `postgres` database. When that is refused, it connects to the
 * measured database itself and subtracts its own transactions (one per read).
 */
export class PgStats {
  private reads = 0;
  private readonly client: pg.Client;
  private readonly database: string;
  private readonly countsItself: boolean;

  private constructor(client: pg.Client, database: string, countsItself: boolean) {
    this.client = client;
    this.database = database;
    this.countsItself = countsItself;
  }

  static async open(databaseUrl: string): Promise<PgStats> {
    const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
    const connect = async (url: string, countsItself: boolean) => {
      const c = new pg.Client({ connectionString: url });
      try {
        await c.connect();
        // Each read sees the counters as they are now, not a snapshot cached for the transaction
        // (PostgreSQL 15+; older servers read the collector's file per transaction anyway).
        await c.query('SET stats_fetch_consistency = none').catch(() => {});
        // Publish this connection's own transactions so far before the first read.
        if (countsItself) await c.query('SELECT pg_stat_force_next_flush()');
        return new PgStats(c, database, countsItself);
      } catch (err) {
        await c.end().catch(() => {});
        throw err;
      }
    };
    try {
      return await connect(withDatabase(databaseUrl, 'postgres'), false);
    } catch {
      return await connect(databaseUrl, true);
    }
  }

  /** The counters now, or null when PostgreSQL does not answer. */
  async read(): Promise<PgCounters | null> {
    try {
      // On the measured database, flush this read's own commit at once (PostgreSQL 15+), so the
      // next read can subtract it exactly.
      const flush = this.countsItself ? 'pg_stat_force_next_flush(), ' : '';
      const { rows } = await this.client.query<Record<string, string>>(
        `SELECT ${flush}xact_commit, xact_rollback, tup_inserted + tup_updated + tup_deleted AS rows_written
           FROM pg_stat_database WHERE datname = $1`,
        [this.database],
      );
      const row = rows[0];
      if (!row) return null;
      // The reads before this one committed on the measured database and are counted in its xact_commit.
      const own = this.countsItself ? this.reads : 0;
      this.reads++;
      return {
        xactCommit: Number(row.xact_commit) - own,
        xactRollback: Number(row.xact_rollback),
        rowsWritten: Number(row.rows_written),
      };
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}
