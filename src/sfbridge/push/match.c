/*
 * match: which record an insert whose answer was lost created (see match.h).
 */
#include "match.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static bool
same_number(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Does the record's value v hold what was sent (s)? */
static bool
same_value(const json_t *s, const json_t *v)
{
    if (!v || json_is_null(s))
        return false; /* nulls say nothing about which record this is */
    if (json_equal(s, v))
        return true;
    if (json_is_number(s) && json_is_number(v))
        return same_number(json_number_value(s), json_number_value(v));
    if (json_is_string(s) && json_is_number(v)) {
        char *end;
        double d = strtod(json_string_value(s), &end);
        return end != json_string_value(s) && *end == '\0' && same_number(d, json_number_value(v));
    }
    if (json_is_string(s) && json_is_string(v)) {
        /* Datetimes come back as Salesforce writes them (+0000, milliseconds). */
        const char *a = json_string_value(s), *b = json_string_value(v);
        int64_t ta, tb;
        return strlen(a) > 10 && strchr(a, 'T') && util_parse_datetime(a, &ta) == 0 &&
               util_parse_datetime(b, &tb) == 0 && ta == tb;
    }
    return false;
}

static bool
named(const char *const *strong, const char *key)
{
    if (!strong)
        return true;
    for (; *strong; strong++)
        if (strcmp(*strong, key) == 0)
            return true;
    return false;
}

int
match_score(const json_t *sent, const json_t *rec, const char *const *strong)
{
    int n = 0, of = 0;
    bool told = false;
    const char *key;
    json_t *s;
    json_object_foreach((json_t *)sent, key, s) {
        if (strcmp(key, "attributes") == 0 || strcasecmp(key, "id") == 0 || json_is_null(s))
            continue;
        of++;
        if (same_value(s, json_object_get(rec, key))) {
            n++;
            told = told || named(strong, key);
        }
    }
    return told && 2 * n > of ? n : 0;
}

/* -1 when c was created outside in's window. */
static int
score_of(const match_insert *in, const match_cand *c, const char *const *strong)
{
    bool inside = c->created_ms >= in->from_ms && c->created_ms <= in->to_ms;
    return inside ? match_score(in->sent, c->rec, strong) : -1;
}

/* Rounds: every insert whose unique best free candidate returns the choice
 * takes it; taken candidates leave, which may settle others. */
static void
pair_up(const int *score, size_t ni, size_t nc, bool *taken, int *out)
{
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t i = 0; i < ni; i++) {
            if (out[i] >= 0)
                continue;
            int best = 0, ties = 0;
            size_t bc = 0;
            for (size_t c = 0; c < nc; c++) {
                int s = taken[c] ? -1 : score[i * nc + c];
                if (s > best)
                    best = s, bc = c, ties = 1;
                else if (s == best && s > 0)
                    ties++;
            }
            if (best < 1 || ties != 1)
                continue;
            bool mutual = true;
            for (size_t j = 0; j < ni && mutual; j++)
                mutual = j == i || out[j] >= 0 || score[j * nc + bc] < best;
            if (mutual) {
                out[i] = (int)bc;
                taken[bc] = true;
                progress = true;
            }
        }
    }
    for (size_t i = 0; i < ni; i++) {
        if (out[i] >= 0)
            continue;
        for (size_t c = 0; c < nc; c++)
            if (!taken[c] && score[i * nc + c] >= 1)
                out[i] = MATCH_AMBIGUOUS;
    }
}

void
match_inserts(const match_insert *ins, size_t ni, size_t nmine, const match_cand *cand, size_t nc,
              const char *const *strong, int *out)
{
    /* Only the candidates one of ours scores matter (to ours and to their
     * competitors): the matrix is ni x those (kept[k] = a caller's index). */
    size_t *kept = xcalloc(nc + 1, sizeof *kept), nk = 0;
    for (size_t c = 0; c < nc; c++) {
        bool any = false;
        for (size_t i = 0; i < nmine && !any; i++)
            any = score_of(&ins[i], &cand[c], strong) > 0;
        if (any)
            kept[nk++] = c;
    }
    int *score = xcalloc(ni * nk + 1, sizeof *score);
    int *got = xcalloc(ni + 1, sizeof *got);
    bool *taken = xcalloc(nk + 1, sizeof *taken);
    for (size_t i = 0; i < ni; i++) {
        got[i] = MATCH_NONE;
        for (size_t k = 0; k < nk; k++)
            score[i * nk + k] = score_of(&ins[i], &cand[kept[k]], strong);
    }
    pair_up(score, ni, nk, taken, got);
    for (size_t i = 0; i < nmine; i++)
        out[i] = got[i] >= 0 ? (int)kept[got[i]] : got[i];
    free(kept);
    free(score);
    free(got);
    free(taken);
}
