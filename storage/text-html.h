#ifndef TEXT_HTML_H
#define TEXT_HTML_H

/* Text ↔ HTML conversions for a message's maildata (libwdstore internal;
 * see text-html.c for how closely they follow WildDuck's JavaScript).
 *
 * Both take UTF-8 (invalid bytes are read as U+FFFD) and append UTF-8 to
 * `out`. They are linear in the input and never fail on content; WD_ERROR
 * means only that `out` could not grow. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_buffer;

/* WildDuck's textToHtml(): HTML-escape (he.encode with named references),
   then <p> per paragraph (blank-line separated) and <br/> per line break. */
int wd__text_to_html(const char *text, size_t len, struct wd_buffer *out);

/* Plain text of an HTML document as WildDuck's html-to-text 9 renders it
   with default options (80-column word wrap, blocks separated by blank
   lines, links as "text [href]", images as "alt [src]", headings upper
   case, lists with " * " / " 1. "). The result is not trimmed. */
int wd__html_to_text(const char *html, size_t len, struct wd_buffer *out);

/* ---- helpers shared with message-maildata.c ---- */

/* The code point at s[*i] (len bytes in all), advancing *i; an invalid or
   truncated sequence reads as U+FFFD and advances one byte. */
uint32_t wd__utf8_get(const char *s, size_t len, size_t *i);
/* Append one code point as UTF-8. */
int wd__utf8_put(struct wd_buffer *out, uint32_t cp);
/* JavaScript's \s (and what String.prototype.trim() removes). */
bool wd__js_space(uint32_t cp);
/* JavaScript's line terminators (\n \r U+2028 U+2029): where ^ and $ match
   in a multiline regular expression and what '.' does not match. */
bool wd__js_line_end(uint32_t cp);

#endif
