#ifndef WD_PROGRAM_H
#define WD_PROGRAM_H

/* What the daemons (wd-server, wd-api) do first: load the configuration
 * (--config FILE, else conf.d/default.toml when present, else the built-in
 * defaults), apply APPCONF_ variables and --section.key=value arguments, and
 * start logging from log.level / log.target. Messages go to stderr prefixed
 * with `ident`. NULL when any step fails (already reported). */

struct wd_config;

struct wd_config *wd_program_config(const char *ident, int argc, char **argv);

#endif
