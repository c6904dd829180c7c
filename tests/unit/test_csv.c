/*
 * Unit tests for csv: the streaming RFC 4180 reader (delimiters, quoting, line
 * endings, errors with positions, any feeding pattern) and the writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* Read all of in (fed in pieces of step bytes; 0 = at once) into a printable
 * form: fields joined by '|', rows ended by '\n', blank rows as "<blank>".
 * Returns the final status (CSV_END or CSV_FAIL); err gets the error. */
static csv_status
read_all(const char *in, size_t len, const csv_opts *o, size_t step, char *out, size_t outsz,
         csv_error *err)
{
    csv_reader *r = csv_reader_new(o);
    size_t pos = 0, used = 0;
    out[0] = '\0';
    csv_status st;
    for (;;) {
        csv_row row;
        st = csv_next(r, &row);
        if (st == CSV_ROW) {
            if (row.blank) {
                used += (size_t)snprintf(out + used, outsz - used, "<blank>\n");
                continue;
            }
            for (size_t i = 0; i < row.nfields; i++) {
                used += (size_t)snprintf(out + used, outsz - used, "%s%.*s", i ? "|" : "",
                                         (int)row.len[i], row.field[i]);
            }
            used += (size_t)snprintf(out + used, outsz - used, "\n");
            continue;
        }
        if (st == CSV_NEED) {
            if (pos >= len) {
                csv_finish(r);
                continue;
            }
            size_t n = step && len - pos > step ? step : len - pos;
            csv_feed(r, in + pos, n);
            pos += n;
            continue;
        }
        break;
    }
    if (err)
        *err = *csv_reader_error(r);
    csv_reader_free(r);
    return st;
}

static void
expect_rows(const char *in, const csv_opts *o, const char *want)
{
    char out[4096];
    size_t len = strlen(in);
    /* The same rows whatever the feeding pattern. */
    size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        csv_error e;
        assert_int_equal(read_all(in, len, o, steps[k], out, sizeof out, &e), CSV_END);
        assert_string_equal(out, want);
    }
}

static void
expect_error(const char *in, const csv_opts *o, csv_errcode code, int64_t line, int64_t col)
{
    char out[4096];
    size_t steps[] = {0, 1, 5};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        csv_error e;
        assert_int_equal(read_all(in, strlen(in), o, steps[k], out, sizeof out, &e), CSV_FAIL);
        assert_int_equal(e.code, code);
        assert_int_equal(e.line, line);
        assert_int_equal(e.col, col);
        assert_true(e.msg[0] != '\0');
    }
}

static void
test_simple_rows(void **state)
{
    (void)state;
    expect_rows("Name,Email__c\nAda,ada@x.org\nBob,bob@x.org\n", NULL,
                "Name|Email__c\nAda|ada@x.org\nBob|bob@x.org\n");
}

static void
test_no_final_newline(void **state)
{
    (void)state;
    expect_rows("a,b\n1,2", NULL, "a|b\n1|2\n");
    expect_rows("a", NULL, "a\n");
}

static void
test_empty_fields(void **state)
{
    (void)state;
    expect_rows(",,\n1,,3\n\"\",x,\"\"\n", NULL, "||\n1||3\n|x|\n");
    expect_rows("a,", NULL, "a|\n");
}

static void
test_quoted_fields(void **state)
{
    (void)state;
    expect_rows("\"Jane's \"\"Best\"\" Co\",\"Acme, Inc.\"\n", NULL,
                "Jane's \"Best\" Co|Acme, Inc.\n");
    expect_rows("\"\"\"\"\n", NULL, "\"\n");
}

static void
test_embedded_newlines(void **state)
{
    (void)state;
    expect_rows("\"line 1\nline 2\",b\n\"x\r\ny\",z\n", NULL, "line 1\nline 2|b\nx\r\ny|z\n");
}

static void
test_line_endings_any(void **state)
{
    (void)state;
    expect_rows("a,b\r\nc,d\re,f\ng,h\r\n", NULL, "a|b\nc|d\ne|f\ng|h\n");
}

static void
test_blank_lines(void **state)
{
    (void)state;
    expect_rows("a\n\nb\n", NULL, "a\n<blank>\nb\n");
    /* A quoted empty field is not a blank line. */
    expect_rows("\"\"\n", NULL, "\n");
}

static void
test_strict_lf(void **state)
{
    (void)state;
    csv_opts o = {.eol = CSV_EOL_LF};
    expect_rows("a,b\nc,\"d\r\ne\"\n", &o, "a|b\nc|d\r\ne\n");
    expect_error("a,b\r\nc,d\r\n", &o, CSV_ERR_EOL, 1, 4);
}

static void
test_strict_crlf(void **state)
{
    (void)state;
    csv_opts o = {.eol = CSV_EOL_CRLF};
    expect_rows("a,b\r\nc,\"d\ne\"\r\n", &o, "a|b\nc|d\ne\n");
    expect_error("a,b\r\nc,d\ne,f\r\n", &o, CSV_ERR_EOL, 2, 4);
    expect_error("a,b\rc\r\n", &o, CSV_ERR_EOL, 2, 1);
}

static void
test_error_quote_in_plain_field(void **state)
{
    (void)state;
    expect_error("a,b\nab\"c,d\n", NULL, CSV_ERR_QUOTE, 2, 3);
    /* a space before the opening quote makes it a plain field */
    expect_error("a, \"b\"\n", NULL, CSV_ERR_QUOTE, 1, 4);
}

static void
test_error_after_closing_quote(void **state)
{
    (void)state;
    expect_error("x\n\"ab\"c,d\n", NULL, CSV_ERR_AFTER_QUOTE, 2, 5);
    expect_error("\"ab\" ,d\n", NULL, CSV_ERR_AFTER_QUOTE, 1, 5);
}

static void
test_error_unterminated(void **state)
{
    (void)state;
    /* reported where the quoted field starts */
    expect_error("a,b\nc,\"never\nclosed\n", NULL, CSV_ERR_UNTERMINATED, 2, 3);
}

static void
test_other_delimiters(void **state)
{
    (void)state;
    const char d[] = {'\t', '|', ';', '^', '`'};
    for (size_t i = 0; i < sizeof d; i++) {
        csv_opts o = {.delim = d[i]};
        char in[64];
        snprintf(in, sizeof in, "a%cb,c\n\"x%cy\"%c\"\"\n", d[i], d[i], d[i]);
        char want[64];
        snprintf(want, sizeof want, "a|b,c\nx%cy|\n", d[i]);
        expect_rows(in, &o, want);
    }
}

static void
test_utf8(void **state)
{
    (void)state;
    csv_opts o = {.utf8 = true};
    /* A byte-order mark is data, as are multibyte characters. */
    expect_rows("\xEF\xBB\xBFName\nZo\xC3\xAB\n", &o, "\xEF\xBB\xBFName\nZo\xC3\xAB\n");
    expect_error("Name\nok\nbad\xC3(\n", &o, CSV_ERR_UTF8, 3, 1);
    expect_error("a,\"x\xFFy\"\n", &o, CSV_ERR_UTF8, 1, 3);
    /* without the option, bytes pass through */
    expect_rows("bad\xFF\n", NULL, "bad\xFF\n");
}

static void
test_limits(void **state)
{
    (void)state;
    csv_opts o = {.max_field = 4, .max_fields = 3};
    expect_rows("abcd,x,y\n", &o, "abcd|x|y\n");
    expect_error("ab,abcde\n", &o, CSV_ERR_LIMIT, 1, 4);
    expect_error("a,b,c,d\n", &o, CSV_ERR_LIMIT, 1, 7);
    csv_opts r = {.max_row = 8};
    expect_error("abc,def\nabcd,efgh\n", &r, CSV_ERR_LIMIT, 2, 1);
}

static void
test_nul_bytes_and_lengths(void **state)
{
    (void)state;
    const char in[] = "a\0b,c\n";
    csv_reader *r = csv_reader_new(NULL);
    csv_feed(r, in, sizeof in - 1);
    csv_finish(r);
    csv_row row;
    assert_int_equal(csv_next(r, &row), CSV_ROW);
    assert_int_equal(row.nfields, 2);
    assert_int_equal(row.len[0], 3);
    assert_memory_equal(row.field[0], "a\0b", 4);
    assert_string_equal(row.field[1], "c");
    assert_int_equal(row.line, 1);
    assert_int_equal(row.index, 0);
    assert_int_equal(csv_next(r, &row), CSV_END);
    assert_int_equal(csv_next(r, &row), CSV_END);
    csv_reader_free(r);
}

static void
test_row_positions(void **state)
{
    (void)state;
    const char in[] = "h1,h2\n\"multi\nline\",x\nlast,y\n";
    csv_reader *r = csv_reader_new(NULL);
    csv_feed(r, in, sizeof in - 1);
    csv_finish(r);
    csv_row row;
    int64_t lines[] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(csv_next(r, &row), CSV_ROW);
        assert_int_equal(row.line, lines[i]);
        assert_int_equal(row.index, i);
    }
    assert_int_equal(csv_next(r, &row), CSV_END);
    csv_reader_free(r);
}

static void
test_empty_input_and_sticky_error(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(read_all("", 0, NULL, 0, out, sizeof out, NULL), CSV_END);
    assert_string_equal(out, "");
    csv_reader *r = csv_reader_new(NULL);
    csv_feed(r, "a\"b\n", 4);
    csv_row row;
    assert_int_equal(csv_next(r, &row), CSV_FAIL);
    csv_feed(r, "ok\n", 3);
    assert_int_equal(csv_next(r, &row), CSV_FAIL);
    csv_reader_free(r);
}

static void
test_writer_quotes_everything(void **state)
{
    (void)state;
    sb s = SB_INIT;
    csv_put_str(&s, "plain");
    sb_putc(&s, ',');
    csv_put_str(&s, "say \"hi\", \"bye\"");
    sb_putc(&s, ',');
    csv_put_str(&s, "");
    sb_putc(&s, ',');
    csv_put_str(&s, NULL);
    sb_putc(&s, ',');
    csv_put(&s, "a\nb", 3);
    assert_string_equal(s.buf, "\"plain\",\"say \"\"hi\"\", \"\"bye\"\"\",\"\",\"\",\"a\nb\"");
    sb_free(&s);
}

static void
test_writer_round_trip(void **state)
{
    (void)state;
    const char *vals[] = {"x", "\"", "a,b", "line\r\nbreak", "", "\"\"\"", "tab\there"};
    size_t n = sizeof vals / sizeof vals[0];
    sb s = SB_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(&s, '\t');
        csv_put_str(&s, vals[i]);
    }
    sb_puts(&s, "\r\n");
    csv_opts o = {.delim = '\t', .eol = CSV_EOL_CRLF};
    csv_reader *r = csv_reader_new(&o);
    csv_feed(r, s.buf, s.len);
    csv_finish(r);
    csv_row row;
    assert_int_equal(csv_next(r, &row), CSV_ROW);
    assert_int_equal(row.nfields, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(row.field[i], vals[i]);
    assert_int_equal(csv_next(r, &row), CSV_END);
    csv_reader_free(r);
    sb_free(&s);
}

static void
test_option_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        char c;
    } d[] = {{"COMMA", ','},     {"TAB", '\t'},  {"PIPE", '|'},
             {"SEMICOLON", ';'}, {"CARET", '^'}, {"BACKQUOTE", '`'}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        char c = 0;
        assert_int_equal(csv_delim_parse(d[i].name, &c), 0);
        assert_int_equal(c, d[i].c);
        assert_string_equal(csv_delim_name(c), d[i].name);
    }
    char c;
    assert_int_equal(csv_delim_parse("comma", &c), -1);
    assert_int_equal(csv_delim_parse(NULL, &c), -1);
    assert_null(csv_delim_name('x'));
    csv_eol e;
    assert_int_equal(csv_eol_parse("LF", &e), 0);
    assert_int_equal(e, CSV_EOL_LF);
    assert_int_equal(csv_eol_parse("CRLF", &e), 0);
    assert_int_equal(e, CSV_EOL_CRLF);
    assert_int_equal(csv_eol_parse("CR", &e), -1);
    assert_string_equal(csv_eol_str(CSV_EOL_CRLF), "\r\n");
    assert_string_equal(csv_eol_name(CSV_EOL_LF), "LF");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_rows),
        cmocka_unit_test(test_no_final_newline),
        cmocka_unit_test(test_empty_fields),
        cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_embedded_newlines),
        cmocka_unit_test(test_line_endings_any),
        cmocka_unit_test(test_blank_lines),
        cmocka_unit_test(test_strict_lf),
        cmocka_unit_test(test_strict_crlf),
        cmocka_unit_test(test_error_quote_in_plain_field),
        cmocka_unit_test(test_error_after_closing_quote),
        cmocka_unit_test(test_error_unterminated),
        cmocka_unit_test(test_other_delimiters),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_nul_bytes_and_lengths),
        cmocka_unit_test(test_row_positions),
        cmocka_unit_test(test_empty_input_and_sticky_error),
        cmocka_unit_test(test_writer_quotes_everything),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_option_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
