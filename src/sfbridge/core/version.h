/*
 * version: sfbridge's version, for --version, the metrics' build info and
 * the packages (packaging/ reads it from here).
 */
#ifndef VERSION_H
#define VERSION_H

#define SFBRIDGE_VERSION "0.2.0"

#endif
