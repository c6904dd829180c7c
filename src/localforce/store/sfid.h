/*
 * sfid: Salesforce record IDs.
 *
 * A 15-character ID is a 3-character key prefix (the object), a 2-character
 * pod, and a 10-character base-62 sequence. The 18-character form appends a
 * 3-character checksum that encodes which of the first 15 characters are
 * upper case, making the ID safe for case-insensitive systems.
 */
#ifndef SFID_H
#define SFID_H

#include <stdbool.h>
#include <stdint.h>

#define SFID_POD "0K" /* localforce's instance/pod characters */

/* The 3-character checksum of a 15-character ID into out[3] (not NUL-terminated). */
void sfid_checksum(const char *id15, char out[3]);
/* Build an 18-character ID from a key prefix and a sequence number. out has 19 bytes. */
void sfid_make(const char prefix[3], uint64_t seq, char out[19]);
/* Normalise a 15- or 18-character ID to 18 characters. For 18-character input the
 * checksum must match (case is restored from it, as Salesforce does).
 * Returns 0 and fills out[19], or -1 if s is not a well-formed ID. */
int sfid_normalize(const char *s, char out[19]);
/* The sequence number encoded in an ID (after normalisation), or -1. */
int64_t sfid_seq(const char *id18);
/* Does the (normalised) ID start with this key prefix? */
bool sfid_has_prefix(const char *id18, const char prefix[3]);

#endif
