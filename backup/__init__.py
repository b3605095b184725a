"""Backups (备份) of everything SealFlow cannot re-create: the database, the key store, the CA, custody.

Why and how (the records rules ask for reliable backup and recovery of important systems and databases):

- **Logical, DB-agnostic snapshot.** Every table is read in one read-only transaction (a consistent
  snapshot on SQLite and PostgreSQL alike) and cut into *segments* of rows in primary-key order. Restore
  builds the schema with our own migrations and inserts the rows: one code path for SQLite and
  PostgreSQL, and a backup of one restores into the other.
- **Incremental by content.** A segment or a file is stored once, under a keyed digest of its plain
  bytes; a later backup stores only segments and files whose digest is new (append-only tables such as
  the audit log add one segment per backup, not a copy of the log). Each manifest lists every object it
  needs, so any single backup restores on its own.
- **Encrypted, signed, locked.** Objects are SM4-GCM encrypted under a key derived from the KEK, so a
  stolen backup is useless without the KEK — which is never in a backup (it is escrowed with the
  custodians: ``sealflow kek split``). The manifest (SM3 of every object, table row counts, schema
  revision, the time) is SM2-signed by the backup key. On S3 every object is written under Object Lock.
- The package imports only the foundation (database, files, object store) and GM crypto; the shell
  composes it with the domains for the post-restore checks (audit chain, archive index, filing).
"""
