/*
 * sfbridge: the sync daemon and CLI (see docs/architecture.md).
 *
 * The sync engine is being built in the issues after localforce's; this entry
 * point answers --help and --version so the layout and packaging are real.
 */
#include <stdio.h>
#include <string.h>

#define SFBRIDGE_VERSION "0.1.0"

static void
usage(FILE *to)
{
    fputs("usage: sfbridge <command> [options]\n"
          "\n"
          "Keeps a Postgres schema and a Salesforce org in sync, both ways.\n"
          "\n"
          "commands:\n"
          "  --help       show this help\n"
          "  --version    print the version\n"
          "\n"
          "The sync commands (run, status, mapping ...) arrive with the next milestones;\n"
          "see docs/architecture.md.\n",
          to);
}

int
main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sfbridge %s\n", SFBRIDGE_VERSION);
        return 0;
    }
    fprintf(stderr, "sfbridge: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
