#ifndef WD_RESULT_H
#define WD_RESULT_H

/* The result codes used across wildduck-c (STYLE.md, example 6).
 *
 * WD_OK     the operation completed;
 * WD_AGAIN  it needs more input (parsers) or must be resumed later (commands);
 * WD_ERROR  it failed; the reason is returned through a `const char **error_r`
 *           out-parameter that points to a string owned by the callee (static,
 *           or valid until the next call on the same object). */
enum {
	WD_OK = 0,
	WD_AGAIN = 1,
	WD_ERROR = -1,
};

#define WD_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define WD_UNUSED __attribute__((unused))
#define WD_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

#endif
