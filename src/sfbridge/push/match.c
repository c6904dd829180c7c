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

/* How many of sent's non-null values rec holds (*held), of how many (*of),
 * and whether one held tells records apart (*told). */
static void
count_held(const json_t *sent, const json_t *rec, const char *const *strong, int *held, int *of,
           bool *told)
{
    *held = *of = 0;
    *told = false;
    const char *key;
    json_t *s;
    json_object_foreach((json_t *)sent, key, s) {
        if (strcmp(key, "attributes") == 0 || strcasecmp(key, "id") == 0 || json_is_null(s))
            continue;
        (*of)++;
        if (same_value(s, json_object_get(rec, key))) {
            (*held)++;
            *told = *told || named(strong, key);
        }
    }
}

int
match_score(const json_t *sent, const json_t *rec, const char *const *strong)
{
    int held, of;
    bool told;
    count_held(sent, rec, strong, &held, &of, &told);
    return told && 2 * held > of ? held : 0;
}

/* The values held without the half rule (0 when none tells). */
static int
held_any(const json_t *sent, const json_t *rec, const char *const *strong)
{
    int held, of;
    bool told;
    count_held(sent, rec, strong, &held, &of, &told);
    return told ? held : 0;
}

/* -1 when c was created outside in's window. */
static int
score_of(const match_insert *in, const match_cand *c, const char *const *strong)
{
    bool inside = c->created_ms >= in->from_ms && c->created_ms <= in->to_ms;
    return inside ? match_score(in->sent, c->rec, strong) : -1;
}

/* The work of one match_inserts: score[i * nc + c] (-1 outside i's window),
 * got[i] the candidate insert i took (or MATCH_NONE), taken[c]. */
typedef struct pairing {
    const int *score;
    const int *raw; /* values held, no threshold (held_any()), -1 outside the window */
    size_t ni, nc;
    int *got;
    bool *taken;
} pairing;

static void
give(pairing *p, size_t i, size_t c)
{
    p->got[i] = (int)c;
    p->taken[c] = true;
}

/* By the matrix m (score or raw): every insert and free candidate that are
 * each other's unique best, at least 1, are paired (an insert's best among
 * the free candidates, no other insert without a record as high on it). */
static bool
pair_mutual(pairing *p, const int *m)
{
    bool progress = false;
    for (size_t i = 0; i < p->ni; i++) {
        if (p->got[i] >= 0)
            continue;
        int best = 0, ties = 0;
        size_t bc = 0;
        for (size_t c = 0; c < p->nc; c++) {
            int v = p->taken[c] ? -1 : m[i * p->nc + c];
            if (v > best)
                best = v, bc = c, ties = 1;
            else if (v == best && v > 0)
                ties++;
        }
        if (best < 1 || ties != 1)
            continue;
        bool mutual = true;
        for (size_t j = 0; j < p->ni && mutual; j++)
            mutual = j == i || p->got[j] >= 0 || m[j * p->nc + bc] < best;
        if (mutual) {
            give(p, i, bc);
            progress = true;
        }
    }
    return progress;
}

/* The user is sfbridge's alone: a free candidate inside the window of one
 * insert still without a record is that insert's. */
static bool
pair_by_elimination(pairing *p)
{
    bool progress = false;
    for (size_t c = 0; c < p->nc; c++) {
        if (p->taken[c])
            continue;
        size_t who = 0, n = 0;
        for (size_t i = 0; i < p->ni && n < 2; i++)
            if (p->got[i] < 0 && p->score[i * p->nc + c] >= 0)
                who = i, n++;
        if (n == 1) {
            give(p, who, c);
            progress = true;
        }
    }
    return progress;
}

/* The largest set pair_by_sets tries every pairing of (6! = 720). */
#define SET_MAX 6

/* One set for pair_by_sets: its inserts and candidates (indexes into the
 * pairing), and the search for the pairing holding the most values. */
typedef struct set_search {
    const pairing *p;
    size_t ni, nc, ins[SET_MAX], cand[SET_MAX];
    bool strict;                        /* fewer candidates than inserts: each pair holds a value */
    size_t cur[SET_MAX], best[SET_MAX]; /* the insert (index into ins) per candidate */
    bool used[SET_MAX];
    int best_sum, nbest;
} set_search;

/* Give candidates c.. each a distinct insert whose window holds it. */
static void
search(set_search *s, size_t c, int sum)
{
    if (c == s->nc) {
        if (sum > s->best_sum) {
            s->best_sum = sum, s->nbest = 1;
            memcpy(s->best, s->cur, sizeof s->best);
        } else if (sum == s->best_sum) {
            s->nbest++;
        }
        return;
    }
    for (size_t i = 0; i < s->ni; i++) {
        size_t at = s->ins[i] * s->p->nc + s->cand[c];
        if (s->used[i] || s->p->score[at] < 0 || (s->strict && s->p->raw[at] < 1))
            continue;
        s->used[i] = true;
        s->cur[c] = i;
        search(s, c + 1, sum + s->p->raw[at]);
        s->used[i] = false;
    }
}

static size_t
root_of(size_t *part, size_t x)
{
    while (part[x] != x)
        x = part[x] = part[part[x]];
    return x;
}

/* The user is sfbridge's alone. Inserts still without a record and free
 * candidates, linked by windows (a connected part of at most SET_MAX of
 * each): every candidate was made by one of these inserts, each insert made
 * at most one. With as many candidates as inserts the pairing is one to
 * one; with fewer, some inserts made nothing, and only pairings where each
 * record holds a value its insert sent count. The pairing holding the most
 * values sent, when it is the only one, is taken (a collection's records
 * all edited; inserts that never reached Salesforce beside them). */
static bool
pair_by_sets(pairing *p)
{
    size_t n = p->ni + p->nc;
    size_t *part = xcalloc(n + 1, sizeof *part);
    for (size_t x = 0; x < n; x++)
        part[x] = x;
    /* union-find: inserts 0..ni, candidates ni..ni+nc */
    for (size_t i = 0; i < p->ni; i++)
        for (size_t c = 0; c < p->nc; c++)
            if (p->got[i] < 0 && !p->taken[c] && p->score[i * p->nc + c] >= 0)
                part[root_of(part, i)] = root_of(part, p->ni + c);
    bool progress = false;
    for (size_t root = 0; root < n; root++) {
        set_search s = {.p = p, .best_sum = -1};
        bool big = false;
        for (size_t x = 0; x < n; x++) {
            bool live = x < p->ni ? p->got[x] < 0 : !p->taken[x - p->ni];
            if (!live || root_of(part, x) != root)
                continue;
            if (x < p->ni && s.ni < SET_MAX)
                s.ins[s.ni++] = x;
            else if (x >= p->ni && s.nc < SET_MAX)
                s.cand[s.nc++] = x - p->ni;
            else
                big = true;
        }
        if (big || s.nc == 0 || s.nc > s.ni || s.ni < 2)
            continue;
        s.strict = s.nc < s.ni;
        search(&s, 0, 0);
        if (s.nbest != 1 || s.best_sum < 1)
            continue;
        for (size_t c = 0; c < s.nc; c++)
            give(p, s.ins[s.best[c]], s.cand[c]);
        progress = true;
    }
    free(part);
    return progress;
}

void
match_inserts(const match_insert *ins, size_t ni, size_t nmine, const match_cand *cand, size_t nc,
              const match_rules *rules, int *out)
{
    /* Only the candidates that may be one of ours matter (to ours and to
     * their competitors): those one of ours scores, or, when the user is
     * sfbridge's alone, any inside one of our windows. The matrix is ni x
     * those (kept[k] = a caller's index). */
    size_t *kept = xcalloc(nc + 1, sizeof *kept), nk = 0;
    int least = rules->sole ? 0 : 1;
    for (size_t c = 0; c < nc; c++) {
        bool any = false;
        for (size_t i = 0; i < nmine && !any; i++)
            any = score_of(&ins[i], &cand[c], rules->strong) >= least;
        if (any)
            kept[nk++] = c;
    }
    int *score = xcalloc(ni * nk + 1, sizeof *score), *raw = xcalloc(ni * nk + 1, sizeof *raw);
    pairing p =
        {score, raw, ni, nk, xcalloc(ni + 1, sizeof *p.got), xcalloc(nk + 1, sizeof *p.taken)};
    for (size_t i = 0; i < ni; i++) {
        p.got[i] = MATCH_NONE;
        for (size_t k = 0; k < nk; k++) {
            score[i * nk + k] = score_of(&ins[i], &cand[kept[k]], rules->strong);
            raw[i * nk + k] = score[i * nk + k] < 0
                                  ? -1
                                  : held_any(ins[i].sent, cand[kept[k]].rec, rules->strong);
        }
    }
    /* Values first (they name the record), then (the user being sfbridge's
     * alone) elimination, values held without the half rule (a record edited
     * in most of its fields still holds the name it was given), and sets,
     * each of which may leave a single best claim where there were ties;
     * again until nothing moves. */
    while (pair_mutual(&p, score) ||
           (rules->sole && (pair_by_elimination(&p) || pair_mutual(&p, raw) || pair_by_sets(&p))))
        ;
    for (size_t i = 0; i < nmine; i++) {
        out[i] = p.got[i] >= 0 ? (int)kept[p.got[i]] : MATCH_NONE;
        /* Left over, it is judged by its values alone, as with a shared
         * user: ambiguous when a free candidate holds enough of them. */
        for (size_t k = 0; k < nk && out[i] == MATCH_NONE; k++)
            if (!p.taken[k] && score[i * nk + k] >= 1)
                out[i] = MATCH_AMBIGUOUS;
        /* The user is sfbridge's alone: a free candidate in its window that a
         * competitor yet to conclude its look may claim is worth waiting for
         * (that competitor may take it, or take its own and leave this one
         * to elimination). */
        for (size_t k = 0; rules->sole && out[i] == MATCH_NONE && k < nk; k++)
            for (size_t j = nmine; !p.taken[k] && score[i * nk + k] >= 0 && j < ni; j++)
                if (ins[j].pending && p.got[j] < 0 && score[j * nk + k] >= 0)
                    out[i] = MATCH_WAIT;
    }
    free(kept);
    free(score);
    free(raw);
    free(p.got);
    free(p.taken);
}
