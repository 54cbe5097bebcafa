/* Text ↔ HTML conversions for maildata (see text-html.h).
 *
 * WildDuck renders plain-text parts as HTML with its textToHtml() (he's
 * encoder, then <p>/<br/>) and HTML parts as text with the npm html-to-text
 * 9 library (default options). The `text` field, the search index and the
 * `intro` preview all come from that text, so we follow the library's
 * layout model rather than invent our own:
 *
 * Parsing. A small tokenizer builds a DOM the way htmlparser2 8 does in HTML
 * mode: tag and attribute names lower-cased, void elements (br, img, hr…),
 * the "an opening tag implies closing" rules (p closed by a block, li by li,
 * td/tr by td/tr…), an end tag closes up to its open element or is ignored
 * (</p> and </br> without an open one become an empty p and a br), script
 * and style content is raw and dropped, title content raw with entities,
 * comments / declarations / processing instructions kept as inert nodes,
 * an unfinished tag at the end dropped. Character references: numeric (with
 * the HTML C1 remapping) and named from a table of 1,300 names (every name
 * he emits for a BMP code point, their legacy forms without ';' and common
 * aliases); unknown names stay literal.
 *
 * Layout. A port of html-to-text's BlockTextBuilder: a stack of blocks,
 * each with "raw" text plus an inline builder of words that wraps at 80
 * columns (counted in UTF-16 units, as JavaScript does; a long word is never
 * split), stashed line breaks between blocks (the larger of trailing and
 * leading counts), "stashed space" between inline runs, and the default
 * formatters: p/pre (2,2), div and the HTML5 sections (1,1), h1–h3 (3,2) and
 * h4–h6 (2,2) upper-cased, blockquote ("> " prefix, 2,2), ul/ol with " * " /
 * " N. " prefixes (nested ones trimmed, 1,1), hr (80 dashes), table as a
 * plain block (2,2), a ("text [href]", href alone when there is no text,
 * "mailto:" dropped, "#…" ignored), img ("alt [src]"), br, wbr. When the
 * document has <body> elements only they are rendered.
 *
 * Where we differ (knowingly): named references outside our table (about
 * 900 of the 2,231 names: aliases and rare symbols) stay literal;
 * "svg"/"math" self-closing tags are not recognised; an <ol start> that is
 * not a decimal integer gives "NaN." markers whatever the type;
 * type="i"/"I" past 3999 falls back to digits; upper-casing uses GLib's
 * rules, not V8's; html-to-text's quirk of splitting a long word at the
 * text "undefined" is not reproduced. Bounds for hostile input (html-to-text
 * has none and would overflow the JavaScript stack or run out of memory,
 * and WildDuck would then store no text at all): elements nested deeper
 * than H2T_MAX_DEPTH are flattened into their ancestor, tags past
 * H2T_MAX_NODES are ignored (their text kept), and every block's rendered
 * text is cut at H2T_MAX_TEXT, far beyond what the stored fields use.
 *
 * textToHtml follows he.encode({useNamedReferences: true}): "&<>'`\"" and
 * every non-ASCII BMP code point with a name become "&name;", other
 * non-printable or non-ASCII code points "&#xHEX;"; the two-code-point
 * names (e.g. "&nvlt;") are not used. Then WildDuck's line rules.
 *
 * Cost: the tokenizer and the layout are linear in the input; every block
 * level copies its text once into its parent (nested lists and quotes also
 * indent it), so the worst case is O(n + depth · H2T_MAX_TEXT), about half
 * a second for 2 MB of nested markup, and O(n) for real mail. */
#include "text-html.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2T_MAX_DEPTH 128
#define H2T_WORDWRAP 80
/* Past this many nodes further tags are ignored (their text is kept). */
#define H2T_MAX_NODES 400000
/* Rendered text kept per block (see put()). */
#define H2T_MAX_TEXT (1024u * 1024)

/* ---- UTF-8 and JavaScript character classes ---- */

uint32_t wd__utf8_get(const char *s, size_t len, size_t *i)
{
	const unsigned char *p = (const unsigned char *)s + *i;
	size_t left = len - *i;
	uint32_t c = p[0], cp;
	size_t n;
	if (c < 0x80) {
		(*i)++;
		return c;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		(*i)++;
		return 0xfffd;
	}
	if (left < n)
		goto bad;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			goto bad;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		goto bad;
	*i += n;
	return cp;
bad:
	(*i)++;
	return 0xfffd;
}

static size_t utf8_encode(uint32_t cp, char *b);

int wd__utf8_put(struct wd_buffer *out, uint32_t cp)
{
	char b[4];
	return wd_buffer_append(out, b, utf8_encode(cp, b));
}

bool wd__js_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0xa0 || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
	       cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

bool wd__js_line_end(uint32_t cp)
{
	return cp == '\n' || cp == '\r' || cp == 0x2028 || cp == 0x2029;
}

/* html-to-text's whitespaceCharacters: " \t\r\n\f\u200b". */
static bool h2t_space(uint32_t cp)
{
	return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == '\f' || cp == 0x200b;
}

/* ---- named character references ----
 * Generated from the WHATWG list of named references: for every BMP code
 * point that he 1.2.0 encodes by name, the name it emits (flag 1), plus the
 * legacy names that may appear without ';' (flag 2) and common aliases
 * (flag 0, decode only). Sorted by code point; entity_by_name sorts the
 * indexes by name. */
struct entity {
	uint16_t cp;
	uint8_t flags;
	const char *name;
};

#define ENT_ENCODE 1
#define ENT_LEGACY 2

static const struct entity entities[] = {
	{ 0x0022, 3, "quot" }, { 0x0022, 2, "QUOT" }, { 0x0026, 3, "amp" }, { 0x0026, 2, "AMP" },
	{ 0x0027, 1, "apos" }, { 0x003C, 3, "lt" }, { 0x003C, 2, "LT" }, { 0x003E, 3, "gt" },
	{ 0x003E, 2, "GT" }, { 0x0060, 1, "grave" }, { 0x00A0, 3, "nbsp" },
	{ 0x00A0, 0, "NonBreakingSpace" }, { 0x00A1, 3, "iexcl" }, { 0x00A2, 3, "cent" },
	{ 0x00A3, 3, "pound" }, { 0x00A4, 3, "curren" }, { 0x00A5, 3, "yen" },
	{ 0x00A6, 3, "brvbar" }, { 0x00A7, 3, "sect" }, { 0x00A8, 1, "die" }, { 0x00A8, 2, "uml" },
	{ 0x00A9, 3, "copy" }, { 0x00A9, 2, "COPY" }, { 0x00AA, 3, "ordf" }, { 0x00AB, 3, "laquo" },
	{ 0x00AC, 3, "not" }, { 0x00AD, 3, "shy" }, { 0x00AE, 3, "reg" }, { 0x00AE, 2, "REG" },
	{ 0x00AF, 3, "macr" }, { 0x00B0, 3, "deg" }, { 0x00B1, 1, "pm" }, { 0x00B1, 2, "plusmn" },
	{ 0x00B2, 3, "sup2" }, { 0x00B3, 3, "sup3" }, { 0x00B4, 3, "acute" }, { 0x00B5, 3, "micro" },
	{ 0x00B6, 3, "para" }, { 0x00B7, 3, "middot" }, { 0x00B7, 0, "centerdot" },
	{ 0x00B8, 3, "cedil" }, { 0x00B9, 3, "sup1" }, { 0x00BA, 3, "ordm" }, { 0x00BB, 3, "raquo" },
	{ 0x00BC, 3, "frac14" }, { 0x00BD, 1, "half" }, { 0x00BD, 2, "frac12" },
	{ 0x00BE, 3, "frac34" }, { 0x00BF, 3, "iquest" }, { 0x00C0, 3, "Agrave" },
	{ 0x00C1, 3, "Aacute" }, { 0x00C2, 3, "Acirc" }, { 0x00C3, 3, "Atilde" },
	{ 0x00C4, 3, "Auml" }, { 0x00C5, 1, "angst" }, { 0x00C5, 2, "Aring" }, { 0x00C6, 3, "AElig" },
	{ 0x00C7, 3, "Ccedil" }, { 0x00C8, 3, "Egrave" }, { 0x00C9, 3, "Eacute" },
	{ 0x00CA, 3, "Ecirc" }, { 0x00CB, 3, "Euml" }, { 0x00CC, 3, "Igrave" },
	{ 0x00CD, 3, "Iacute" }, { 0x00CE, 3, "Icirc" }, { 0x00CF, 3, "Iuml" }, { 0x00D0, 3, "ETH" },
	{ 0x00D1, 3, "Ntilde" }, { 0x00D2, 3, "Ograve" }, { 0x00D3, 3, "Oacute" },
	{ 0x00D4, 3, "Ocirc" }, { 0x00D5, 3, "Otilde" }, { 0x00D6, 3, "Ouml" },
	{ 0x00D7, 3, "times" }, { 0x00D8, 3, "Oslash" }, { 0x00D9, 3, "Ugrave" },
	{ 0x00DA, 3, "Uacute" }, { 0x00DB, 3, "Ucirc" }, { 0x00DC, 3, "Uuml" },
	{ 0x00DD, 3, "Yacute" }, { 0x00DE, 3, "THORN" }, { 0x00DF, 3, "szlig" },
	{ 0x00E0, 3, "agrave" }, { 0x00E1, 3, "aacute" }, { 0x00E2, 3, "acirc" },
	{ 0x00E3, 3, "atilde" }, { 0x00E4, 3, "auml" }, { 0x00E5, 3, "aring" },
	{ 0x00E6, 3, "aelig" }, { 0x00E7, 3, "ccedil" }, { 0x00E8, 3, "egrave" },
	{ 0x00E9, 3, "eacute" }, { 0x00EA, 3, "ecirc" }, { 0x00EB, 3, "euml" },
	{ 0x00EC, 3, "igrave" }, { 0x00ED, 3, "iacute" }, { 0x00EE, 3, "icirc" },
	{ 0x00EF, 3, "iuml" }, { 0x00F0, 3, "eth" }, { 0x00F1, 3, "ntilde" }, { 0x00F2, 3, "ograve" },
	{ 0x00F3, 3, "oacute" }, { 0x00F4, 3, "ocirc" }, { 0x00F5, 3, "otilde" },
	{ 0x00F6, 3, "ouml" }, { 0x00F7, 1, "div" }, { 0x00F7, 2, "divide" }, { 0x00F8, 3, "oslash" },
	{ 0x00F9, 3, "ugrave" }, { 0x00FA, 3, "uacute" }, { 0x00FB, 3, "ucirc" },
	{ 0x00FC, 3, "uuml" }, { 0x00FD, 3, "yacute" }, { 0x00FE, 3, "thorn" }, { 0x00FF, 3, "yuml" },
	{ 0x0100, 1, "Amacr" }, { 0x0101, 1, "amacr" }, { 0x0102, 1, "Abreve" },
	{ 0x0103, 1, "abreve" }, { 0x0104, 1, "Aogon" }, { 0x0105, 1, "aogon" },
	{ 0x0106, 1, "Cacute" }, { 0x0107, 1, "cacute" }, { 0x0108, 1, "Ccirc" },
	{ 0x0109, 1, "ccirc" }, { 0x010A, 1, "Cdot" }, { 0x010B, 1, "cdot" }, { 0x010C, 1, "Ccaron" },
	{ 0x010D, 1, "ccaron" }, { 0x010E, 1, "Dcaron" }, { 0x010F, 1, "dcaron" },
	{ 0x0110, 1, "Dstrok" }, { 0x0111, 1, "dstrok" }, { 0x0112, 1, "Emacr" },
	{ 0x0113, 1, "emacr" }, { 0x0116, 1, "Edot" }, { 0x0117, 1, "edot" }, { 0x0118, 1, "Eogon" },
	{ 0x0119, 1, "eogon" }, { 0x011A, 1, "Ecaron" }, { 0x011B, 1, "ecaron" },
	{ 0x011C, 1, "Gcirc" }, { 0x011D, 1, "gcirc" }, { 0x011E, 1, "Gbreve" },
	{ 0x011F, 1, "gbreve" }, { 0x0120, 1, "Gdot" }, { 0x0121, 1, "gdot" },
	{ 0x0122, 1, "Gcedil" }, { 0x0124, 1, "Hcirc" }, { 0x0125, 1, "hcirc" },
	{ 0x0126, 1, "Hstrok" }, { 0x0127, 1, "hstrok" }, { 0x0128, 1, "Itilde" },
	{ 0x0129, 1, "itilde" }, { 0x012A, 1, "Imacr" }, { 0x012B, 1, "imacr" },
	{ 0x012E, 1, "Iogon" }, { 0x012F, 1, "iogon" }, { 0x0130, 1, "Idot" }, { 0x0131, 1, "imath" },
	{ 0x0132, 1, "IJlig" }, { 0x0133, 1, "ijlig" }, { 0x0134, 1, "Jcirc" },
	{ 0x0135, 1, "jcirc" }, { 0x0136, 1, "Kcedil" }, { 0x0137, 1, "kcedil" },
	{ 0x0138, 1, "kgreen" }, { 0x0139, 1, "Lacute" }, { 0x013A, 1, "lacute" },
	{ 0x013B, 1, "Lcedil" }, { 0x013C, 1, "lcedil" }, { 0x013D, 1, "Lcaron" },
	{ 0x013E, 1, "lcaron" }, { 0x013F, 1, "Lmidot" }, { 0x0140, 1, "lmidot" },
	{ 0x0141, 1, "Lstrok" }, { 0x0142, 1, "lstrok" }, { 0x0143, 1, "Nacute" },
	{ 0x0144, 1, "nacute" }, { 0x0145, 1, "Ncedil" }, { 0x0146, 1, "ncedil" },
	{ 0x0147, 1, "Ncaron" }, { 0x0148, 1, "ncaron" }, { 0x0149, 1, "napos" },
	{ 0x014A, 1, "ENG" }, { 0x014B, 1, "eng" }, { 0x014C, 1, "Omacr" }, { 0x014D, 1, "omacr" },
	{ 0x0150, 1, "Odblac" }, { 0x0151, 1, "odblac" }, { 0x0152, 1, "OElig" },
	{ 0x0153, 1, "oelig" }, { 0x0154, 1, "Racute" }, { 0x0155, 1, "racute" },
	{ 0x0156, 1, "Rcedil" }, { 0x0157, 1, "rcedil" }, { 0x0158, 1, "Rcaron" },
	{ 0x0159, 1, "rcaron" }, { 0x015A, 1, "Sacute" }, { 0x015B, 1, "sacute" },
	{ 0x015C, 1, "Scirc" }, { 0x015D, 1, "scirc" }, { 0x015E, 1, "Scedil" },
	{ 0x015F, 1, "scedil" }, { 0x0160, 1, "Scaron" }, { 0x0161, 1, "scaron" },
	{ 0x0162, 1, "Tcedil" }, { 0x0163, 1, "tcedil" }, { 0x0164, 1, "Tcaron" },
	{ 0x0165, 1, "tcaron" }, { 0x0166, 1, "Tstrok" }, { 0x0167, 1, "tstrok" },
	{ 0x0168, 1, "Utilde" }, { 0x0169, 1, "utilde" }, { 0x016A, 1, "Umacr" },
	{ 0x016B, 1, "umacr" }, { 0x016C, 1, "Ubreve" }, { 0x016D, 1, "ubreve" },
	{ 0x016E, 1, "Uring" }, { 0x016F, 1, "uring" }, { 0x0170, 1, "Udblac" },
	{ 0x0171, 1, "udblac" }, { 0x0172, 1, "Uogon" }, { 0x0173, 1, "uogon" },
	{ 0x0174, 1, "Wcirc" }, { 0x0175, 1, "wcirc" }, { 0x0176, 1, "Ycirc" },
	{ 0x0177, 1, "ycirc" }, { 0x0178, 1, "Yuml" }, { 0x0179, 1, "Zacute" },
	{ 0x017A, 1, "zacute" }, { 0x017B, 1, "Zdot" }, { 0x017C, 1, "zdot" },
	{ 0x017D, 1, "Zcaron" }, { 0x017E, 1, "zcaron" }, { 0x0192, 1, "fnof" },
	{ 0x01B5, 1, "imped" }, { 0x01F5, 1, "gacute" }, { 0x0237, 1, "jmath" },
	{ 0x02C6, 1, "circ" }, { 0x02C7, 1, "caron" }, { 0x02D8, 1, "breve" }, { 0x02D9, 1, "dot" },
	{ 0x02DA, 1, "ring" }, { 0x02DB, 1, "ogon" }, { 0x02DC, 1, "tilde" }, { 0x02DD, 1, "dblac" },
	{ 0x0311, 1, "DownBreve" }, { 0x0391, 1, "Alpha" }, { 0x0392, 1, "Beta" },
	{ 0x0393, 1, "Gamma" }, { 0x0394, 1, "Delta" }, { 0x0395, 1, "Epsilon" },
	{ 0x0396, 1, "Zeta" }, { 0x0397, 1, "Eta" }, { 0x0398, 1, "Theta" }, { 0x0399, 1, "Iota" },
	{ 0x039A, 1, "Kappa" }, { 0x039B, 1, "Lambda" }, { 0x039C, 1, "Mu" }, { 0x039D, 1, "Nu" },
	{ 0x039E, 1, "Xi" }, { 0x039F, 1, "Omicron" }, { 0x03A0, 1, "Pi" }, { 0x03A1, 1, "Rho" },
	{ 0x03A3, 1, "Sigma" }, { 0x03A4, 1, "Tau" }, { 0x03A5, 1, "Upsilon" }, { 0x03A6, 1, "Phi" },
	{ 0x03A7, 1, "Chi" }, { 0x03A8, 1, "Psi" }, { 0x03A9, 1, "ohm" }, { 0x03B1, 1, "alpha" },
	{ 0x03B2, 1, "beta" }, { 0x03B3, 1, "gamma" }, { 0x03B4, 1, "delta" }, { 0x03B5, 1, "epsi" },
	{ 0x03B6, 1, "zeta" }, { 0x03B7, 1, "eta" }, { 0x03B8, 1, "theta" }, { 0x03B9, 1, "iota" },
	{ 0x03BA, 1, "kappa" }, { 0x03BB, 1, "lambda" }, { 0x03BC, 1, "mu" }, { 0x03BD, 1, "nu" },
	{ 0x03BE, 1, "xi" }, { 0x03BF, 1, "omicron" }, { 0x03C0, 1, "pi" }, { 0x03C1, 1, "rho" },
	{ 0x03C2, 1, "sigmaf" }, { 0x03C3, 1, "sigma" }, { 0x03C4, 1, "tau" }, { 0x03C5, 1, "upsi" },
	{ 0x03C6, 1, "phi" }, { 0x03C7, 1, "chi" }, { 0x03C8, 1, "psi" }, { 0x03C9, 1, "omega" },
	{ 0x03D1, 1, "thetav" }, { 0x03D2, 1, "Upsi" }, { 0x03D5, 1, "phiv" }, { 0x03D6, 1, "piv" },
	{ 0x03DC, 1, "Gammad" }, { 0x03DD, 1, "gammad" }, { 0x03F0, 1, "kappav" },
	{ 0x03F1, 1, "rhov" }, { 0x03F5, 1, "epsiv" }, { 0x03F6, 1, "bepsi" }, { 0x0401, 1, "IOcy" },
	{ 0x0402, 1, "DJcy" }, { 0x0403, 1, "GJcy" }, { 0x0404, 1, "Jukcy" }, { 0x0405, 1, "DScy" },
	{ 0x0406, 1, "Iukcy" }, { 0x0407, 1, "YIcy" }, { 0x0408, 1, "Jsercy" }, { 0x0409, 1, "LJcy" },
	{ 0x040A, 1, "NJcy" }, { 0x040B, 1, "TSHcy" }, { 0x040C, 1, "KJcy" }, { 0x040E, 1, "Ubrcy" },
	{ 0x040F, 1, "DZcy" }, { 0x0410, 1, "Acy" }, { 0x0411, 1, "Bcy" }, { 0x0412, 1, "Vcy" },
	{ 0x0413, 1, "Gcy" }, { 0x0414, 1, "Dcy" }, { 0x0415, 1, "IEcy" }, { 0x0416, 1, "ZHcy" },
	{ 0x0417, 1, "Zcy" }, { 0x0418, 1, "Icy" }, { 0x0419, 1, "Jcy" }, { 0x041A, 1, "Kcy" },
	{ 0x041B, 1, "Lcy" }, { 0x041C, 1, "Mcy" }, { 0x041D, 1, "Ncy" }, { 0x041E, 1, "Ocy" },
	{ 0x041F, 1, "Pcy" }, { 0x0420, 1, "Rcy" }, { 0x0421, 1, "Scy" }, { 0x0422, 1, "Tcy" },
	{ 0x0423, 1, "Ucy" }, { 0x0424, 1, "Fcy" }, { 0x0425, 1, "KHcy" }, { 0x0426, 1, "TScy" },
	{ 0x0427, 1, "CHcy" }, { 0x0428, 1, "SHcy" }, { 0x0429, 1, "SHCHcy" },
	{ 0x042A, 1, "HARDcy" }, { 0x042B, 1, "Ycy" }, { 0x042C, 1, "SOFTcy" }, { 0x042D, 1, "Ecy" },
	{ 0x042E, 1, "YUcy" }, { 0x042F, 1, "YAcy" }, { 0x0430, 1, "acy" }, { 0x0431, 1, "bcy" },
	{ 0x0432, 1, "vcy" }, { 0x0433, 1, "gcy" }, { 0x0434, 1, "dcy" }, { 0x0435, 1, "iecy" },
	{ 0x0436, 1, "zhcy" }, { 0x0437, 1, "zcy" }, { 0x0438, 1, "icy" }, { 0x0439, 1, "jcy" },
	{ 0x043A, 1, "kcy" }, { 0x043B, 1, "lcy" }, { 0x043C, 1, "mcy" }, { 0x043D, 1, "ncy" },
	{ 0x043E, 1, "ocy" }, { 0x043F, 1, "pcy" }, { 0x0440, 1, "rcy" }, { 0x0441, 1, "scy" },
	{ 0x0442, 1, "tcy" }, { 0x0443, 1, "ucy" }, { 0x0444, 1, "fcy" }, { 0x0445, 1, "khcy" },
	{ 0x0446, 1, "tscy" }, { 0x0447, 1, "chcy" }, { 0x0448, 1, "shcy" }, { 0x0449, 1, "shchcy" },
	{ 0x044A, 1, "hardcy" }, { 0x044B, 1, "ycy" }, { 0x044C, 1, "softcy" }, { 0x044D, 1, "ecy" },
	{ 0x044E, 1, "yucy" }, { 0x044F, 1, "yacy" }, { 0x0451, 1, "iocy" }, { 0x0452, 1, "djcy" },
	{ 0x0453, 1, "gjcy" }, { 0x0454, 1, "jukcy" }, { 0x0455, 1, "dscy" }, { 0x0456, 1, "iukcy" },
	{ 0x0457, 1, "yicy" }, { 0x0458, 1, "jsercy" }, { 0x0459, 1, "ljcy" }, { 0x045A, 1, "njcy" },
	{ 0x045B, 1, "tshcy" }, { 0x045C, 1, "kjcy" }, { 0x045E, 1, "ubrcy" }, { 0x045F, 1, "dzcy" },
	{ 0x2002, 1, "ensp" }, { 0x2003, 1, "emsp" }, { 0x2004, 1, "emsp13" },
	{ 0x2005, 1, "emsp14" }, { 0x2007, 1, "numsp" }, { 0x2008, 1, "puncsp" },
	{ 0x2009, 1, "thinsp" }, { 0x200A, 1, "hairsp" }, { 0x200B, 1, "ZeroWidthSpace" },
	{ 0x200C, 1, "zwnj" }, { 0x200D, 1, "zwj" }, { 0x200E, 1, "lrm" }, { 0x200F, 1, "rlm" },
	{ 0x2010, 1, "dash" }, { 0x2010, 0, "hyphen" }, { 0x2013, 1, "ndash" },
	{ 0x2014, 1, "mdash" }, { 0x2015, 1, "horbar" }, { 0x2016, 1, "Vert" },
	{ 0x2018, 1, "lsquo" }, { 0x2019, 1, "rsquo" }, { 0x2019, 0, "rsquor" },
	{ 0x201A, 1, "sbquo" }, { 0x201A, 0, "lsquor" }, { 0x201C, 1, "ldquo" },
	{ 0x201D, 1, "rdquo" }, { 0x201D, 0, "rdquor" }, { 0x201E, 1, "bdquo" },
	{ 0x201E, 0, "ldquor" }, { 0x2020, 1, "dagger" }, { 0x2021, 1, "Dagger" },
	{ 0x2022, 1, "bull" }, { 0x2022, 0, "bullet" }, { 0x2025, 1, "nldr" }, { 0x2026, 1, "mldr" },
	{ 0x2026, 0, "hellip" }, { 0x2030, 1, "permil" }, { 0x2031, 1, "pertenk" },
	{ 0x2032, 1, "prime" }, { 0x2033, 1, "Prime" }, { 0x2034, 1, "tprime" },
	{ 0x2035, 1, "bprime" }, { 0x2039, 1, "lsaquo" }, { 0x203A, 1, "rsaquo" },
	{ 0x203E, 1, "oline" }, { 0x2041, 1, "caret" }, { 0x2043, 1, "hybull" },
	{ 0x2044, 1, "frasl" }, { 0x204F, 1, "bsemi" }, { 0x2057, 1, "qprime" },
	{ 0x205F, 1, "MediumSpace" }, { 0x2060, 1, "NoBreak" }, { 0x2061, 1, "af" },
	{ 0x2062, 1, "it" }, { 0x2063, 1, "ic" }, { 0x20AC, 1, "euro" }, { 0x20DB, 1, "tdot" },
	{ 0x20DC, 1, "DotDot" }, { 0x2102, 1, "Copf" }, { 0x2105, 1, "incare" },
	{ 0x210A, 1, "gscr" }, { 0x210B, 1, "Hscr" }, { 0x210C, 1, "Hfr" }, { 0x210D, 1, "Hopf" },
	{ 0x210E, 1, "planckh" }, { 0x210F, 1, "hbar" }, { 0x2110, 1, "Iscr" }, { 0x2111, 1, "Im" },
	{ 0x2111, 0, "image" }, { 0x2112, 1, "Lscr" }, { 0x2113, 1, "ell" }, { 0x2115, 1, "Nopf" },
	{ 0x2116, 1, "numero" }, { 0x2117, 1, "copysr" }, { 0x2118, 1, "wp" },
	{ 0x2118, 0, "weierp" }, { 0x2119, 1, "Popf" }, { 0x211A, 1, "Qopf" }, { 0x211B, 1, "Rscr" },
	{ 0x211C, 1, "Re" }, { 0x211C, 0, "real" }, { 0x211D, 1, "Ropf" }, { 0x211E, 1, "rx" },
	{ 0x2122, 1, "trade" }, { 0x2122, 0, "TRADE" }, { 0x2124, 1, "Zopf" }, { 0x2127, 1, "mho" },
	{ 0x2128, 1, "Zfr" }, { 0x2129, 1, "iiota" }, { 0x212C, 1, "Bscr" }, { 0x212D, 1, "Cfr" },
	{ 0x212F, 1, "escr" }, { 0x2130, 1, "Escr" }, { 0x2131, 1, "Fscr" }, { 0x2133, 1, "Mscr" },
	{ 0x2134, 1, "oscr" }, { 0x2135, 1, "aleph" }, { 0x2135, 0, "alefsym" },
	{ 0x2136, 1, "beth" }, { 0x2137, 1, "gimel" }, { 0x2138, 1, "daleth" }, { 0x2145, 1, "DD" },
	{ 0x2146, 1, "dd" }, { 0x2147, 1, "ee" }, { 0x2148, 1, "ii" }, { 0x2153, 1, "frac13" },
	{ 0x2154, 1, "frac23" }, { 0x2155, 1, "frac15" }, { 0x2156, 1, "frac25" },
	{ 0x2157, 1, "frac35" }, { 0x2158, 1, "frac45" }, { 0x2159, 1, "frac16" },
	{ 0x215A, 1, "frac56" }, { 0x215B, 1, "frac18" }, { 0x215C, 1, "frac38" },
	{ 0x215D, 1, "frac58" }, { 0x215E, 1, "frac78" }, { 0x2190, 1, "larr" },
	{ 0x2191, 1, "uarr" }, { 0x2192, 1, "rarr" }, { 0x2193, 1, "darr" }, { 0x2194, 1, "harr" },
	{ 0x2195, 1, "varr" }, { 0x2196, 1, "nwarr" }, { 0x2197, 1, "nearr" }, { 0x2198, 1, "searr" },
	{ 0x2199, 1, "swarr" }, { 0x219A, 1, "nlarr" }, { 0x219B, 1, "nrarr" },
	{ 0x219D, 1, "rarrw" }, { 0x219E, 1, "Larr" }, { 0x219F, 1, "Uarr" }, { 0x21A0, 1, "Rarr" },
	{ 0x21A1, 1, "Darr" }, { 0x21A2, 1, "larrtl" }, { 0x21A3, 1, "rarrtl" },
	{ 0x21A4, 1, "mapstoleft" }, { 0x21A5, 1, "mapstoup" }, { 0x21A6, 1, "map" },
	{ 0x21A7, 1, "mapstodown" }, { 0x21A9, 1, "larrhk" }, { 0x21AA, 1, "rarrhk" },
	{ 0x21AB, 1, "larrlp" }, { 0x21AC, 1, "rarrlp" }, { 0x21AD, 1, "harrw" },
	{ 0x21AE, 1, "nharr" }, { 0x21B0, 1, "lsh" }, { 0x21B1, 1, "rsh" }, { 0x21B2, 1, "ldsh" },
	{ 0x21B3, 1, "rdsh" }, { 0x21B5, 1, "crarr" }, { 0x21B6, 1, "cularr" },
	{ 0x21B7, 1, "curarr" }, { 0x21BA, 1, "olarr" }, { 0x21BB, 1, "orarr" },
	{ 0x21BC, 1, "lharu" }, { 0x21BD, 1, "lhard" }, { 0x21BE, 1, "uharr" },
	{ 0x21BF, 1, "uharl" }, { 0x21C0, 1, "rharu" }, { 0x21C1, 1, "rhard" },
	{ 0x21C2, 1, "dharr" }, { 0x21C3, 1, "dharl" }, { 0x21C4, 1, "rlarr" },
	{ 0x21C5, 1, "udarr" }, { 0x21C6, 1, "lrarr" }, { 0x21C7, 1, "llarr" },
	{ 0x21C8, 1, "uuarr" }, { 0x21C9, 1, "rrarr" }, { 0x21CA, 1, "ddarr" },
	{ 0x21CB, 1, "lrhar" }, { 0x21CC, 1, "rlhar" }, { 0x21CD, 1, "nlArr" },
	{ 0x21CE, 1, "nhArr" }, { 0x21CF, 1, "nrArr" }, { 0x21D0, 1, "lArr" }, { 0x21D1, 1, "uArr" },
	{ 0x21D2, 1, "rArr" }, { 0x21D3, 1, "dArr" }, { 0x21D4, 1, "iff" }, { 0x21D4, 0, "hArr" },
	{ 0x21D5, 1, "vArr" }, { 0x21D6, 1, "nwArr" }, { 0x21D7, 1, "neArr" }, { 0x21D8, 1, "seArr" },
	{ 0x21D9, 1, "swArr" }, { 0x21DA, 1, "lAarr" }, { 0x21DB, 1, "rAarr" },
	{ 0x21DD, 1, "zigrarr" }, { 0x21E4, 1, "larrb" }, { 0x21E5, 1, "rarrb" },
	{ 0x21F5, 1, "duarr" }, { 0x21FD, 1, "loarr" }, { 0x21FE, 1, "roarr" },
	{ 0x21FF, 1, "hoarr" }, { 0x2200, 1, "forall" }, { 0x2201, 1, "comp" }, { 0x2202, 1, "part" },
	{ 0x2203, 1, "exist" }, { 0x2204, 1, "nexist" }, { 0x2205, 1, "empty" }, { 0x2207, 1, "Del" },
	{ 0x2208, 1, "in" }, { 0x2209, 1, "notin" }, { 0x220B, 1, "ni" }, { 0x220C, 1, "notni" },
	{ 0x220F, 1, "prod" }, { 0x2210, 1, "coprod" }, { 0x2211, 1, "sum" }, { 0x2212, 1, "minus" },
	{ 0x2213, 1, "mp" }, { 0x2214, 1, "plusdo" }, { 0x2216, 1, "setmn" }, { 0x2217, 1, "lowast" },
	{ 0x2218, 1, "compfn" }, { 0x221A, 1, "Sqrt" }, { 0x221D, 1, "prop" }, { 0x221E, 1, "infin" },
	{ 0x221F, 1, "angrt" }, { 0x2220, 1, "ang" }, { 0x2221, 1, "angmsd" },
	{ 0x2222, 1, "angsph" }, { 0x2223, 1, "mid" }, { 0x2224, 1, "nmid" }, { 0x2225, 1, "par" },
	{ 0x2226, 1, "npar" }, { 0x2227, 1, "and" }, { 0x2228, 1, "or" }, { 0x2229, 1, "cap" },
	{ 0x222A, 1, "cup" }, { 0x222B, 1, "int" }, { 0x222C, 1, "Int" }, { 0x222D, 1, "tint" },
	{ 0x222E, 1, "oint" }, { 0x222F, 1, "Conint" }, { 0x2230, 1, "Cconint" },
	{ 0x2231, 1, "cwint" }, { 0x2232, 1, "cwconint" }, { 0x2233, 1, "awconint" },
	{ 0x2234, 1, "there4" }, { 0x2235, 1, "becaus" }, { 0x2236, 1, "ratio" },
	{ 0x2237, 1, "Colon" }, { 0x2238, 1, "minusd" }, { 0x223A, 1, "mDDot" },
	{ 0x223B, 1, "homtht" }, { 0x223C, 1, "sim" }, { 0x223D, 1, "bsim" }, { 0x223E, 1, "ac" },
	{ 0x223F, 1, "acd" }, { 0x2240, 1, "wr" }, { 0x2241, 1, "nsim" }, { 0x2242, 1, "esim" },
	{ 0x2243, 1, "sime" }, { 0x2244, 1, "nsime" }, { 0x2245, 1, "cong" }, { 0x2246, 1, "simne" },
	{ 0x2247, 1, "ncong" }, { 0x2248, 1, "ap" }, { 0x2249, 1, "nap" }, { 0x224A, 1, "ape" },
	{ 0x224B, 1, "apid" }, { 0x224C, 1, "bcong" }, { 0x224D, 1, "CupCap" }, { 0x224E, 1, "bump" },
	{ 0x224F, 1, "bumpe" }, { 0x2250, 1, "doteq" }, { 0x2251, 1, "eDot" }, { 0x2252, 1, "efDot" },
	{ 0x2253, 1, "erDot" }, { 0x2254, 1, "colone" }, { 0x2255, 1, "ecolon" },
	{ 0x2256, 1, "ecir" }, { 0x2257, 1, "cire" }, { 0x2259, 1, "wedgeq" }, { 0x225A, 1, "veeeq" },
	{ 0x225C, 1, "trie" }, { 0x225F, 1, "equest" }, { 0x2260, 1, "ne" }, { 0x2261, 1, "equiv" },
	{ 0x2262, 1, "nequiv" }, { 0x2264, 1, "le" }, { 0x2265, 1, "ge" }, { 0x2266, 1, "lE" },
	{ 0x2267, 1, "gE" }, { 0x2268, 1, "lnE" }, { 0x2269, 1, "gnE" }, { 0x226A, 1, "ll" },
	{ 0x226B, 1, "gg" }, { 0x226C, 1, "twixt" }, { 0x226D, 1, "NotCupCap" }, { 0x226E, 1, "nlt" },
	{ 0x226F, 1, "ngt" }, { 0x2270, 1, "nle" }, { 0x2271, 1, "nge" }, { 0x2272, 1, "lsim" },
	{ 0x2273, 1, "gsim" }, { 0x2274, 1, "nlsim" }, { 0x2275, 1, "ngsim" }, { 0x2276, 1, "lg" },
	{ 0x2277, 1, "gl" }, { 0x2278, 1, "ntlg" }, { 0x2279, 1, "ntgl" }, { 0x227A, 1, "pr" },
	{ 0x227B, 1, "sc" }, { 0x227C, 1, "prcue" }, { 0x227D, 1, "sccue" }, { 0x227E, 1, "prsim" },
	{ 0x227F, 1, "scsim" }, { 0x2280, 1, "npr" }, { 0x2281, 1, "nsc" }, { 0x2282, 1, "sub" },
	{ 0x2283, 1, "sup" }, { 0x2284, 1, "nsub" }, { 0x2285, 1, "nsup" }, { 0x2286, 1, "sube" },
	{ 0x2287, 1, "supe" }, { 0x2288, 1, "nsube" }, { 0x2289, 1, "nsupe" }, { 0x228A, 1, "subne" },
	{ 0x228B, 1, "supne" }, { 0x228D, 1, "cupdot" }, { 0x228E, 1, "uplus" },
	{ 0x228F, 1, "sqsub" }, { 0x2290, 1, "sqsup" }, { 0x2291, 1, "sqsube" },
	{ 0x2292, 1, "sqsupe" }, { 0x2293, 1, "sqcap" }, { 0x2294, 1, "sqcup" },
	{ 0x2295, 1, "oplus" }, { 0x2296, 1, "ominus" }, { 0x2297, 1, "otimes" },
	{ 0x2298, 1, "osol" }, { 0x2299, 1, "odot" }, { 0x229A, 1, "ocir" }, { 0x229B, 1, "oast" },
	{ 0x229D, 1, "odash" }, { 0x229E, 1, "plusb" }, { 0x229F, 1, "minusb" },
	{ 0x22A0, 1, "timesb" }, { 0x22A1, 1, "sdotb" }, { 0x22A2, 1, "vdash" },
	{ 0x22A3, 1, "dashv" }, { 0x22A4, 1, "top" }, { 0x22A5, 1, "bot" }, { 0x22A7, 1, "models" },
	{ 0x22A8, 1, "vDash" }, { 0x22A9, 1, "Vdash" }, { 0x22AA, 1, "Vvdash" },
	{ 0x22AB, 1, "VDash" }, { 0x22AC, 1, "nvdash" }, { 0x22AD, 1, "nvDash" },
	{ 0x22AE, 1, "nVdash" }, { 0x22AF, 1, "nVDash" }, { 0x22B0, 1, "prurel" },
	{ 0x22B2, 1, "vltri" }, { 0x22B3, 1, "vrtri" }, { 0x22B4, 1, "ltrie" },
	{ 0x22B5, 1, "rtrie" }, { 0x22B6, 1, "origof" }, { 0x22B7, 1, "imof" },
	{ 0x22B8, 1, "mumap" }, { 0x22B9, 1, "hercon" }, { 0x22BA, 1, "intcal" },
	{ 0x22BB, 1, "veebar" }, { 0x22BD, 1, "barvee" }, { 0x22BE, 1, "angrtvb" },
	{ 0x22BF, 1, "lrtri" }, { 0x22C0, 1, "Wedge" }, { 0x22C1, 1, "Vee" }, { 0x22C2, 1, "xcap" },
	{ 0x22C3, 1, "xcup" }, { 0x22C4, 1, "diam" }, { 0x22C5, 1, "sdot" }, { 0x22C6, 1, "Star" },
	{ 0x22C7, 1, "divonx" }, { 0x22C8, 1, "bowtie" }, { 0x22C9, 1, "ltimes" },
	{ 0x22CA, 1, "rtimes" }, { 0x22CB, 1, "lthree" }, { 0x22CC, 1, "rthree" },
	{ 0x22CD, 1, "bsime" }, { 0x22CE, 1, "cuvee" }, { 0x22CF, 1, "cuwed" }, { 0x22D0, 1, "Sub" },
	{ 0x22D1, 1, "Sup" }, { 0x22D2, 1, "Cap" }, { 0x22D3, 1, "Cup" }, { 0x22D4, 1, "fork" },
	{ 0x22D5, 1, "epar" }, { 0x22D6, 1, "ltdot" }, { 0x22D7, 1, "gtdot" }, { 0x22D8, 1, "Ll" },
	{ 0x22D9, 1, "Gg" }, { 0x22DA, 1, "leg" }, { 0x22DB, 1, "gel" }, { 0x22DE, 1, "cuepr" },
	{ 0x22DF, 1, "cuesc" }, { 0x22E0, 1, "nprcue" }, { 0x22E1, 1, "nsccue" },
	{ 0x22E2, 1, "nsqsube" }, { 0x22E3, 1, "nsqsupe" }, { 0x22E6, 1, "lnsim" },
	{ 0x22E7, 1, "gnsim" }, { 0x22E8, 1, "prnsim" }, { 0x22E9, 1, "scnsim" },
	{ 0x22EA, 1, "nltri" }, { 0x22EB, 1, "nrtri" }, { 0x22EC, 1, "nltrie" },
	{ 0x22ED, 1, "nrtrie" }, { 0x22EE, 1, "vellip" }, { 0x22EF, 1, "ctdot" },
	{ 0x22F0, 1, "utdot" }, { 0x22F1, 1, "dtdot" }, { 0x22F2, 1, "disin" },
	{ 0x22F3, 1, "isinsv" }, { 0x22F4, 1, "isins" }, { 0x22F5, 1, "isindot" },
	{ 0x22F6, 1, "notinvc" }, { 0x22F7, 1, "notinvb" }, { 0x22F9, 1, "isinE" },
	{ 0x22FA, 1, "nisd" }, { 0x22FB, 1, "xnis" }, { 0x22FC, 1, "nis" }, { 0x22FD, 1, "notnivc" },
	{ 0x22FE, 1, "notnivb" }, { 0x2305, 1, "barwed" }, { 0x2306, 1, "Barwed" },
	{ 0x2308, 1, "lceil" }, { 0x2309, 1, "rceil" }, { 0x230A, 1, "lfloor" },
	{ 0x230B, 1, "rfloor" }, { 0x230C, 1, "drcrop" }, { 0x230D, 1, "dlcrop" },
	{ 0x230E, 1, "urcrop" }, { 0x230F, 1, "ulcrop" }, { 0x2310, 1, "bnot" },
	{ 0x2312, 1, "profline" }, { 0x2313, 1, "profsurf" }, { 0x2315, 1, "telrec" },
	{ 0x2316, 1, "target" }, { 0x231C, 1, "ulcorn" }, { 0x231D, 1, "urcorn" },
	{ 0x231E, 1, "dlcorn" }, { 0x231F, 1, "drcorn" }, { 0x2322, 1, "frown" },
	{ 0x2323, 1, "smile" }, { 0x232D, 1, "cylcty" }, { 0x232E, 1, "profalar" },
	{ 0x2336, 1, "topbot" }, { 0x233D, 1, "ovbar" }, { 0x233F, 1, "solbar" },
	{ 0x237C, 1, "angzarr" }, { 0x23B0, 1, "lmoust" }, { 0x23B1, 1, "rmoust" },
	{ 0x23B4, 1, "tbrk" }, { 0x23B5, 1, "bbrk" }, { 0x23B6, 1, "bbrktbrk" },
	{ 0x23DC, 1, "OverParenthesis" }, { 0x23DD, 1, "UnderParenthesis" },
	{ 0x23DE, 1, "OverBrace" }, { 0x23DF, 1, "UnderBrace" }, { 0x23E2, 1, "trpezium" },
	{ 0x23E7, 1, "elinters" }, { 0x2423, 1, "blank" }, { 0x24C8, 1, "oS" }, { 0x2500, 1, "boxh" },
	{ 0x2502, 1, "boxv" }, { 0x250C, 1, "boxdr" }, { 0x2510, 1, "boxdl" }, { 0x2514, 1, "boxur" },
	{ 0x2518, 1, "boxul" }, { 0x251C, 1, "boxvr" }, { 0x2524, 1, "boxvl" },
	{ 0x252C, 1, "boxhd" }, { 0x2534, 1, "boxhu" }, { 0x253C, 1, "boxvh" }, { 0x2550, 1, "boxH" },
	{ 0x2551, 1, "boxV" }, { 0x2552, 1, "boxdR" }, { 0x2553, 1, "boxDr" }, { 0x2554, 1, "boxDR" },
	{ 0x2555, 1, "boxdL" }, { 0x2556, 1, "boxDl" }, { 0x2557, 1, "boxDL" },
	{ 0x2558, 1, "boxuR" }, { 0x2559, 1, "boxUr" }, { 0x255A, 1, "boxUR" },
	{ 0x255B, 1, "boxuL" }, { 0x255C, 1, "boxUl" }, { 0x255D, 1, "boxUL" },
	{ 0x255E, 1, "boxvR" }, { 0x255F, 1, "boxVr" }, { 0x2560, 1, "boxVR" },
	{ 0x2561, 1, "boxvL" }, { 0x2562, 1, "boxVl" }, { 0x2563, 1, "boxVL" },
	{ 0x2564, 1, "boxHd" }, { 0x2565, 1, "boxhD" }, { 0x2566, 1, "boxHD" },
	{ 0x2567, 1, "boxHu" }, { 0x2568, 1, "boxhU" }, { 0x2569, 1, "boxHU" },
	{ 0x256A, 1, "boxvH" }, { 0x256B, 1, "boxVh" }, { 0x256C, 1, "boxVH" },
	{ 0x2580, 1, "uhblk" }, { 0x2584, 1, "lhblk" }, { 0x2588, 1, "block" },
	{ 0x2591, 1, "blk14" }, { 0x2592, 1, "blk12" }, { 0x2593, 1, "blk34" }, { 0x25A1, 1, "squ" },
	{ 0x25AA, 1, "squf" }, { 0x25AB, 1, "EmptyVerySmallSquare" }, { 0x25AD, 1, "rect" },
	{ 0x25AE, 1, "marker" }, { 0x25B1, 1, "fltns" }, { 0x25B3, 1, "xutri" },
	{ 0x25B4, 1, "utrif" }, { 0x25B5, 1, "utri" }, { 0x25B8, 1, "rtrif" }, { 0x25B9, 1, "rtri" },
	{ 0x25BD, 1, "xdtri" }, { 0x25BE, 1, "dtrif" }, { 0x25BF, 1, "dtri" }, { 0x25C2, 1, "ltrif" },
	{ 0x25C3, 1, "ltri" }, { 0x25CA, 1, "loz" }, { 0x25CB, 1, "cir" }, { 0x25EC, 1, "tridot" },
	{ 0x25EF, 1, "xcirc" }, { 0x25F8, 1, "ultri" }, { 0x25F9, 1, "urtri" },
	{ 0x25FA, 1, "lltri" }, { 0x25FB, 1, "EmptySmallSquare" }, { 0x25FC, 1, "FilledSmallSquare" },
	{ 0x2605, 1, "starf" }, { 0x2606, 1, "star" }, { 0x260E, 1, "phone" },
	{ 0x2640, 1, "female" }, { 0x2642, 1, "male" }, { 0x2660, 1, "spades" },
	{ 0x2663, 1, "clubs" }, { 0x2665, 1, "hearts" }, { 0x2666, 1, "diams" },
	{ 0x266A, 1, "sung" }, { 0x266D, 1, "flat" }, { 0x266E, 1, "natur" }, { 0x266F, 1, "sharp" },
	{ 0x2713, 1, "check" }, { 0x2717, 1, "cross" }, { 0x2720, 1, "malt" }, { 0x2736, 1, "sext" },
	{ 0x2758, 1, "VerticalSeparator" }, { 0x2772, 1, "lbbrk" }, { 0x2773, 1, "rbbrk" },
	{ 0x27C8, 1, "bsolhsub" }, { 0x27C9, 1, "suphsol" }, { 0x27E6, 1, "lobrk" },
	{ 0x27E7, 1, "robrk" }, { 0x27E8, 1, "lang" }, { 0x27E9, 1, "rang" }, { 0x27EA, 1, "Lang" },
	{ 0x27EB, 1, "Rang" }, { 0x27EC, 1, "loang" }, { 0x27ED, 1, "roang" }, { 0x27F5, 1, "xlarr" },
	{ 0x27F6, 1, "xrarr" }, { 0x27F7, 1, "xharr" }, { 0x27F8, 1, "xlArr" },
	{ 0x27F9, 1, "xrArr" }, { 0x27FA, 1, "xhArr" }, { 0x27FC, 1, "xmap" },
	{ 0x27FF, 1, "dzigrarr" }, { 0x2902, 1, "nvlArr" }, { 0x2903, 1, "nvrArr" },
	{ 0x2904, 1, "nvHarr" }, { 0x2905, 1, "Map" }, { 0x290C, 1, "lbarr" }, { 0x290D, 1, "rbarr" },
	{ 0x290E, 1, "lBarr" }, { 0x290F, 1, "rBarr" }, { 0x2910, 1, "RBarr" },
	{ 0x2911, 1, "DDotrahd" }, { 0x2912, 1, "UpArrowBar" }, { 0x2913, 1, "DownArrowBar" },
	{ 0x2916, 1, "Rarrtl" }, { 0x2919, 1, "latail" }, { 0x291A, 1, "ratail" },
	{ 0x291B, 1, "lAtail" }, { 0x291C, 1, "rAtail" }, { 0x291D, 1, "larrfs" },
	{ 0x291E, 1, "rarrfs" }, { 0x291F, 1, "larrbfs" }, { 0x2920, 1, "rarrbfs" },
	{ 0x2923, 1, "nwarhk" }, { 0x2924, 1, "nearhk" }, { 0x2925, 1, "searhk" },
	{ 0x2926, 1, "swarhk" }, { 0x2927, 1, "nwnear" }, { 0x2928, 1, "toea" },
	{ 0x2929, 1, "tosa" }, { 0x292A, 1, "swnwar" }, { 0x2933, 1, "rarrc" },
	{ 0x2935, 1, "cudarrr" }, { 0x2936, 1, "ldca" }, { 0x2937, 1, "rdca" },
	{ 0x2938, 1, "cudarrl" }, { 0x2939, 1, "larrpl" }, { 0x293C, 1, "curarrm" },
	{ 0x293D, 1, "cularrp" }, { 0x2945, 1, "rarrpl" }, { 0x2948, 1, "harrcir" },
	{ 0x2949, 1, "Uarrocir" }, { 0x294A, 1, "lurdshar" }, { 0x294B, 1, "ldrushar" },
	{ 0x294E, 1, "LeftRightVector" }, { 0x294F, 1, "RightUpDownVector" },
	{ 0x2950, 1, "DownLeftRightVector" }, { 0x2951, 1, "LeftUpDownVector" },
	{ 0x2952, 1, "LeftVectorBar" }, { 0x2953, 1, "RightVectorBar" },
	{ 0x2954, 1, "RightUpVectorBar" }, { 0x2955, 1, "RightDownVectorBar" },
	{ 0x2956, 1, "DownLeftVectorBar" }, { 0x2957, 1, "DownRightVectorBar" },
	{ 0x2958, 1, "LeftUpVectorBar" }, { 0x2959, 1, "LeftDownVectorBar" },
	{ 0x295A, 1, "LeftTeeVector" }, { 0x295B, 1, "RightTeeVector" },
	{ 0x295C, 1, "RightUpTeeVector" }, { 0x295D, 1, "RightDownTeeVector" },
	{ 0x295E, 1, "DownLeftTeeVector" }, { 0x295F, 1, "DownRightTeeVector" },
	{ 0x2960, 1, "LeftUpTeeVector" }, { 0x2961, 1, "LeftDownTeeVector" }, { 0x2962, 1, "lHar" },
	{ 0x2963, 1, "uHar" }, { 0x2964, 1, "rHar" }, { 0x2965, 1, "dHar" }, { 0x2966, 1, "luruhar" },
	{ 0x2967, 1, "ldrdhar" }, { 0x2968, 1, "ruluhar" }, { 0x2969, 1, "rdldhar" },
	{ 0x296A, 1, "lharul" }, { 0x296B, 1, "llhard" }, { 0x296C, 1, "rharul" },
	{ 0x296D, 1, "lrhard" }, { 0x296E, 1, "udhar" }, { 0x296F, 1, "duhar" },
	{ 0x2970, 1, "RoundImplies" }, { 0x2971, 1, "erarr" }, { 0x2972, 1, "simrarr" },
	{ 0x2973, 1, "larrsim" }, { 0x2974, 1, "rarrsim" }, { 0x2975, 1, "rarrap" },
	{ 0x2976, 1, "ltlarr" }, { 0x2978, 1, "gtrarr" }, { 0x2979, 1, "subrarr" },
	{ 0x297B, 1, "suplarr" }, { 0x297C, 1, "lfisht" }, { 0x297D, 1, "rfisht" },
	{ 0x297E, 1, "ufisht" }, { 0x297F, 1, "dfisht" }, { 0x2985, 1, "lopar" },
	{ 0x2986, 1, "ropar" }, { 0x298B, 1, "lbrke" }, { 0x298C, 1, "rbrke" },
	{ 0x298D, 1, "lbrkslu" }, { 0x298E, 1, "rbrksld" }, { 0x298F, 1, "lbrksld" },
	{ 0x2990, 1, "rbrkslu" }, { 0x2991, 1, "langd" }, { 0x2992, 1, "rangd" },
	{ 0x2993, 1, "lparlt" }, { 0x2994, 1, "rpargt" }, { 0x2995, 1, "gtlPar" },
	{ 0x2996, 1, "ltrPar" }, { 0x299A, 1, "vzigzag" }, { 0x299C, 1, "vangrt" },
	{ 0x299D, 1, "angrtvbd" }, { 0x29A4, 1, "ange" }, { 0x29A5, 1, "range" },
	{ 0x29A6, 1, "dwangle" }, { 0x29A7, 1, "uwangle" }, { 0x29A8, 1, "angmsdaa" },
	{ 0x29A9, 1, "angmsdab" }, { 0x29AA, 1, "angmsdac" }, { 0x29AB, 1, "angmsdad" },
	{ 0x29AC, 1, "angmsdae" }, { 0x29AD, 1, "angmsdaf" }, { 0x29AE, 1, "angmsdag" },
	{ 0x29AF, 1, "angmsdah" }, { 0x29B0, 1, "bemptyv" }, { 0x29B1, 1, "demptyv" },
	{ 0x29B2, 1, "cemptyv" }, { 0x29B3, 1, "raemptyv" }, { 0x29B4, 1, "laemptyv" },
	{ 0x29B5, 1, "ohbar" }, { 0x29B6, 1, "omid" }, { 0x29B7, 1, "opar" }, { 0x29B9, 1, "operp" },
	{ 0x29BB, 1, "olcross" }, { 0x29BC, 1, "odsold" }, { 0x29BE, 1, "olcir" },
	{ 0x29BF, 1, "ofcir" }, { 0x29C0, 1, "olt" }, { 0x29C1, 1, "ogt" }, { 0x29C2, 1, "cirscir" },
	{ 0x29C3, 1, "cirE" }, { 0x29C4, 1, "solb" }, { 0x29C5, 1, "bsolb" }, { 0x29C9, 1, "boxbox" },
	{ 0x29CD, 1, "trisb" }, { 0x29CE, 1, "rtriltri" }, { 0x29CF, 1, "LeftTriangleBar" },
	{ 0x29D0, 1, "RightTriangleBar" }, { 0x29DC, 1, "iinfin" }, { 0x29DD, 1, "infintie" },
	{ 0x29DE, 1, "nvinfin" }, { 0x29E3, 1, "eparsl" }, { 0x29E4, 1, "smeparsl" },
	{ 0x29E5, 1, "eqvparsl" }, { 0x29EB, 1, "lozf" }, { 0x29F4, 1, "RuleDelayed" },
	{ 0x29F6, 1, "dsol" }, { 0x2A00, 1, "xodot" }, { 0x2A01, 1, "xoplus" },
	{ 0x2A02, 1, "xotime" }, { 0x2A04, 1, "xuplus" }, { 0x2A06, 1, "xsqcup" },
	{ 0x2A0C, 1, "qint" }, { 0x2A0D, 1, "fpartint" }, { 0x2A10, 1, "cirfnint" },
	{ 0x2A11, 1, "awint" }, { 0x2A12, 1, "rppolint" }, { 0x2A13, 1, "scpolint" },
	{ 0x2A14, 1, "npolint" }, { 0x2A15, 1, "pointint" }, { 0x2A16, 1, "quatint" },
	{ 0x2A17, 1, "intlarhk" }, { 0x2A22, 1, "pluscir" }, { 0x2A23, 1, "plusacir" },
	{ 0x2A24, 1, "simplus" }, { 0x2A25, 1, "plusdu" }, { 0x2A26, 1, "plussim" },
	{ 0x2A27, 1, "plustwo" }, { 0x2A29, 1, "mcomma" }, { 0x2A2A, 1, "minusdu" },
	{ 0x2A2D, 1, "loplus" }, { 0x2A2E, 1, "roplus" }, { 0x2A2F, 1, "Cross" },
	{ 0x2A30, 1, "timesd" }, { 0x2A31, 1, "timesbar" }, { 0x2A33, 1, "smashp" },
	{ 0x2A34, 1, "lotimes" }, { 0x2A35, 1, "rotimes" }, { 0x2A36, 1, "otimesas" },
	{ 0x2A37, 1, "Otimes" }, { 0x2A38, 1, "odiv" }, { 0x2A39, 1, "triplus" },
	{ 0x2A3A, 1, "triminus" }, { 0x2A3B, 1, "tritime" }, { 0x2A3C, 1, "iprod" },
	{ 0x2A3F, 1, "amalg" }, { 0x2A40, 1, "capdot" }, { 0x2A42, 1, "ncup" }, { 0x2A43, 1, "ncap" },
	{ 0x2A44, 1, "capand" }, { 0x2A45, 1, "cupor" }, { 0x2A46, 1, "cupcap" },
	{ 0x2A47, 1, "capcup" }, { 0x2A48, 1, "cupbrcap" }, { 0x2A49, 1, "capbrcup" },
	{ 0x2A4A, 1, "cupcup" }, { 0x2A4B, 1, "capcap" }, { 0x2A4C, 1, "ccups" },
	{ 0x2A4D, 1, "ccaps" }, { 0x2A50, 1, "ccupssm" }, { 0x2A53, 1, "And" }, { 0x2A54, 1, "Or" },
	{ 0x2A55, 1, "andand" }, { 0x2A56, 1, "oror" }, { 0x2A57, 1, "orslope" },
	{ 0x2A58, 1, "andslope" }, { 0x2A5A, 1, "andv" }, { 0x2A5B, 1, "orv" }, { 0x2A5C, 1, "andd" },
	{ 0x2A5D, 1, "ord" }, { 0x2A5F, 1, "wedbar" }, { 0x2A66, 1, "sdote" },
	{ 0x2A6A, 1, "simdot" }, { 0x2A6D, 1, "congdot" }, { 0x2A6E, 1, "easter" },
	{ 0x2A6F, 1, "apacir" }, { 0x2A70, 1, "apE" }, { 0x2A71, 1, "eplus" }, { 0x2A72, 1, "pluse" },
	{ 0x2A73, 1, "Esim" }, { 0x2A74, 1, "Colone" }, { 0x2A75, 1, "Equal" },
	{ 0x2A77, 1, "eDDot" }, { 0x2A78, 1, "equivDD" }, { 0x2A79, 1, "ltcir" },
	{ 0x2A7A, 1, "gtcir" }, { 0x2A7B, 1, "ltquest" }, { 0x2A7C, 1, "gtquest" },
	{ 0x2A7D, 1, "les" }, { 0x2A7E, 1, "ges" }, { 0x2A7F, 1, "lesdot" }, { 0x2A80, 1, "gesdot" },
	{ 0x2A81, 1, "lesdoto" }, { 0x2A82, 1, "gesdoto" }, { 0x2A83, 1, "lesdotor" },
	{ 0x2A84, 1, "gesdotol" }, { 0x2A85, 1, "lap" }, { 0x2A86, 1, "gap" }, { 0x2A87, 1, "lne" },
	{ 0x2A88, 1, "gne" }, { 0x2A89, 1, "lnap" }, { 0x2A8A, 1, "gnap" }, { 0x2A8B, 1, "lEg" },
	{ 0x2A8C, 1, "gEl" }, { 0x2A8D, 1, "lsime" }, { 0x2A8E, 1, "gsime" }, { 0x2A8F, 1, "lsimg" },
	{ 0x2A90, 1, "gsiml" }, { 0x2A91, 1, "lgE" }, { 0x2A92, 1, "glE" }, { 0x2A93, 1, "lesges" },
	{ 0x2A94, 1, "gesles" }, { 0x2A95, 1, "els" }, { 0x2A96, 1, "egs" }, { 0x2A97, 1, "elsdot" },
	{ 0x2A98, 1, "egsdot" }, { 0x2A99, 1, "el" }, { 0x2A9A, 1, "eg" }, { 0x2A9D, 1, "siml" },
	{ 0x2A9E, 1, "simg" }, { 0x2A9F, 1, "simlE" }, { 0x2AA0, 1, "simgE" },
	{ 0x2AA1, 1, "LessLess" }, { 0x2AA2, 1, "GreaterGreater" }, { 0x2AA4, 1, "glj" },
	{ 0x2AA5, 1, "gla" }, { 0x2AA6, 1, "ltcc" }, { 0x2AA7, 1, "gtcc" }, { 0x2AA8, 1, "lescc" },
	{ 0x2AA9, 1, "gescc" }, { 0x2AAA, 1, "smt" }, { 0x2AAB, 1, "lat" }, { 0x2AAC, 1, "smte" },
	{ 0x2AAD, 1, "late" }, { 0x2AAE, 1, "bumpE" }, { 0x2AAF, 1, "pre" }, { 0x2AB0, 1, "sce" },
	{ 0x2AB3, 1, "prE" }, { 0x2AB4, 1, "scE" }, { 0x2AB5, 1, "prnE" }, { 0x2AB6, 1, "scnE" },
	{ 0x2AB7, 1, "prap" }, { 0x2AB8, 1, "scap" }, { 0x2AB9, 1, "prnap" }, { 0x2ABA, 1, "scnap" },
	{ 0x2ABB, 1, "Pr" }, { 0x2ABC, 1, "Sc" }, { 0x2ABD, 1, "subdot" }, { 0x2ABE, 1, "supdot" },
	{ 0x2ABF, 1, "subplus" }, { 0x2AC0, 1, "supplus" }, { 0x2AC1, 1, "submult" },
	{ 0x2AC2, 1, "supmult" }, { 0x2AC3, 1, "subedot" }, { 0x2AC4, 1, "supedot" },
	{ 0x2AC5, 1, "subE" }, { 0x2AC6, 1, "supE" }, { 0x2AC7, 1, "subsim" },
	{ 0x2AC8, 1, "supsim" }, { 0x2ACB, 1, "subnE" }, { 0x2ACC, 1, "supnE" },
	{ 0x2ACF, 1, "csub" }, { 0x2AD0, 1, "csup" }, { 0x2AD1, 1, "csube" }, { 0x2AD2, 1, "csupe" },
	{ 0x2AD3, 1, "subsup" }, { 0x2AD4, 1, "supsub" }, { 0x2AD5, 1, "subsub" },
	{ 0x2AD6, 1, "supsup" }, { 0x2AD7, 1, "suphsub" }, { 0x2AD8, 1, "supdsub" },
	{ 0x2AD9, 1, "forkv" }, { 0x2ADA, 1, "topfork" }, { 0x2ADB, 1, "mlcp" },
	{ 0x2AE4, 1, "Dashv" }, { 0x2AE6, 1, "Vdashl" }, { 0x2AE7, 1, "Barv" }, { 0x2AE8, 1, "vBar" },
	{ 0x2AE9, 1, "vBarv" }, { 0x2AEB, 1, "Vbar" }, { 0x2AEC, 1, "Not" }, { 0x2AED, 1, "bNot" },
	{ 0x2AEE, 1, "rnmid" }, { 0x2AEF, 1, "cirmid" }, { 0x2AF0, 1, "midcir" },
	{ 0x2AF1, 1, "topcir" }, { 0x2AF2, 1, "nhpar" }, { 0x2AF3, 1, "parsim" },
	{ 0x2AFD, 1, "parsl" }, { 0xFB00, 1, "fflig" }, { 0xFB01, 1, "filig" },
	{ 0xFB02, 1, "fllig" }, { 0xFB03, 1, "ffilig" }, { 0xFB04, 1, "ffllig" },
};

static const uint16_t entity_by_name[] = {
	56, 3, 50, 117, 51, 321, 49, 248, 115, 1179, 119, 55, 52, 53, 1295, 826, 322, 249, 488, 344,
	22, 121, 785, 127, 57, 123, 634, 125, 489, 269, 641, 1199, 633, 457, 1151, 786, 662, 500, 983,
	308, 311, 320, 429, 532, 1293, 129, 325, 600, 251, 456, 985, 247, 1018, 1032, 1024, 1033,
	1025, 131, 184, 66, 59, 139, 60, 350, 135, 58, 133, 934, 913, 137, 252, 1200, 491, 1198, 254,
	61, 341, 935, 492, 309, 8, 250, 301, 143, 147, 141, 324, 145, 792, 1242, 347, 148, 461, 462,
	460, 150, 326, 160, 307, 63, 64, 329, 158, 62, 466, 154, 630, 156, 256, 465, 152, 312, 65,
	162, 330, 314, 310, 342, 318, 257, 164, 331, 315, 6, 167, 258, 962, 529, 171, 169, 332, 1035,
	1027, 1016, 1028, 1115, 1019, 1034, 1026, 1020, 1241, 791, 173, 468, 175, 977, 333, 449, 493,
	259, 316, 177, 181, 179, 334, 450, 11, 470, 1299, 689, 67, 260, 190, 69, 70, 335, 188, 68,
	186, 262, 1180, 74, 71, 1158, 72, 859, 857, 336, 268, 263, 475, 1264, 438, 270, 1, 476, 982,
	28, 192, 963, 531, 986, 196, 194, 337, 478, 264, 1031, 1023, 1029, 1116, 1017, 1030, 1022,
	1021, 480, 1050, 477, 1124, 346, 345, 349, 198, 1265, 204, 202, 200, 338, 265, 614, 773, 783,
	784, 80, 483, 317, 343, 266, 208, 206, 339, 255, 210, 76, 530, 1013, 319, 216, 77, 340, 220,
	75, 214, 860, 858, 222, 984, 298, 267, 218, 212, 78, 748, 1298, 323, 746, 1294, 768, 417, 953,
	747, 224, 767, 261, 352, 313, 351, 79, 226, 348, 228, 327, 229, 233, 328, 231, 407, 253, 486,
	484, 83, 118, 647, 648, 84, 35, 353, 88, 451, 82, 496, 495, 272, 116, 1164, 2, 625, 1181,
	1187, 1184, 1185, 618, 1081, 619, 1085, 1086, 1087, 1088, 1089, 1090, 1091, 1092, 617, 765,
	1080, 620, 54, 851, 120, 657, 1195, 1194, 659, 660, 4, 87, 85, 86, 637, 1134, 1300, 764, 825,
	855, 856, 661, 354, 426, 639, 1093, 306, 273, 497, 863, 909, 908, 910, 907, 835, 743, 775,
	883, 880, 882, 879, 876, 898, 901, 896, 899, 889, 886, 888, 885, 877, 904, 895, 892, 903, 894,
	891, 1112, 881, 878, 868, 867, 865, 897, 900, 873, 874, 887, 884, 870, 869, 866, 902, 893,
	890, 875, 872, 871, 440, 241, 17, 447, 646, 780, 1111, 956, 430, 431, 663, 1253, 664, 122,
	627, 1168, 1173, 1175, 1171, 1165, 444, 240, 1177, 128, 89, 124, 1176, 1178, 126, 40, 1095,
	13, 39, 376, 949, 294, 928, 1109, 239, 672, 1133, 1302, 1108, 942, 669, 595, 613, 654, 1192,
	606, 21, 472, 549, 950, 1280, 1282, 1281, 1283, 810, 1007, 1004, 795, 796, 550, 1010, 628,
	1172, 1170, 1174, 720, 1169, 551, 1009, 15, 781, 782, 636, 635, 846, 577, 1039, 428, 499, 519,
	412, 741, 246, 130, 357, 501, 568, 30, 275, 1094, 1063, 561, 560, 771, 944, 19, 813, 105, 106,
	774, 386, 842, 832, 242, 665, 843, 831, 389, 1125, 132, 812, 924, 923, 590, 1049, 1083, 398,
	973, 1201, 666, 91, 1193, 140, 671, 92, 670, 382, 136, 502, 667, 1236, 90, 1232, 1234, 1235,
	862, 469, 1231, 1233, 134, 599, 400, 401, 402, 185, 399, 138, 788, 1120, 1196, 276, 305, 676,
	678, 1202, 1122, 668, 1051, 490, 651, 278, 98, 93, 454, 597, 373, 939, 1311, 1308, 1312, 1309,
	946, 1310, 916, 235, 594, 787, 1290, 1132, 46, 504, 44, 506, 510, 512, 505, 507, 47, 508, 513,
	509, 511, 514, 515, 446, 844, 683, 1222, 237, 274, 302, 1216, 144, 142, 356, 146, 681, 794,
	1208, 1248, 1210, 1212, 1214, 1230, 687, 498, 387, 699, 1228, 1244, 1243, 685, 1220, 1218,
	802, 9, 459, 695, 1224, 1226, 7, 1246, 1204, 790, 1076, 1206, 1057, 579, 406, 45, 379, 520,
	1012, 543, 464, 149, 943, 434, 761, 593, 644, 416, 151, 445, 413, 95, 453, 96, 361, 358, 12,
	578, 94, 503, 1117, 487, 161, 155, 467, 159, 759, 236, 601, 458, 616, 1118, 629, 762, 1140,
	385, 157, 280, 1163, 48, 819, 816, 815, 814, 452, 153, 390, 97, 163, 362, 238, 392, 388, 281,
	303, 165, 363, 166, 374, 396, 585, 574, 989, 980, 682, 1221, 1036, 168, 1097, 282, 960, 1072,
	1215, 24, 516, 588, 993, 991, 539, 541, 1008, 1053, 533, 1250, 987, 1252, 978, 954, 1066,
	1070, 1068, 172, 170, 827, 364, 1005, 423, 427, 1041, 1015, 547, 680, 793, 1207, 1247, 1209,
	1211, 1213, 1229, 1060, 829, 698, 1227, 555, 554, 1044, 906, 393, 686, 565, 1045, 933, 174,
	852, 684, 1219, 1217, 801, 964, 591, 958, 1064, 1149, 1155, 612, 927, 1123, 1074, 564, 569,
	1047, 410, 766, 441, 545, 694, 1223, 1225, 418, 422, 176, 5, 1245, 1203, 789, 778, 776, 1056,
	1205, 1077, 926, 756, 925, 1014, 1040, 643, 29, 940, 951, 537, 538, 535, 536, 915, 1147, 365,
	415, 485, 36, 621, 1303, 38, 608, 737, 642, 1148, 1292, 433, 744, 609, 283, 760, 752, 751,
	178, 658, 183, 947, 10, 1167, 182, 180, 656, 1166, 366, 414, 677, 582, 996, 523, 679, 598,
	693, 697, 691, 572, 544, 1305, 603, 822, 820, 394, 571, 526, 432, 692, 696, 690, 805, 807,
	622, 25, 602, 818, 817, 604, 824, 823, 624, 1137, 708, 797, 573, 527, 806, 808, 709, 798, 650,
	653, 799, 800, 712, 716, 713, 717, 701, 99, 700, 284, 471, 403, 750, 976, 749, 1119, 974, 975,
	581, 995, 522, 999, 864, 101, 734, 733, 102, 367, 735, 189, 1159, 732, 1103, 191, 1105, 244,
	100, 1107, 1098, 271, 632, 552, 1104, 1102, 443, 1106, 187, 296, 286, 1099, 729, 1100, 1101,
	728, 626, 553, 1188, 23, 42, 758, 1182, 1183, 1186, 494, 107, 731, 103, 730, 1157, 104, 849,
	623, 37, 1306, 1307, 596, 368, 435, 436, 293, 299, 938, 287, 300, 463, 1142, 736, 1141, 610,
	1144, 1197, 32, 1145, 1146, 31, 1138, 14, 702, 1256, 1260, 704, 1254, 437, 1258, 1262, 803,
	605, 847, 836, 837, 615, 706, 753, 295, 404, 1131, 448, 1139, 0, 586, 576, 990, 981, 1038,
	193, 1096, 961, 1073, 1082, 43, 518, 1055, 589, 994, 1003, 992, 540, 542, 1011, 1054, 534,
	528, 988, 640, 979, 955, 1067, 1069, 1071, 197, 195, 828, 369, 1006, 1043, 424, 425, 548, 479,
	914, 27, 1061, 830, 559, 558, 1046, 288, 304, 243, 562, 570, 411, 853, 1301, 965, 592, 959,
	1065, 1150, 1156, 1075, 1135, 567, 442, 546, 419, 420, 779, 777, 921, 757, 920, 1114, 1042,
	481, 199, 421, 703, 1257, 1261, 205, 705, 1255, 203, 201, 1259, 1263, 804, 1136, 707, 370,
	772, 739, 1190, 583, 997, 524, 18, 611, 952, 948, 378, 377, 26, 290, 289, 645, 1191, 652,
	1238, 1240, 1237, 1239, 655, 1143, 1052, 1154, 1121, 845, 1249, 1251, 381, 1110, 850, 941,
	726, 727, 722, 724, 723, 725, 911, 912, 937, 936, 710, 1274, 1266, 714, 1272, 1270, 1278, 718,
	1268, 1058, 1276, 1286, 1284, 607, 945, 711, 41, 33, 34, 1275, 1267, 1289, 715, 1273, 957,
	1288, 1059, 1271, 1279, 719, 1269, 1277, 1285, 1287, 584, 998, 525, 1002, 81, 839, 291, 854,
	209, 207, 371, 455, 838, 638, 279, 297, 405, 113, 245, 73, 738, 1153, 1152, 631, 1000, 742,
	848, 1304, 1291, 1001, 439, 482, 929, 675, 1161, 1160, 1113, 1162, 861, 375, 395, 211, 688,
	575, 1037, 109, 517, 397, 217, 110, 372, 563, 221, 1048, 1062, 108, 557, 556, 905, 840, 834,
	931, 215, 20, 223, 721, 292, 841, 833, 219, 932, 811, 213, 919, 918, 566, 111, 1084, 580,
	1296, 1297, 745, 1079, 521, 355, 740, 763, 674, 809, 754, 755, 1078, 225, 1189, 673, 474, 473,
	649, 769, 930, 770, 922, 971, 968, 285, 969, 966, 972, 821, 1126, 1127, 1128, 970, 967, 1130,
	1129, 917, 112, 384, 227, 380, 16, 391, 383, 114, 230, 234, 360, 232, 277, 359, 587, 409, 408,
};

#define ENTITY_COUNT (sizeof(entities) / sizeof(entities[0]))

/* The entity named exactly name[0..len), or NULL. */
static const struct entity *entity_by_name_find(const char *name, size_t len)
{
	size_t lo = 0, hi = ENTITY_COUNT;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct entity *e = &entities[entity_by_name[mid]];
		int c = strncmp(e->name, name, len);
		if (c == 0 && e->name[len] != '\0')
			c = 1;
		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The name he emits for cp, or NULL. */
static const char *entity_name_for(uint32_t cp)
{
	size_t lo = 0, hi = ENTITY_COUNT;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (entities[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ENTITY_COUNT && entities[lo].cp == cp; lo++)
		if (entities[lo].flags & ENT_ENCODE)
			return entities[lo].name;
	return NULL;
}

/* ---- text → HTML (WildDuck's textToHtml) ---- */

/* he.encode(str, {useNamedReferences: true}). */
static int he_encode(const char *s, size_t len, struct wd_buffer *out)
{
	int ret = WD_OK;
	for (size_t i = 0; i < len && ret == WD_OK;) {
		size_t at = i;
		uint32_t cp = wd__utf8_get(s, len, &i);
		const char *name = NULL;
		if (cp == '"' || cp == '&' || cp == '\'' || cp == '<' || cp == '>' || cp == '`' ||
		    cp >= 0xa0)
			name = cp < 0x10000 ? entity_name_for(cp) : NULL;
		if (name != NULL) {
			ret = wd_buffer_printf(out, "&%s;", name);
		} else if ((cp >= 0x01 && cp <= 0x09) || cp == 0x0b || cp == 0x0c ||
			   (cp >= 0x0e && cp <= 0x1f) || cp == 0x7f || cp == 0x81 || cp == 0x8d ||
			   cp == 0x8f || cp == 0x90 || cp == 0x9d || cp >= 0xa0) {
			ret = wd_buffer_printf(out, "&#x%X;", (unsigned)cp);
		} else {
			ret = wd_buffer_append(out, s + at, i - at);
		}
	}
	return ret;
}

int wd__text_to_html(const char *text, size_t len, struct wd_buffer *out)
{
	struct wd_buffer enc = WD_BUFFER_INIT;
	int ret = he_encode(text, len, &enc);
	/* NULL when the text encoded to nothing (NULL + 0 is undefined) */
	char *e = enc.data == NULL ? NULL : (char *)enc.data + enc.start;
	size_t n = 0;
	/* \r?\n → \n */
	for (size_t i = 0; i < enc.len; i++) {
		if (e[i] == '\r' && i + 1 < enc.len && e[i + 1] == '\n')
			continue;
		e[n++] = e[i];
	}
	/* trim (only ' ', \r and \n are left unescaped), then the trailing
	   [ \t]+ of every line, then trim again */
	size_t a = 0, b = n;
	while (a < b && (e[a] == ' ' || e[a] == '\n' || e[a] == '\r'))
		a++;
	while (b > a && (e[b - 1] == ' ' || e[b - 1] == '\n' || e[b - 1] == '\r'))
		b--;
	size_t m = a;
	for (size_t i = a; i < b; i++) {
		if (e[i] == '\n' || e[i] == '\r') {
			while (m > a && (e[m - 1] == ' ' || e[m - 1] == '\t'))
				m--;
		}
		e[m++] = e[i];
	}
	while (m > a && (e[m - 1] == ' ' || e[m - 1] == '\t'))
		m--;
	b = m;
	while (a < b && (e[a] == ' ' || e[a] == '\n' || e[a] == '\r'))
		a++;
	while (b > a && (e[b - 1] == ' ' || e[b - 1] == '\n' || e[b - 1] == '\r'))
		b--;
	if (ret == WD_OK)
		ret = wd_buffer_append_str(out, "<p>");
	for (size_t i = a; i < b && ret == WD_OK;) {
		if (e[i] != '\n') {
			size_t j = i;
			while (j < b && e[j] != '\n')
				j++;
			ret = wd_buffer_append(out, e + i, j - i);
			i = j;
			continue;
		}
		size_t j = i;
		while (j < b && e[j] == '\n')
			j++;
		ret = wd_buffer_append_str(out, j - i > 1 ? "</p><p>" : "<br/>");
		i = j;
	}
	if (ret == WD_OK)
		ret = wd_buffer_append_str(out, "</p>");
	wd_buffer_release(&enc);
	return ret;
}

/* ---- HTML → DOM (htmlparser2's rules, HTML mode) ---- */

enum hnode_kind {
	HN_TEXT,
	HN_ELEM,
	HN_OTHER, /* comment, declaration, processing instruction */
};

/* The attributes the formatters read. */
struct hattrs {
	const char *href, *src, *alt, *start, *type;
};

#define HATTR(node, field) ((node)->attrs != NULL ? (node)->attrs->field : NULL)

struct hnode {
	enum hnode_kind kind;
	const char *name; /* element name, lower-case */
	char *text;       /* HN_TEXT, decoded; grows while text is appended */
	size_t text_len, text_cap;
	const struct hattrs *attrs; /* NULL when it has none of them */
	bool raw;         /* script / style: content dropped */
	struct hnode *parent, *first, *last, *next;
};

struct hparser {
	struct wd_arena *arena;
	const char *s;
	size_t len;
	struct hnode root;
	struct hnode *cur;
	uint32_t depth;
	size_t nodes;
	bool oom;
};

static const char *const void_elements[] = { "area", "base", "basefont", "br", "col", "command",
					     "embed", "frame", "hr", "image", "img", "input",
					     "isindex", "keygen", "link", "meta", "param",
					     "source", "track", "wbr", NULL };

static bool in_list(const char *name, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/* htmlparser2's openImpliesClose: opening `name` first closes these while
   they are the current element. */
static const char *const *implied_closes(const char *name)
{
	static const char *const p[] = { "p", NULL };
	static const char *const tr[] = { "tr", "th", "td", NULL };
	static const char *const th[] = { "th", NULL };
	static const char *const td[] = { "thead", "th", "td", NULL };
	static const char *const body[] = { "head", "link", "script", NULL };
	static const char *const li[] = { "li", NULL };
	static const char *const form[] = { "input", "option", "optgroup", "select", "button",
					    "datalist", "textarea", NULL };
	static const char *const option[] = { "option", NULL };
	static const char *const optgroup[] = { "optgroup", "option", NULL };
	static const char *const ddt[] = { "dd", "dt", NULL };
	static const char *const rtp[] = { "rt", "rp", NULL };
	static const char *const tsect[] = { "thead", "tbody", NULL };
	static const char *const p_closers[] = { "p", "h1", "h2", "h3", "h4", "h5", "h6", "address",
						 "article", "aside", "blockquote", "details", "div",
						 "dl", "fieldset", "figcaption", "figure", "footer",
						 "form", "header", "hr", "main", "nav", "ol", "pre",
						 "section", "table", "ul", NULL };
	static const char *const form_openers[] = { "select", "input", "output", "button",
						    "datalist", "textarea", NULL };
	if (in_list(name, p_closers))
		return p;
	if (in_list(name, form_openers))
		return form;
	if (strcmp(name, "tr") == 0)
		return tr;
	if (strcmp(name, "th") == 0)
		return th;
	if (strcmp(name, "td") == 0)
		return td;
	if (strcmp(name, "body") == 0)
		return body;
	if (strcmp(name, "li") == 0)
		return li;
	if (strcmp(name, "option") == 0)
		return option;
	if (strcmp(name, "optgroup") == 0)
		return optgroup;
	if (strcmp(name, "dd") == 0 || strcmp(name, "dt") == 0)
		return ddt;
	if (strcmp(name, "rt") == 0 || strcmp(name, "rp") == 0)
		return rtp;
	if (strcmp(name, "tbody") == 0 || strcmp(name, "tfoot") == 0)
		return tsect;
	return NULL;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static struct hnode *node_add(struct hparser *p, enum hnode_kind kind)
{
	if (kind != HN_TEXT && p->nodes >= H2T_MAX_NODES)
		return NULL;
	p->nodes++;
	struct hnode *n = wd_arena_zalloc(p->arena, sizeof(*n));
	if (n == NULL) {
		p->oom = true;
		return NULL;
	}
	n->kind = kind;
	n->parent = p->cur;
	if (p->cur->last != NULL)
		p->cur->last->next = n;
	else
		p->cur->first = n;
	p->cur->last = n;
	return n;
}

/* Append to the current text node (adjacent text merges, as domhandler
   does). Text nodes grow by doubling in the arena. */
static void text_append(struct hparser *p, const char *s, size_t len)
{
	if (len == 0 || p->oom)
		return;
	struct hnode *t = p->cur->last;
	if (t == NULL || t->kind != HN_TEXT) {
		t = node_add(p, HN_TEXT);
		if (t == NULL)
			return;
	}
	if (t->text_len + len > t->text_cap) {
		size_t cap = t->text_cap == 0 ? 64 : t->text_cap;
		while (cap < t->text_len + len)
			cap *= 2;
		char *n = wd_arena_alloc(p->arena, cap);
		if (n == NULL) {
			p->oom = true;
			return;
		}
		if (t->text_len > 0)
			memcpy(n, t->text, t->text_len);
		t->text = n;
		t->text_cap = cap;
	}
	memcpy(t->text + t->text_len, s, len);
	t->text_len += len;
}

/* Windows-1252 meanings of numeric references 0x80–0x9F (HTML spec). */
static const uint16_t c1_remap[32] = {
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
	0x2039, 0x0152, 0x008d, 0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
	0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

/* Decode a character reference at s[*i] == '&'. Returns the code point and
   advances *i, or returns 0 (and leaves *i) when it is not one. */
static uint32_t decode_entity(const char *s, size_t len, size_t *i, bool attribute)
{
	size_t j = *i + 1;
	if (j < len && s[j] == '#') {
		j++;
		bool hex = j < len && (s[j] == 'x' || s[j] == 'X');
		if (hex)
			j++;
		size_t d = j;
		uint32_t cp = 0;
		while (j < len && (hex ? g_ascii_isxdigit(s[j]) : g_ascii_isdigit(s[j]))) {
			if (cp <= 0x10ffff)
				cp = cp * (hex ? 16 : 10) +
				     (uint32_t)(hex ? g_ascii_xdigit_value(s[j]) : s[j] - '0');
			j++;
		}
		if (j == d)
			return 0;
		if (j < len && s[j] == ';')
			j++;
		*i = j;
		if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0xfffd;
		if (cp >= 0x80 && cp <= 0x9f)
			return c1_remap[cp - 0x80];
		return cp;
	}
	size_t n = 0;
	while (j + n < len && n < 32 && is_alnum(s[j + n]))
		n++;
	if (n == 0)
		return 0;
	if (j + n < len && s[j + n] == ';') {
		const struct entity *e = entity_by_name_find(s + j, n);
		if (e != NULL) {
			*i = j + n + 1;
			return e->cp;
		}
	}
	/* legacy names without ';': the longest prefix */
	for (size_t k = n; k >= 2; k--) {
		const struct entity *e = entity_by_name_find(s + j, k);
		if (e == NULL || !(e->flags & ENT_LEGACY))
			continue;
		if (attribute && j + k < len && (is_alnum(s[j + k]) || s[j + k] == '='))
			return 0;
		*i = j + k;
		return e->cp;
	}
	return 0;
}

static size_t utf8_encode(uint32_t cp, char *b)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Append s[0..len) with character references decoded. */
static void decode_text(struct hparser *p, const char *s, size_t len)
{
	size_t run = 0;
	for (size_t i = 0; i < len;) {
		if (s[i] != '&') {
			i++;
			continue;
		}
		size_t at = i;
		uint32_t cp = decode_entity(s, len, &i, false);
		if (cp == 0) {
			i++;
			continue;
		}
		text_append(p, s + run, at - run);
		char b[4];
		size_t nb = utf8_encode(cp, b);
		text_append(p, b, nb);
		run = i;
	}
	text_append(p, s + run, len - run);
}

/* An attribute value, decoded, in the arena. */
static const char *decode_attr(struct hparser *p, const char *s, size_t len)
{
	struct wd_buffer buf = WD_BUFFER_INIT;
	for (size_t i = 0; i < len;) {
		if (s[i] == '&') {
			size_t at = i;
			uint32_t cp = decode_entity(s, len, &i, true);
			if (cp != 0) {
				wd__utf8_put(&buf, cp);
				continue;
			}
			i = at;
		}
		wd_buffer_append(&buf, s + i, 1);
		i++;
	}
	char *v = wd_arena_strndup(p->arena, (const char *)wd_buffer_bytes(&buf), buf.len);
	wd_buffer_release(&buf);
	if (v == NULL)
		p->oom = true;
	return v;
}

static void close_current(struct hparser *p)
{
	if (p->cur != &p->root) {
		p->cur = p->cur->parent;
		p->depth--;
	}
}

static struct hnode *open_element(struct hparser *p, const char *name)
{
	const char *const *closes = implied_closes(name);
	while (closes != NULL && p->cur != &p->root && in_list(p->cur->name, closes))
		close_current(p);
	struct hnode *n = node_add(p, HN_ELEM);
	if (n == NULL)
		return NULL;
	n->name = name;
	if (!in_list(name, void_elements) && p->depth < H2T_MAX_DEPTH) {
		p->cur = n;
		p->depth++;
	}
	return n;
}

static void close_element(struct hparser *p, const char *name)
{
	if (in_list(name, void_elements)) {
		if (strcmp(name, "br") == 0)
			open_element(p, "br");
		return;
	}
	for (struct hnode *n = p->cur; n != &p->root; n = n->parent) {
		if (strcmp(n->name, name) == 0) {
			while (p->cur != n)
				close_current(p);
			close_current(p);
			return;
		}
	}
	if (strcmp(name, "p") == 0) {
		struct hnode *e = open_element(p, "p");
		if (e != NULL && p->cur == e)
			close_current(p);
	}
}

/* Find the case-insensitive "</name" from `from`; len when absent. */
static size_t find_end_tag(const char *s, size_t len, size_t from, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = from; i + 2 + n <= len; i++) {
		if (s[i] == '<' && s[i + 1] == '/' && g_ascii_strncasecmp(s + i + 2, name, n) == 0)
			return i;
	}
	return len;
}

static const char *arena_lower(struct hparser *p, const char *s, size_t len)
{
	char *v = wd_arena_strndup(p->arena, s, len);
	if (v == NULL) {
		p->oom = true;
		return "";
	}
	for (size_t i = 0; i < len; i++)
		v[i] = g_ascii_tolower(v[i]);
	return v;
}

/* Parse a start tag at s[i] == '<' (letter follows). Returns the index after
   it, or len when the tag is unfinished (then it is dropped). */
static size_t parse_start_tag(struct hparser *p, size_t i)
{
	const char *s = p->s;
	size_t len = p->len, j = i + 1;
	while (j < len && !is_ws(s[j]) && s[j] != '/' && s[j] != '>')
		j++;
	if (j >= len)
		return len;
	const char *name = arena_lower(p, s + i + 1, j - i - 1);
	const char *href = NULL, *src = NULL, *alt = NULL, *start = NULL, *type = NULL;
	for (;;) {
		while (j < len && (is_ws(s[j]) || s[j] == '/'))
			j++;
		if (j >= len)
			return len;
		if (s[j] == '>') {
			j++;
			break;
		}
		size_t an = j;
		while (j < len && !is_ws(s[j]) && s[j] != '=' && s[j] != '>' && s[j] != '/')
			j++;
		size_t an_len = j - an;
		while (j < len && is_ws(s[j]))
			j++;
		const char *value = "";
		if (j < len && s[j] == '=') {
			j++;
			while (j < len && is_ws(s[j]))
				j++;
			if (j >= len)
				return len;
			size_t vs, ve;
			if (s[j] == '"' || s[j] == '\'') {
				char q = s[j];
				vs = ++j;
				while (j < len && s[j] != q)
					j++;
				if (j >= len)
					return len;
				ve = j++;
			} else {
				vs = j;
				while (j < len && !is_ws(s[j]) && s[j] != '>')
					j++;
				ve = j;
			}
			value = NULL;
			/* only the attributes the formatters read are kept */
#define ATTR_IS(lit) (an_len == sizeof(lit) - 1 && g_ascii_strncasecmp(s + an, lit, an_len) == 0)
			if (ATTR_IS("href") || ATTR_IS("src") || ATTR_IS("alt") || ATTR_IS("start") ||
			    ATTR_IS("type"))
				value = decode_attr(p, s + vs, ve - vs);
		} else {
			value = "";
		}
		/* as in a JavaScript object, a repeated attribute keeps the first */
		if (value != NULL) {
			if (ATTR_IS("href") && href == NULL)
				href = value;
			else if (ATTR_IS("src") && src == NULL)
				src = value;
			else if (ATTR_IS("alt") && alt == NULL)
				alt = value;
			else if (ATTR_IS("start") && start == NULL)
				start = value;
			else if (ATTR_IS("type") && type == NULL)
				type = value;
		}
#undef ATTR_IS
	}
	struct hnode *n = open_element(p, name);
	if (n == NULL)
		return j;
	if (href != NULL || src != NULL || alt != NULL || start != NULL || type != NULL) {
		struct hattrs *a = wd_arena_alloc(p->arena, sizeof(*a));
		if (a == NULL) {
			p->oom = true;
			return len;
		}
		*a = (struct hattrs){ href, src, alt, start, type };
		n->attrs = a;
	}
	bool script = strcmp(name, "script") == 0, style = strcmp(name, "style") == 0;
	if (script || style || strcmp(name, "title") == 0) {
		size_t end = find_end_tag(s, len, j, name);
		if (script || style)
			n->raw = true;
		else if (p->cur == n)
			decode_text(p, s + j, end - j);
		return end;
	}
	return j;
}

static void html_parse(struct hparser *p)
{
	const char *s = p->s;
	size_t len = p->len, text = 0, i = 0;
	while (i < len) {
		if (s[i] != '<' || i + 1 >= len) {
			i++;
			continue;
		}
		char c = s[i + 1];
		size_t next;
		if (is_alpha(c)) {
			decode_text(p, s + text, i - text);
			next = parse_start_tag(p, i);
		} else if (c == '/') {
			decode_text(p, s + text, i - text);
			size_t j = i + 2;
			if (j < len && is_alpha(s[j])) {
				while (j < len && !is_ws(s[j]) && s[j] != '/' && s[j] != '>')
					j++;
				const char *name = arena_lower(p, s + i + 2, j - i - 2);
				while (j < len && s[j] != '>')
					j++;
				if (j >= len) {
					next = len;
				} else {
					close_element(p, name);
					next = j + 1;
				}
			} else {
				while (j < len && s[j] != '>')
					j++;
				next = j < len ? j + 1 : len;
			}
		} else if (c == '!' || c == '?') {
			decode_text(p, s + text, i - text);
			size_t j;
			if (c == '!' && i + 3 < len && s[i + 2] == '-' && s[i + 3] == '-') {
				j = i + 4;
				while (j < len && !(s[j] == '>' && j >= i + 6 && s[j - 1] == '-' &&
						    s[j - 2] == '-'))
					j++;
			} else {
				j = i + 2;
				while (j < len && s[j] != '>')
					j++;
			}
			node_add(p, HN_OTHER);
			next = j < len ? j + 1 : len;
		} else {
			i++;
			continue;
		}
		i = text = next;
		if (p->oom)
			return;
	}
	decode_text(p, s + text, len - text);
}

/* ---- layout (html-to-text's BlockTextBuilder) ---- */

/* Append to a layout buffer, silently cut at H2T_MAX_TEXT: nested lists and
   quotes indent every line of their content again, so the rendering of a
   hostile document can be O(input × depth); past this size nothing is
   stored from it anyway. WD_ERROR only when memory runs out. */
static int put(struct wd_buffer *buf, const void *data, size_t len)
{
	if (buf->len >= H2T_MAX_TEXT)
		return WD_OK;
	if (len > H2T_MAX_TEXT - buf->len)
		len = H2T_MAX_TEXT - buf->len;
	return wd_buffer_append(buf, data, len);
}

/* InlineTextBuilder: completed lines (each followed by '\n') and the words
   of the current line joined by spaces. */
struct itb {
	struct wd_buffer lines;
	size_t nlines;
	struct wd_buffer cur;
	size_t nwords;
	size_t last_word;  /* offset of the last word in cur */
	long last_units;   /* its length in UTF-16 units */
	long max_len, avail;
	bool stashed_space, break_opportunity;
};

enum item_type { IT_BLOCK, IT_LIST, IT_LIST_ITEM };

struct item {
	enum item_type type;
	struct item *next;
	struct itb inl;
	struct wd_buffer raw;
	long leading, stashed;
	bool pre, nowrap;
	long max_prefix;   /* IT_LIST */
	long inter_row;    /* IT_LIST */
	char prefix[48];   /* IT_LIST_ITEM */
};

struct h2t {
	struct item *top;
	unsigned uppercase;      /* heading depth: words are upper-cased */
	uint64_t words_captured; /* words added through the word transform */
	bool oom;
};

static long utf16_units(const char *s, size_t len)
{
	long n = 0;
	for (size_t i = 0; i < len;)
		n += wd__utf8_get(s, len, &i) >= 0x10000 ? 2 : 1;
	return n;
}

static void itb_init(struct itb *b, long max_len)
{
	memset(b, 0, sizeof(*b));
	b->max_len = max_len;
	b->avail = max_len;
}

static void itb_release(struct itb *b)
{
	wd_buffer_release(&b->lines);
	wd_buffer_release(&b->cur);
}

static bool itb_empty(const struct itb *b)
{
	return b->nlines == 0 && b->nwords == 0;
}

static void itb_clear(struct itb *b)
{
	wd_buffer_clear(&b->lines);
	wd_buffer_clear(&b->cur);
	b->nlines = 0;
	b->nwords = 0;
	b->avail = b->max_len;
}

/* Move cur[0..keep) to the completed lines; cur keeps [from..). */
static int itb_break(struct itb *b, size_t keep, size_t from)
{
	const uint8_t *c = wd_buffer_bytes(&b->cur);
	if (put(&b->lines, c, keep) < 0 || put(&b->lines, "\n", 1) < 0)
		return WD_ERROR;
	b->nlines++;
	wd_buffer_consume(&b->cur, from);
	return WD_OK;
}

static int itb_new_line(struct itb *b, long n)
{
	if (itb_break(b, b->cur.len, b->cur.len) < 0)
		return WD_ERROR;
	for (long k = 1; k < n; k++) {
		if (put(&b->lines, "\n", 1) < 0)
			return WD_ERROR;
		b->nlines++;
	}
	wd_buffer_clear(&b->cur);
	b->nwords = 0;
	b->avail = b->max_len;
	return WD_OK;
}

static int itb_push(struct itb *b, const char *w, size_t len, long units, bool nowrap)
{
	if (b->avail <= 0 && !nowrap && itb_new_line(b, 1) < 0)
		return WD_ERROR;
	bool start = b->nwords == 0;
	long cost = units + (start ? 0 : 1);
	if (!(cost <= b->avail || nowrap) && !start) {
		if (itb_new_line(b, 1) < 0)
			return WD_ERROR;
		start = true;
		cost = units;
	}
	if (!start && put(&b->cur, " ", 1) < 0)
		return WD_ERROR;
	b->last_word = b->cur.len;
	if (put(&b->cur, w, len) < 0)
		return WD_ERROR;
	b->last_units = units;
	b->nwords++;
	b->avail -= cost;
	return WD_OK;
}

/* concatWord(): glue w to the last word of the line (popWord + pushWord,
   done in place so that a long run of glued pieces stays linear). */
static int itb_concat(struct itb *b, const char *w, size_t len, long units, bool nowrap)
{
	if ((b->break_opportunity && units > b->avail) || b->nwords == 0) {
		if (b->break_opportunity && units > b->avail)
			b->break_opportunity = false;
		return itb_push(b, w, len, units, nowrap);
	}
	b->nwords--;
	b->avail += b->last_units + (b->nwords == 0 ? 0 : 1);
	if (put(&b->cur, w, len) < 0)
		return WD_ERROR;
	long total = b->last_units + units;
	bool start = b->nwords == 0;
	bool move = false;
	if (b->avail <= 0 && !nowrap)
		move = true;
	else if (!(total + (start ? 0 : 1) <= b->avail || nowrap) && !start)
		move = true;
	if (move) {
		/* the word goes to a new line: what precedes it (minus the
		   separating space) is a completed line */
		size_t keep = b->last_word > 0 ? b->last_word - 1 : 0;
		if (b->nwords == 0)
			keep = 0;
		if (b->nwords == 0) {
			/* only when avail <= 0 on an empty line: an empty line first */
			if (put(&b->lines, "\n", 1) < 0)
				return WD_ERROR;
			b->nlines++;
		} else if (itb_break(b, keep, b->last_word) < 0) {
			return WD_ERROR;
		}
		b->last_word = 0;
		b->nwords = 0;
		b->avail = b->max_len;
		start = true;
	}
	b->nwords++;
	b->avail -= total + (start ? 0 : 1);
	b->last_units = total;
	return WD_OK;
}

static int itb_to(const struct itb *b, struct wd_buffer *out)
{
	if (put(out, wd_buffer_bytes(&b->lines), b->lines.len) < 0 ||
	    put(out, wd_buffer_bytes(&b->cur), b->cur.len) < 0)
		return WD_ERROR;
	return WD_OK;
}

static struct item *item_push(struct h2t *h, enum item_type type, long leading, long max_len)
{
	struct item *it = calloc(1, sizeof(*it));
	if (it == NULL) {
		h->oom = true;
		return NULL;
	}
	it->type = type;
	it->next = h->top;
	it->leading = leading;
	itb_init(&it->inl, max_len > 0 ? max_len : H2T_WORDWRAP);
	if (h->top != NULL) {
		it->pre = h->top->pre;
		it->nowrap = h->top->nowrap;
	}
	h->top = it;
	return it;
}

static void item_free(struct item *it)
{
	itb_release(&it->inl);
	wd_buffer_release(&it->raw);
	free(it);
}

/* getText(): raw text plus the inline builder's lines (appended to out). */
static void item_text(struct h2t *h, const struct item *it, struct wd_buffer *out)
{
	if (put(out, wd_buffer_bytes(&it->raw), it->raw.len) < 0 ||
	    (!itb_empty(&it->inl) && itb_to(&it->inl, out) < 0))
		h->oom = true;
}

/* addText() */
static void item_add_text(struct h2t *h, struct item *it, const char *text, size_t len,
			  long leading, long trailing)
{
	if (!itb_empty(&it->inl)) {
		if (itb_to(&it->inl, &it->raw) < 0)
			h->oom = true;
	}
	long breaks = it->stashed > leading ? it->stashed : leading;
	itb_clear(&it->inl);
	if (it->raw.len > 0) {
		for (long k = 0; k < breaks; k++)
			if (put(&it->raw, "\n", 1) < 0)
				h->oom = true;
		if (put(&it->raw, text, len) < 0)
			h->oom = true;
	} else {
		if (put(&it->raw, text, len) < 0)
			h->oom = true;
		it->leading = breaks;
	}
	it->stashed = trailing;
}

static void open_block(struct h2t *h, long leading, long reserved, bool pre)
{
	long max_len = h->top->inl.max_len - reserved;
	struct item *it = item_push(h, IT_BLOCK, leading, max_len > 20 ? max_len : 20);
	if (it != NULL && pre)
		it->pre = true;
}

enum block_transform { BT_NONE, BT_QUOTE };

static void close_block(struct h2t *h, long trailing, enum block_transform transform)
{
	struct item *it = h->top;
	h->top = it->next;
	struct wd_buffer text = WD_BUFFER_INIT;
	item_text(h, it, &text);
	if (transform == BT_QUOTE) {
		/* trim '\n' at both ends, then "> " before every line */
		const char *t = (const char *)wd_buffer_bytes(&text);
		size_t a = 0, b = text.len;
		while (a < b && t[a] == '\n')
			a++;
		while (b > a && t[b - 1] == '\n')
			b--;
		struct wd_buffer q = WD_BUFFER_INIT;
		for (size_t i = a; i <= b;) {
			const char *nl = i < b ? memchr(t + i, '\n', b - i) : NULL;
			size_t e = nl != NULL ? (size_t)(nl - t) : b;
			if (put(&q, "> ", 2) < 0 || put(&q, t + i, e - i) < 0 ||
			    (e < b && put(&q, "\n", 1) < 0))
				h->oom = true;
			if (e >= b)
				break;
			i = e + 1;
		}
		wd_buffer_release(&text);
		text = q;
	}
	long stashed = it->stashed > trailing ? it->stashed : trailing;
	item_add_text(h, h->top, (const char *)wd_buffer_bytes(&text), text.len, it->leading,
		      stashed);
	wd_buffer_release(&text);
	item_free(it);
}

/* One word through the word transforms (upper-casing inside headings). */
static int add_word(struct h2t *h, struct itb *b, const char *w, size_t len, bool transform,
		    bool concat, bool nowrap)
{
	char *upper = NULL;
	if (transform) {
		h->words_captured++;
		if (h->uppercase > 0) {
			upper = g_utf8_strup(w, (gssize)len);
			w = upper;
			len = strlen(upper);
		}
	}
	long units = utf16_units(w, len);
	int ret = concat ? itb_concat(b, w, len, units, nowrap) : itb_push(b, w, len, units, nowrap);
	g_free(upper);
	return ret;
}

/* addInline() */
static void add_inline(struct h2t *h, const char *s, size_t len, bool transform)
{
	struct item *it = h->top;
	if (it->pre) {
		if (put(&it->raw, s, len) < 0)
			h->oom = true;
		return;
	}
	if (len == 0)
		return;
	bool words = false;
	for (size_t i = 0; i < len && !words;) {
		if (!h2t_space(wd__utf8_get(s, len, &i)))
			words = true;
	}
	if (it->stashed > 0 && !words)
		return;
	struct itb *b = &it->inl;
	if (it->stashed > 0 && itb_new_line(b, it->stashed) < 0)
		h->oom = true;
	/* shrinkWrapAdd() */
	bool prev_space = b->stashed_space, first = true, any = false;
	size_t i = 0;
	size_t first_at = 0;
	uint32_t first_cp = wd__utf8_get(s, len, &first_at);
	bool leading_space = h2t_space(first_cp);
	bool trailing_space = false;
	while (i < len) {
		size_t at = i;
		uint32_t cp = wd__utf8_get(s, len, &i);
		trailing_space = h2t_space(cp);
		if (trailing_space)
			continue;
		size_t end = i;
		while (end < len) {
			size_t k = end;
			uint32_t c = wd__utf8_get(s, len, &k);
			if (h2t_space(c))
				break;
			end = k;
		}
		bool concat = first && !(prev_space || leading_space);
		if (add_word(h, b, s + at, end - at, transform, concat, it->nowrap) < 0)
			h->oom = true;
		first = false;
		any = true;
		i = end;
		trailing_space = false;
	}
	b->stashed_space = (prev_space && !any) || trailing_space;
	it->stashed = 0;
}

static void add_line_break(struct h2t *h)
{
	struct item *it = h->top;
	if (it->pre) {
		if (put(&it->raw, "\n", 1) < 0)
			h->oom = true;
	} else if (itb_new_line(&it->inl, 1) < 0) {
		h->oom = true;
	}
}

static void walk(struct h2t *h, const struct hnode *n, bool single);

static void walk_children(struct h2t *h, const struct hnode *e)
{
	if (e->first != NULL)
		walk(h, e->first, false);
}

static bool js_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len;)
		if (!wd__js_space(wd__utf8_get(s, len, &i)))
			return false;
	return true;
}

static void roman(long num, char *out, size_t size)
{
	static const char *const ones[] = { "", "I", "II", "III", "IV", "V", "VI", "VII", "VIII",
					    "IX" };
	static const char *const tens[] = { "", "X", "XX", "XXX", "XL", "L", "LX", "LXX", "LXXX",
					    "XC" };
	static const char *const hundreds[] = { "", "C", "CC", "CCC", "CD", "D", "DC", "DCC",
						"DCCC", "CM" };
	static const char *const thousands[] = { "", "M", "MM", "MMM" };
	snprintf(out, size, "%s%s%s%s", thousands[num / 1000], hundreds[num / 100 % 10],
		 tens[num / 10 % 10], ones[num % 10]);
}

static void list_marker(long num, const char *type, char *out, size_t size)
{
	char t = type != NULL && type[0] != '\0' && type[1] == '\0' ? type[0] : '1';
	if ((t == 'a' || t == 'A') && num >= 1) {
		char digits[16];
		size_t n = 0;
		do {
			num -= 1;
			digits[n++] = (char)((t == 'a' ? 'a' : 'A') + num % 26);
			num /= 26;
		} while (num > 0 && n < sizeof(digits));
		size_t k = 0;
		while (n > 0 && k + 1 < size)
			out[k++] = digits[--n];
		out[k] = '\0';
	} else if ((t == 'i' || t == 'I') && num >= 1 && num <= 3999) {
		roman(num, out, size);
		if (t == 'i')
			for (char *c = out; *c != '\0'; c++)
				*c = g_ascii_tolower(*c);
	} else {
		snprintf(out, size, "%ld", num);
	}
}

static void format_list(struct h2t *h, const struct hnode *e, bool ordered)
{
	bool nested = e->parent != NULL && e->parent->kind == HN_ELEM &&
		      strcmp(e->parent->name, "li") == 0;
	long index = 1;
	bool nan = false;
	const char *start = HATTR(e, start);
	if (ordered && start != NULL && start[0] != '\0') {
		char *end;
		long v = strtol(start, &end, 10);
		while (*end != '\0' && wd__js_space((unsigned char)*end))
			end++;
		if (*end == '\0' && end != start && v > -1000000000L && v < 1000000000L)
			index = v;
		else
			nan = true; /* Number() of a non-number */
	}
	long first_index = index, max_prefix = 0, count = 0;
	for (const struct hnode *c = e->first; c != NULL; c = c->next) {
		if (c->kind == HN_TEXT && js_blank(c->text, c->text_len))
			continue;
		count++;
		if (c->kind == HN_ELEM && strcmp(c->name, "li") == 0) {
			char marker[32];
			long len;
			if (ordered) {
				list_marker(index++, HATTR(e, type), marker, sizeof(marker));
				if (nan)
					snprintf(marker, sizeof(marker), "NaN");
				len = (long)strlen(marker) + (nested ? 2 : 3);
			} else {
				len = nested ? 2 : 3;
			}
			if (len > max_prefix)
				max_prefix = len;
		}
	}
	if (count == 0)
		return;
	struct item *list = item_push(h, IT_LIST, nested ? 1 : 2, h->top->inl.max_len);
	if (list == NULL)
		return;
	list->max_prefix = max_prefix;
	list->inter_row = 1;
	long next = first_index;
	for (const struct hnode *c = e->first; c != NULL; c = c->next) {
		if (c->kind == HN_TEXT && js_blank(c->text, c->text_len))
			continue;
		char prefix[48] = "";
		if (c->kind == HN_ELEM && strcmp(c->name, "li") == 0) {
			if (ordered) {
				char marker[32];
				if (nan)
					snprintf(marker, sizeof(marker), "NaN");
				else
					list_marker(next++, HATTR(e, type), marker, sizeof(marker));
				snprintf(prefix, sizeof(prefix), "%s%s. ", nested ? "" : " ", marker);
			} else {
				snprintf(prefix, sizeof(prefix), "%s", nested ? "* " : " * ");
			}
		}
		/* openListItem */
		long plen = (long)strlen(prefix);
		if (plen < list->max_prefix)
			plen = list->max_prefix;
		long max_len = list->inl.max_len - plen;
		struct item *li = item_push(h, IT_LIST_ITEM, list->inter_row, max_len > 20 ? max_len : 20);
		if (li == NULL)
			return;
		snprintf(li->prefix, sizeof(li->prefix), "%s", prefix);
		walk(h, c, true);
		/* closeListItem */
		h->top = li->next;
		struct wd_buffer body = WD_BUFFER_INIT, text = WD_BUFFER_INIT;
		item_text(h, li, &body);
		size_t pl = strlen(li->prefix);
		if (put(&text, li->prefix, pl) < 0)
			h->oom = true;
		for (long k = (long)pl; k < plen; k++)
			if (put(&text, " ", 1) < 0)
				h->oom = true;
		const char *bt = (const char *)wd_buffer_bytes(&body);
		char pad[64];
		memset(pad, ' ', sizeof(pad));
		for (size_t k = 0; k < body.len;) {
			const char *nl = memchr(bt + k, '\n', body.len - k);
			size_t e = nl != NULL ? (size_t)(nl - bt) : body.len;
			if (put(&text, bt + k, e - k) < 0)
				h->oom = true;
			if (nl == NULL)
				break;
			if (put(&text, "\n", 1) < 0)
				h->oom = true;
			for (long s = plen; s > 0; s -= 64)
				if (put(&text, pad, s < 64 ? (size_t)s : 64) < 0)
					h->oom = true;
			k = e + 1;
		}
		long stashed = li->stashed > list->inter_row ? li->stashed : list->inter_row;
		item_add_text(h, list, (const char *)wd_buffer_bytes(&text), text.len, li->leading,
			      stashed);
		wd_buffer_release(&body);
		wd_buffer_release(&text);
		item_free(li);
	}
	/* closeList */
	h->top = list->next;
	struct wd_buffer text = WD_BUFFER_INIT;
	item_text(h, list, &text);
	if (text.len > 0)
		item_add_text(h, h->top, (const char *)wd_buffer_bytes(&text), text.len,
			      list->leading, nested ? 1 : 2);
	wd_buffer_release(&text);
	item_free(list);
}

static void format_anchor(struct h2t *h, const struct hnode *e)
{
	const char *href = HATTR(e, href) != NULL ? HATTR(e, href) : "";
	if (strncmp(href, "mailto:", 7) == 0)
		href += 7;
	if (href[0] == '#')
		href = "";
	if (href[0] == '\0') {
		walk_children(h, e);
		return;
	}
	uint64_t before = h->words_captured;
	walk_children(h, e);
	if (h->words_captured == before) {
		add_inline(h, href, strlen(href), false);
	} else {
		char *s = g_strdup_printf(" [%s]", href);
		add_inline(h, s, strlen(s), false);
		g_free(s);
	}
}

static void format_image(struct h2t *h, const struct hnode *e)
{
	const char *alt = HATTR(e, alt) != NULL ? HATTR(e, alt) : "";
	const char *src = HATTR(e, src) != NULL ? HATTR(e, src) : "";
	char *s;
	if (src[0] == '\0')
		s = g_strdup(alt);
	else if (alt[0] == '\0')
		s = g_strdup_printf("[%s]", src);
	else
		s = g_strdup_printf("%s [%s]", alt, src);
	add_inline(h, s, strlen(s), false);
	g_free(s);
}

static void format_element(struct h2t *h, const struct hnode *e)
{
	static const char *const blocks11[] = { "article", "aside", "div", "footer", "form",
						"header", "main", "nav", "section", NULL };
	const char *name = e->name;
	if (e->raw)
		return;
	if (strcmp(name, "a") == 0) {
		format_anchor(h, e);
	} else if (in_list(name, blocks11)) {
		open_block(h, 1, 0, false);
		walk_children(h, e);
		close_block(h, 1, BT_NONE);
	} else if (strcmp(name, "p") == 0 || strcmp(name, "table") == 0 ||
		   strcmp(name, "pre") == 0) {
		open_block(h, 2, 0, strcmp(name, "pre") == 0);
		walk_children(h, e);
		close_block(h, 2, BT_NONE);
	} else if (strcmp(name, "blockquote") == 0) {
		open_block(h, 2, 2, false);
		walk_children(h, e);
		close_block(h, 2, BT_QUOTE);
	} else if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && name[2] == '\0') {
		open_block(h, name[1] <= '3' ? 3 : 2, 0, false);
		h->uppercase++;
		walk_children(h, e);
		h->uppercase--;
		close_block(h, 2, BT_NONE);
	} else if (strcmp(name, "br") == 0) {
		add_line_break(h);
	} else if (strcmp(name, "wbr") == 0) {
		h->top->inl.break_opportunity = true;
	} else if (strcmp(name, "hr") == 0) {
		char dashes[H2T_WORDWRAP];
		memset(dashes, '-', sizeof(dashes));
		open_block(h, 2, 0, false);
		add_inline(h, dashes, sizeof(dashes), true);
		close_block(h, 2, BT_NONE);
	} else if (strcmp(name, "img") == 0) {
		format_image(h, e);
	} else if (strcmp(name, "ul") == 0 || strcmp(name, "ol") == 0) {
		format_list(h, e, name[0] == 'o');
	} else {
		walk_children(h, e);
	}
}

static void walk(struct h2t *h, const struct hnode *n, bool single)
{
	for (; n != NULL && !h->oom; n = single ? NULL : n->next) {
		if (n->kind == HN_TEXT)
			add_inline(h, n->text, n->text_len, true);
		else if (n->kind == HN_ELEM)
			format_element(h, n);
	}
}

/* findBases(): the <body> elements (not those inside another body), in
   document order; NULL when there is none. */
static void find_bodies(const struct hnode *n, const struct hnode **list, size_t *count,
			size_t cap)
{
	for (; n != NULL; n = n->next) {
		if (n->kind != HN_ELEM)
			continue;
		if (strcmp(n->name, "body") == 0) {
			if (*count < cap)
				list[(*count)++] = n;
		} else {
			find_bodies(n->first, list, count, cap);
		}
	}
}

int wd__html_to_text(const char *html, size_t len, struct wd_buffer *out)
{
	/* invalid UTF-8 is read as U+FFFD (g_utf8_strup needs valid input) */
	struct wd_buffer clean = WD_BUFFER_INIT;
	if (!g_utf8_validate_len(html, len, NULL)) {
		for (size_t i = 0; i < len;)
			if (wd__utf8_put(&clean, wd__utf8_get(html, len, &i)) < 0)
				return WD_ERROR;
		html = (const char *)wd_buffer_bytes(&clean);
		len = clean.len;
	}
	struct hparser p = { .s = html, .len = len };
	p.arena = wd_arena_create(0);
	if (p.arena == NULL) {
		wd_buffer_release(&clean);
		return WD_ERROR;
	}
	p.cur = &p.root;
	p.root.kind = HN_ELEM;
	p.root.name = "";
	html_parse(&p);
	struct h2t h = { 0 };
	int ret = WD_OK;
	if (!p.oom && item_push(&h, IT_BLOCK, 1, H2T_WORDWRAP) != NULL) {
		const struct hnode *bodies[64];
		size_t count = 0;
		find_bodies(p.root.first, bodies, &count, 64);
		if (count == 0)
			walk(&h, p.root.first, false);
		for (size_t k = 0; k < count; k++)
			walk(&h, bodies[k], true);
		while (h.top->next != NULL) {
			struct item *it = h.top;
			h.top = it->next;
			item_free(it);
		}
		item_text(&h, h.top, out);
		item_free(h.top);
	}
	if (p.oom || h.oom)
		ret = WD_ERROR;
	wd_arena_destroy(&p.arena);
	wd_buffer_release(&clean);
	return ret;
}
