/*
 * sfid: Salesforce record IDs. See sfid.h.
 */
#include "sfid.h"

#include <ctype.h>
#include <string.h>

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char cks[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

void
sfid_checksum(const char *id15, char out[3])
{
    for (int chunk = 0; chunk < 3; chunk++) {
        int bits = 0;
        for (int i = 0; i < 5; i++) {
            char c = id15[chunk * 5 + i];
            if (c >= 'A' && c <= 'Z')
                bits |= 1 << i;
        }
        out[chunk] = cks[bits];
    }
}

void
sfid_make(const char prefix[3], uint64_t seq, char out[19])
{
    memcpy(out, prefix, 3);
    memcpy(out + 3, SFID_POD, 2);
    for (int i = 14; i >= 5; i--) {
        out[i] = b62[seq % 62];
        seq /= 62;
    }
    sfid_checksum(out, out + 15);
    out[18] = '\0';
}

static int
b62_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

int
sfid_normalize(const char *s, char out[19])
{
    if (s == NULL)
        return -1;
    size_t n = strlen(s);
    if (n != 15 && n != 18)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return -1;
    memcpy(out, s, 15);
    if (n == 18) {
        /* Restore case from the checksum, so lower-cased 18-char IDs still resolve. */
        for (int chunk = 0; chunk < 3; chunk++) {
            const char *p = strchr(cks, toupper((unsigned char)s[15 + chunk]));
            if (p == NULL)
                return -1;
            int bits = (int)(p - cks);
            for (int i = 0; i < 5; i++) {
                char c = out[chunk * 5 + i];
                if (isalpha((unsigned char)c))
                    out[chunk * 5 + i] = (char)((bits & (1 << i)) ? toupper((unsigned char)c)
                                                                  : tolower((unsigned char)c));
            }
        }
    }
    sfid_checksum(out, out + 15);
    out[18] = '\0';
    return 0;
}

int64_t
sfid_seq(const char *id18)
{
    int64_t v = 0;
    for (int i = 5; i < 15; i++) {
        int d = b62_val(id18[i]);
        if (d < 0)
            return -1;
        if (v > (INT64_MAX - d) / 62)
            return -1;
        v = v * 62 + d;
    }
    return v;
}

bool
sfid_has_prefix(const char *id18, const char prefix[3])
{
    return memcmp(id18, prefix, 3) == 0;
}
