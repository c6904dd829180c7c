/*
 * apiusage: the org's daily API request allowance, as Salesforce reports it.
 *
 * Every REST answer carries a Sforce-Limit-Info header such as
 * "api-usage=18/15000" (requests used in the last 24 hours / allowed).
 * au_parse reads it; au_reached says whether a share of the allowance is
 * used. The figures come from outside: anything but two non-negative
 * decimal numbers within a long, the second above 0, is refused, and the
 * comparison cannot overflow whatever they are.
 */
#ifndef APIUSAGE_H
#define APIUSAGE_H

#include <stdbool.h>

/* "api-usage=N/M" anywhere in a Sforce-Limit-Info value: 0 with *used and
 * *max set, -1 (both untouched) when v does not hold it. */
int au_parse(const char *v, long *used, long *max);
/* Whether used is at least pct percent of max; false while max is unknown (<= 0). */
bool au_reached(long used, long max, long pct);

#endif
