/*
 * locks: every Postgres advisory lock key sfbridge takes, in one place.
 *
 * The keys are two-part (class, object) so they never collide with an
 * application's single-key locks. They are string literals so SQL text can
 * be assembled at compile time: "SELECT pg_advisory_xact_lock(" LOCK_DDL ")".
 */
#ifndef LOCKS_H
#define LOCKS_H

/* Transaction lock around creating or changing sfbridge's own tables and
 * triggers in a schema (catalog, capture): concurrent `init`s wait their turn.
 * Readers of several catalog tables at once (status, the API) take it shared,
 * so they never meet that DDL halfway (a deadlock: the DDL locks the tables
 * one by one, in its own order). */
#define LOCK_DDL "4242001"

/* Session lock (class, hashtext(schema)): one process syncs a schema at a time. */
#define LOCK_WORKER "4242002"

/* (class, hashtext(table)): held by the writer while an insert's outcome is
 * unknown (sent, sfid not yet written back), taken by pulls and stream batches
 * before they apply a page, so they never insert a second row for a record
 * whose sfid is on its way. */
#define LOCK_TABLE "4242003"

#endif
