/**
 * Per-table checksums of `family___table` data tables, to compare replicas: two SoRs, or a SoR
 * and an LDB (both lay tables out the same way, see src/ledger/sql.ts).
 *
 * Rows are hashed in primary-key order with a type-tagged encoding, so two tables match exactly
 * when they hold the same rows with the same values and storage classes.
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import type { DatabaseSync } from "node:sqlite";
import { quoteIdent } from "../ledger/sql.ts";

/** One table's checksum. */
export interface TableChecksum {
  family: string;
  table: string;
  rows: number;
  /** SHA-256 hex over the rows in key order. */
  sha256: string;
}

function encodeValue(value: unknown): string {
  if (value === null || value === undefined) return "n";
  if (typeof value === "bigint") return `i${value}`;
  if (typeof value === "number") return Number.isInteger(value) ? `i${value}` : `r${value}`;
  if (value instanceof Uint8Array) return `b${Buffer.from(value).toString("base64")}`;
  return `s${JSON.stringify(value)}`;
}

/** The checksum of one data table, by its physical name. */
export function tableChecksum(db: DatabaseSync, physicalName: string): TableChecksum {
  const split = physicalName.indexOf("___");
  if (split <= 0) throw new Error(`"${physicalName}" is not a family___table name`);
  const info = db.prepare(`PRAGMA table_info(${quoteIdent(physicalName)})`).all() as {
    name: string;
    pk: number;
  }[];
  if (info.length === 0) throw new Error(`table "${physicalName}" does not exist`);
  const columns = info.map((c) => c.name).sort();
  const keys = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const order = (keys.length > 0 ? keys : columns).map(quoteIdent).join(", ");
  const stmt = db.prepare(
    `SELECT ${columns.map(quoteIdent).join(", ")} FROM ${
      quoteIdent(physicalName)
    } ORDER BY ${order}`,
  );
  stmt.setReadBigInts(true);
  const hash = createHash("sha256");
  hash.update(columns.join(",") + "\n");
  let rows = 0;
  for (const row of stmt.iterate()) {
    const r = row as Record<string, unknown>;
    hash.update(columns.map((c) => encodeValue(r[c])).join("\u0001") + "\n");
    rows++;
  }
  return {
    family: physicalName.slice(0, split),
    table: physicalName.slice(split + 3),
    rows,
    sha256: hash.digest("hex"),
  };
}

/** Checksums of every data table in `db`, sorted by family and table. */
export function tableChecksums(db: DatabaseSync): TableChecksum[] {
  const names = db.prepare(
    `SELECT name FROM sqlite_master WHERE type = 'table' AND instr(name, '___') > 1 ORDER BY name`,
  ).all() as { name: string }[];
  return names.map((n) => tableChecksum(db, n.name));
}
