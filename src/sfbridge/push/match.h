/*
 * match: which Salesforce record each insert whose answer was lost created,
 * when the record may have been edited in Salesforce before sfbridge looked
 * for it (so a lookup by the values sent finds nothing). Pure: no Postgres,
 * no Salesforce; the writer brings the inserts and the candidates (records
 * this user created around the attempts that nothing in Postgres names).
 *
 * The rule: an insert's score for a candidate created in its window is the
 * number of values it sent that the record still holds, provided that is
 * more than half of the values it sent (nulls aside) and one of them is of a
 * field that tells records apart (text, not a flag, number or picklist
 * value: `strong`); else 0. (One or two values in common are not enough: a
 * record someone else made as the same user, sharing a phone number, is not
 * ours.) An insert takes the candidate it scores
 * highest when that is one candidate, it scores at least 1, and no other
 * insert scores that candidate as high: the choice is mutual and unique.
 * The other inserts include every lost insert of the table the log knows
 * (competitors), not only those being settled: a record another lost insert
 * made is that insert's.
 *
 * When the user is sfbridge's alone (SFBRIDGE_DEDICATED_USER, as Salesforce
 * advises: one user per integration), every candidate was made by one of
 * the lost inserts, so elimination is sound too: a candidate inside the
 * window of only one insert still without a record is that insert's, however
 * it was edited. And which of several inserts made a candidate, the values
 * it still holds tell without the half rule (mutual and unique, with
 * a telling field among them), as does the one pairing holding the most
 * values of a small connected set of inserts and candidates (pair_by_sets).
 * These take turns with the values until nothing moves.
 *
 * What is left is judged by values alone: an insert that scores no free
 * candidate at least 1 was not created; one that does is ambiguous. With the
 * user sfbridge's alone, an insert left with a free candidate in its window
 * that a pending competitor (one whose own look has not concluded) may claim
 * waits (MATCH_WAIT; the writer bounds the wait): once that competitor takes
 * its record, the candidate may be this insert's alone. (Taking such an
 * insert for not created is a guess: if the record was its, it is sent
 * twice, and the record, left unlinked, may later go to another lost insert
 * by elimination. Treating it as ambiguous instead was tried: records of
 * sfbridge's user that no lost insert explains then made inserts that never
 * reached Salesforce FAILED.)
 */
#ifndef MATCH_H
#define MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct match_insert {
    const json_t *sent;     /* the field values the attempt sent (an object) */
    int64_t from_ms, to_ms; /* the window its record's CreatedDate must fall in */
    bool pending;           /* a competitor whose look for this window has not concluded */
} match_insert;

typedef struct match_cand {
    const json_t *rec;  /* the record as Salesforce has it now (its fields by name) */
    int64_t created_ms; /* its CreatedDate */
} match_cand;

typedef struct match_rules {
    const char *const *strong; /* fields that tell records apart (NULL-terminated; NULL: any) */
    bool sole;                 /* the user is sfbridge's alone: elimination is sound */
} match_rules;

enum { MATCH_NONE = -1, MATCH_AMBIGUOUS = -2, MATCH_WAIT = -3 };

/* The number of values of `sent` that `rec` holds (numbers compare by value,
 * datetimes by instant); 0 when that is not more than half of sent's
 * non-null values, or none of them is of a field named in `strong`
 * (NULL-terminated; NULL: any field will do). */
int match_score(const json_t *sent, const json_t *rec, const char *const *strong);

/* ins[0..nmine) are being settled, ins[nmine..ni) compete for the same
 * records. out[i] (i < nmine): the index of the candidate insert i created,
 * MATCH_NONE (not created), MATCH_AMBIGUOUS or MATCH_WAIT (look again after
 * the pending competitors' looks). No candidate is given to two inserts. */
void match_inserts(const match_insert *ins, size_t ni, size_t nmine, const match_cand *cand,
                   size_t nc, const match_rules *rules, int *out);

#endif
